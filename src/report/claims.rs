//! The claims table: does each ordering the paper claims (CMC-CMKM over CMC
//! and over SimCLR, CMC over SimCLR, self-supervised over supervised) hold
//! in this suite's runs, and how sure can we be?
//!
//! For a claim "method A beats method B" and one modality row, the
//! difference is the mean over seeds of A's main metric minus B's on the
//! same test samples. Its 95% interval comes from a seeded hierarchical
//! bootstrap: resample the seeds, then the test samples within each drawn
//! seed, and recompute the difference, paired (both methods are scored on
//! the very samples drawn). Label fractions are compared fraction by
//! fraction the same way, each seed's difference being the mean over its
//! repetitions (which share their labelled subsets across methods).

use crate::data::declaration::MainMetric;
use crate::harness::runner::Prepared;
use crate::harness::steps::Results;
use crate::harness::suite::ClaimDecl;
use crate::metrics::classification_metrics;
use crate::report::collect::{approach, modality_group};
use crate::report::paper::{paper_value, PaperColumn};
use crate::report::sweeps::Chosen;
use crate::report::table::Table;
use anyhow::{bail, Context, Result};
use rand::Rng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The paper's orderings, by approach: used when a suite lists no claims.
const PAPER_ORDERINGS: [(&str, &str); 6] =
    [("CMC-CMKM", "CMC"), ("CMC-CMKM", "SimCLR"), ("CMC", "SimCLR"), ("CMC-CMKM", "Supervised"), ("CMC", "Supervised"), ("SimCLR", "Supervised")];

/// Bootstrap draws per interval.
pub const DRAWS: usize = 2000;

/// One seed's paired predictions: the test labels and, per repetition (one
/// for fine-tuning), A's and B's predictions for the same samples.
#[derive(Debug, Clone)]
pub struct PairedSeed {
    pub labels: Vec<usize>,
    pub repetitions: Vec<(Vec<usize>, Vec<usize>)>,
}

/// A paired difference with its interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// Mean over seeds of A's metric minus B's (fractions, not points).
    pub mean: f64,
    /// The 2.5% and 97.5% quantiles of the bootstrap distribution.
    pub low: f64,
    pub high: f64,
    /// Seeds where A scored higher than B, of all seeds.
    pub wins: usize,
    pub seeds: usize,
}

/// The main metric of `predictions` on the samples `idx` (with repetition).
fn score(labels: &[usize], predictions: &[usize], idx: &[usize], classes: usize, metric: MainMetric) -> f64 {
    match metric {
        MainMetric::Accuracy => idx.iter().filter(|&&i| labels[i] == predictions[i]).count() as f64 / idx.len().max(1) as f64,
        MainMetric::F1Macro => {
            let l: Vec<usize> = idx.iter().map(|&i| labels[i]).collect();
            let p: Vec<usize> = idx.iter().map(|&i| predictions[i]).collect();
            classification_metrics(&l, &p, classes).f1_macro
        }
    }
}

/// A seed's difference on the samples `idx`: the mean over repetitions of
/// A's score minus B's.
fn seed_difference(s: &PairedSeed, idx: &[usize], classes: usize, metric: MainMetric) -> f64 {
    let sum: f64 = s.repetitions.iter().map(|(a, b)| score(&s.labels, a, idx, classes, metric) - score(&s.labels, b, idx, classes, metric)).sum();
    sum / s.repetitions.len().max(1) as f64
}

/// The paired difference of A and B over `seeds` and its 95% hierarchical
/// bootstrap interval from `draws` resamplings drawn from `rng`.
pub fn paired_bootstrap(seeds: &[PairedSeed], classes: usize, metric: MainMetric, draws: usize, rng: &mut impl Rng) -> Difference {
    let sizes: Vec<usize> = seeds.iter().map(|s| s.labels.len()).collect();
    let b = hierarchical_bootstrap(&sizes, |s, idx| seed_difference(&seeds[s], idx, classes, metric), draws, rng);
    Difference { mean: b.mean, low: b.low, high: b.high, wins: b.per_seed.iter().filter(|d| **d > 0.0).count(), seeds: seeds.len() }
}

/// A statistic's mean over seeds with its bootstrap interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Bootstrapped {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
    /// The statistic of each seed on all its samples.
    pub per_seed: Vec<f64>,
}

/// The mean over seeds of `stat(seed, samples)` on all of each seed's
/// samples (`sizes[seed]` of them) and its 95% interval from `draws`
/// hierarchical resamplings: the seeds with replacement, then the samples
/// within each drawn seed.
pub fn hierarchical_bootstrap(sizes: &[usize], stat: impl Fn(usize, &[usize]) -> f64, draws: usize, rng: &mut impl Rng) -> Bootstrapped {
    let per_seed: Vec<f64> = sizes.iter().enumerate().map(|(s, &n)| stat(s, &(0..n).collect::<Vec<_>>())).collect();
    let mean = per_seed.iter().sum::<f64>() / per_seed.len().max(1) as f64;
    let mut stats: Vec<f64> = (0..draws)
        .map(|_| {
            let total: f64 = (0..sizes.len())
                .map(|_| {
                    let s = rng.random_range(0..sizes.len());
                    let n = sizes[s];
                    let idx: Vec<usize> = (0..n).map(|_| rng.random_range(0..n)).collect();
                    stat(s, &idx)
                })
                .sum();
            total / sizes.len() as f64
        })
        .collect();
    stats.sort_by(f64::total_cmp);
    // Nearest-rank quantiles.
    let rank = |q: f64| stats[((q * draws as f64).ceil() as usize).clamp(1, draws) - 1];
    let (low, high) = if draws == 0 { (mean, mean) } else { (rank(0.025), rank(0.975)) };
    Bootstrapped { mean, low, high, per_seed }
}

/// The main metric of one method over seeds, from each seed's test labels
/// and predictions, with its hierarchical bootstrap interval.
pub fn score_bootstrap(seeds: &[(Vec<usize>, Vec<usize>)], classes: usize, metric: MainMetric, rng: &mut impl Rng) -> Bootstrapped {
    let sizes: Vec<usize> = seeds.iter().map(|s| s.0.len()).collect();
    hierarchical_bootstrap(&sizes, |s, idx| score(&seeds[s].0, &seeds[s].1, idx, classes, metric), DRAWS, rng)
}

/// The claims a suite checks: the paper's orderings between every pair of
/// its methods whose approaches the paper ranks, then the suite's own list.
pub fn claims_of(p: &Prepared) -> Result<Vec<ClaimDecl>> {
    let mut out = vec![];
    // Suite methods: a swept one stands for its chosen variant.
    let methods = || p.suite.decl.methods.keys();
    for (first, second) in PAPER_ORDERINGS {
        for a in methods().filter(|m| approach(p, m) == first) {
            for b in methods().filter(|m| approach(p, m) == second) {
                out.push(ClaimDecl { a: a.clone(), b: b.clone() });
            }
        }
    }
    for c in p.suite.decl.claims.iter().flatten() {
        for m in [&c.a, &c.b] {
            if !p.suite.knows(m) {
                bail!("{}: claims: '{m}' is not a method of the suite ({:?})", p.suite.path.display(), p.suite.methods.keys().collect::<Vec<_>>());
            }
        }
        if !out.contains(c) {
            out.push(c.clone());
        }
    }
    Ok(out)
}

/// Where each method's predictions are: (method, modality row, fraction or
/// `None` for full labels) -> seed -> folders of its repetitions.
type Sources = BTreeMap<(String, String, Option<String>), BTreeMap<u64, Vec<PathBuf>>>;

fn sources(p: &Prepared, chosen: &Chosen) -> Sources {
    let mut s: Sources = BTreeMap::new();
    for run in p.runs.iter().filter(|r| p.store.is_done(&r.id)) {
        let dir = p.store.dir(&run.id);
        // The random-encoder baseline is no method's result.
        let (modalities, fractions, repetitions) = match run.step.kind().results() {
            Results::Classification { modalities } => (modalities, None, 0),
            Results::LabelFractions { modalities, fractions, repetitions, random_init: false } => (modalities, Some(fractions), repetitions),
            _ => continue,
        };
        let row = modality_group(modalities);
        for method in chosen.names(run) {
            match fractions {
                None => s.entry((method, row.clone(), None)).or_default().entry(run.seed).or_default().push(dir.clone()),
                Some(fractions) => {
                    for f in fractions {
                        let dirs = (0..repetitions).map(|r| dir.join(format!("f{f}-r{r}"))).collect();
                        let label = format!("{}%", crate::report::suite_tables::fraction_label(*f));
                        s.entry((method.clone(), row.clone(), Some(label))).or_default().insert(run.seed, dirs);
                    }
                }
            }
        }
    }
    s
}

/// `predictions.csv` as sample id -> (label, prediction), 0-based.
pub(crate) fn read_predictions(dir: &Path) -> Result<BTreeMap<String, (usize, usize)>> {
    let path = dir.join("predictions.csv");
    let mut reader = csv::Reader::from_path(&path).with_context(|| format!("{}: cannot read the predictions", path.display()))?;
    let mut out = BTreeMap::new();
    for row in reader.records() {
        let row = row.with_context(|| format!("{}: bad row", path.display()))?;
        let parse = |i: usize| -> Result<usize> {
            let v: usize = row
                .get(i)
                .unwrap_or_default()
                .parse()
                .with_context(|| format!("{}: '{}' is not a class number", path.display(), row.get(i).unwrap_or_default()))?;
            v.checked_sub(1).with_context(|| format!("{}: class numbers start at 1", path.display()))
        };
        // The csv reader refuses rows of another length than the header's, so field 0 exists.
        out.insert(row.get(0).unwrap_or_default().to_string(), (parse(1)?, parse(2)?));
    }
    Ok(out)
}

/// A's and B's repetitions of one seed, aligned by sample id.
fn paired_seed(a: &[PathBuf], b: &[PathBuf]) -> Result<PairedSeed> {
    let mut labels = None;
    let mut repetitions = vec![];
    for (da, db) in a.iter().zip(b) {
        let (pa, pb) = (read_predictions(da)?, read_predictions(db)?);
        if pa.len() != pb.len() || pa.keys().zip(pb.keys()).any(|(x, y)| x != y) {
            bail!("{} and {}: the two runs predicted different test samples", da.display(), db.display());
        }
        labels.get_or_insert_with(|| pa.values().map(|v| v.0).collect::<Vec<_>>());
        repetitions.push((pa.values().map(|v| v.1).collect(), pb.values().map(|v| v.1).collect()));
    }
    // No repetition (empty lists) gives no labels and no pairs: nothing is compared.
    Ok(PairedSeed { labels: labels.unwrap_or_default(), repetitions })
}

/// One row of the claims table.
#[derive(Debug, Clone)]
pub struct ClaimRow {
    pub modality: String,
    /// `a > b`.
    pub claim: String,
    /// `all`, or the label fraction (`5%`).
    pub labels: String,
    pub difference: Difference,
    /// The paper's A minus B in points, where it reports both rows.
    pub paper: Option<f64>,
}

/// The claims of a suite's finished runs: one row per claim, modality row
/// and label setting where both methods have results for a common seed.
pub fn claim_rows(p: &Prepared, column: Option<PaperColumn>, chosen: &Chosen) -> Result<Vec<ClaimRow>> {
    let metric = p.dataset.decl.main_metric;
    let classes = p.dataset.decl.classes.len();
    let src = sources(p, chosen);
    let mut rows = vec![];
    for claim in claims_of(p)? {
        let keys: Vec<&(String, String, Option<String>)> = src.keys().filter(|k| k.0 == claim.a).collect();
        for key in keys {
            let Some(b_seeds) = src.get(&(claim.b.clone(), key.1.clone(), key.2.clone())) else { continue };
            let a_seeds = &src[key];
            let seeds: Vec<u64> = a_seeds.keys().filter(|s| b_seeds.contains_key(s)).copied().collect();
            if seeds.is_empty() {
                continue;
            }
            let paired = seeds.iter().map(|s| paired_seed(&a_seeds[s], &b_seeds[s])).collect::<Result<Vec<_>>>()?;
            let label = format!("{} > {}", claim.a, claim.b);
            // Keyed by claim and row only: label settings with the same predictions
            // (coinciding fractions) get the same interval.
            let mut rng = crate::rng::stream(0, &format!("claims/{label}/{}", key.1), 0);
            let d = paired_bootstrap(&paired, classes, metric, DRAWS, &mut rng);
            // The paper ranks approaches: two variants of one approach have no paper gap.
            let (approach_a, approach_b) = (approach(p, &claim.a), approach(p, &claim.b));
            let paper = match (column, &key.2) {
                (Some(col), None) if approach_a != approach_b => {
                    paper_value(col, &key.1, &approach_a).zip(paper_value(col, &key.1, &approach_b)).map(|(a, b)| a - b)
                }
                _ => None,
            };
            rows.push(ClaimRow { modality: key.1.clone(), claim: label, labels: key.2.clone().unwrap_or_else(|| "all".into()), difference: d, paper });
        }
    }
    // Within each claim: the paper's modality order, full labels first,
    // then the fractions from small to large.
    let order = |r: &ClaimRow| (crate::report::paper::modality_order(&r.modality), r.labels.trim_end_matches('%').parse::<f64>().unwrap_or(-1.0));
    let claims: Vec<String> = rows.iter().map(|r| r.claim.clone()).fold(vec![], |mut v, c| {
        if !v.contains(&c) {
            v.push(c);
        }
        v
    });
    rows.sort_by(|a, b| {
        let rank = |r: &ClaimRow| claims.iter().position(|c| *c == r.claim);
        rank(a).cmp(&rank(b)).then(order(a).0.cmp(&order(b).0)).then(order(a).1.total_cmp(&order(b).1))
    });
    Ok(rows)
}

/// The claims figure: one panel per claim, in the table's order, with its
/// label settings along the axis (all labels first, then the fractions
/// from small to large) and one series per modality row.
pub fn claim_panels(rows: &[ClaimRow], title: String) -> crate::report::plots::ClaimPanels {
    let mut settings: Vec<String> = vec![];
    for r in rows {
        if !settings.contains(&r.labels) {
            settings.push(r.labels.clone());
        }
    }
    let order = |l: &String| l.trim_end_matches('%').parse::<f64>().unwrap_or(-1.0);
    settings.sort_by(|a, b| order(a).total_cmp(&order(b)));
    let mut panels: Vec<(String, crate::report::plots::ClaimPoints)> = vec![];
    for r in rows {
        let x = settings.iter().position(|s| *s == r.labels).expect("every setting was listed");
        let d = &r.difference;
        let point = (x, 100.0 * d.mean, 100.0 * d.low, 100.0 * d.high, r.paper);
        let panel = match panels.iter_mut().find(|p| p.0 == r.claim) {
            Some(p) => p,
            None => {
                panels.push((r.claim.clone(), vec![]));
                panels.last_mut().expect("just pushed")
            }
        };
        match panel.1.iter_mut().find(|m| m.0 == r.modality) {
            Some(m) => m.1.push(point),
            None => panel.1.push((r.modality.clone(), vec![point])),
        }
    }
    crate::report::plots::ClaimPanels { title, settings, panels }
}

/// The claims table (Markdown, CSV, LaTeX).
pub fn claims_table(rows: &[ClaimRow]) -> Table {
    let mut t = Table::new(&["Modality", "Claim", "Labels", "Difference", "95% interval", "Seeds won", "Paper difference", "Holds here"]);
    for r in rows {
        let d = &r.difference;
        t.push(vec![
            r.modality.clone(),
            r.claim.clone(),
            r.labels.clone(),
            format!("{:+.2}", 100.0 * d.mean),
            format!("[{:+.2}, {:+.2}]", 100.0 * d.low, 100.0 * d.high),
            format!("{}/{}", d.wins, d.seeds),
            r.paper.map(|x| format!("{x:+.2}")).unwrap_or_else(|| "—".into()),
            verdict(d, r.paper).into(),
        ]);
    }
    t
}

/// Whether the interval lies on the expected side of zero: the paper's
/// sign where it reports both rows, else the claim's (A above B).
fn verdict(d: &Difference, paper: Option<f64>) -> &'static str {
    let expected = if paper.is_some_and(|x| x < 0.0) { -1.0 } else { 1.0 };
    if expected * d.low > 0.0 && expected * d.high > 0.0 {
        "yes"
    } else if expected * d.low < 0.0 && expected * d.high < 0.0 {
        "no: reversed"
    } else {
        "not resolved (interval spans 0)"
    }
}

/// The note under the claims table.
pub const CLAIMS_NOTE: &str = "Difference: mean over seeds of A's main metric minus B's on the same test samples, in points (label fractions: each seed's mean over repetitions). 95% interval: seeded hierarchical bootstrap (2000 draws: seeds resampled, then test samples within each seed, both methods scored on the same draw). Seeds won: seeds where A scored higher. Holds here: the interval lies on the side of zero the paper reports (A above B where the paper has no number); with few seeds the interval is wide.\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(labels: &[usize], a: &[usize], b: &[usize]) -> PairedSeed {
        PairedSeed { labels: labels.to_vec(), repetitions: vec![(a.to_vec(), b.to_vec())] }
    }

    #[test]
    fn known_answers() {
        let labels: Vec<usize> = (0..40).map(|i| i % 4).collect();
        let wrong: Vec<usize> = labels.iter().map(|l| (l + 1) % 4).collect();
        let mut rng = crate::rng::stream(1, "test", 0);
        // A always right, B always wrong, three seeds: exactly +1, [1, 1], 3/3.
        let all = vec![seed(&labels, &labels, &wrong); 3];
        let d = paired_bootstrap(&all, 4, MainMetric::Accuracy, 500, &mut rng);
        assert_eq!((d.mean, d.low, d.high, d.wins, d.seeds), (1.0, 1.0, 1.0, 3, 3));
        // Identical methods: exactly 0 everywhere, no wins.
        let same = vec![seed(&labels, &wrong, &wrong); 2];
        let d = paired_bootstrap(&same, 4, MainMetric::F1Macro, 500, &mut rng);
        assert_eq!((d.mean, d.low, d.high, d.wins), (0.0, 0.0, 0.0, 0));
        // Two seeds, differences 1 and 0 with no spread within a seed: the
        // resampled means are 1, 0.5 and 0 with probabilities 1/4, 1/2,
        // 1/4, so the 95% interval is [0, 1] around 0.5.
        let two = vec![seed(&labels, &labels, &wrong), seed(&labels, &labels, &labels)];
        let d = paired_bootstrap(&two, 4, MainMetric::Accuracy, 2000, &mut rng);
        assert_eq!((d.mean, d.low, d.high, d.wins), (0.5, 0.0, 1.0, 1));
    }

    /// One seed, 400 samples, A right on all, B on every other one: the
    /// difference is 0.5 and its interval the binomial one, 0.5 +- 1.96 x
    /// sqrt(0.25 / 400) = [0.451, 0.549], computed here independently of
    /// the bootstrap.
    #[test]
    fn one_seed_matches_the_binomial_interval() {
        let labels: Vec<usize> = (0..400).map(|i| i % 5).collect();
        let half: Vec<usize> = labels.iter().enumerate().map(|(i, l)| if i % 2 == 0 { *l } else { (l + 1) % 5 }).collect();
        let seeds = [seed(&labels, &labels, &half)];
        let d = paired_bootstrap(&seeds, 5, MainMetric::Accuracy, DRAWS, &mut crate::rng::stream(7, "test", 0));
        let half_width = 1.96 * (0.25f64 / 400.0).sqrt();
        assert_eq!(d.mean, 0.5);
        assert!((d.low - (0.5 - half_width)).abs() < 0.01 && (d.high - (0.5 + half_width)).abs() < 0.01, "{d:?} vs +-{half_width}");
        // The same seed gives the same interval.
        let again = paired_bootstrap(&seeds, 5, MainMetric::Accuracy, DRAWS, &mut crate::rng::stream(7, "test", 0));
        assert_eq!(d, again);
    }
}
