//! Sweeps in the report: each swept method's variant chosen on the
//! validation split (never the test split), the sweep table with every
//! variant's validation and test metric, and the view of the results in
//! which a swept method is its chosen variant (main table, claims, plots).

use super::claims::{read_predictions, score_bootstrap};
use super::frame::Frame;
use super::table::Table;
use crate::harness::plan::PlannedRun;
use crate::harness::runner::Prepared;
use crate::harness::sweep::{show, Search, Sweep};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;

/// The variant chosen for each swept method, and every variant's name.
#[derive(Debug, Clone, Default)]
pub struct Chosen {
    /// Swept method -> its chosen variant.
    pub by_method: BTreeMap<String, String>,
    /// Every variant name -> its swept method.
    variants: BTreeMap<String, String>,
}

impl Chosen {
    /// The names a run is reported under: its own and the variants it also
    /// stands for, plus the swept method's where one of them is the chosen
    /// variant.
    pub fn names(&self, run: &PlannedRun) -> Vec<String> {
        let mut names: Vec<String> = std::iter::once(&run.method).chain(&run.also).cloned().collect();
        for (method, variant) in &self.by_method {
            if names.contains(variant) {
                names.push(method.clone());
            }
        }
        names
    }

    /// `frame` (with a `method` column) as the main table sees the suite:
    /// a swept method's rows are its chosen variant's, renamed; the other
    /// variants' rows are left out.
    pub fn main_view(&self, frame: &Frame) -> Result<Frame> {
        if self.variants.is_empty() {
            return Ok(frame.clone());
        }
        let chosen_of: BTreeMap<&str, &str> = self.by_method.iter().map(|(m, v)| (v.as_str(), m.as_str())).collect();
        let (mut keep, mut names) = (vec![], vec![]);
        for m in frame.text("method")? {
            match chosen_of.get(m.as_str()) {
                Some(method) => {
                    keep.push(true);
                    names.push(method.to_string());
                }
                None => {
                    keep.push(!self.variants.contains_key(m));
                    names.push(m.clone());
                }
            }
        }
        let mut out = frame.clone();
        out.set_text("method", names)?;
        Ok(out.filter(&keep))
    }
}

/// One classification row of a variant: what selection and the sweep table read.
#[derive(Debug, Clone)]
struct Row {
    method: String,
    modality: String,
    run: String,
    seed: u64,
    validation: f64,
}

fn rows(classification: &Frame) -> Result<Vec<Row>> {
    let (method, modality, run) = (classification.text("method")?, classification.text("modality")?, classification.text("run")?);
    let (seed, validation) = (classification.numbers("seed")?, classification.numbers("validation")?);
    Ok((0..classification.height())
        .map(|i| Row { method: method[i].clone(), modality: modality[i].clone(), run: run[i].clone(), seed: seed[i] as u64, validation: validation[i] })
        .collect())
}

/// Chooses each swept method's variant: the highest mean validation main
/// metric over its finished classification rows (seeds and modality
/// rows), the first in the sweep's order on a tie. Reads the `validation`
/// column only; a row without one (a run written before cmkm recorded
/// it) is an error naming the run.
pub fn choose(sweeps: &BTreeMap<String, Sweep>, classification: &Frame) -> Result<Chosen> {
    let rows = rows(classification)?;
    let mut chosen = Chosen::default();
    for (method, sweep) in sweeps {
        let mut best: Option<(&str, f64)> = None;
        for v in &sweep.variants {
            chosen.variants.insert(v.name.clone(), method.clone());
            let mine: Vec<&Row> = rows.iter().filter(|r| r.method == v.name).collect();
            if let Some(r) = mine.iter().find(|r| r.validation.is_nan()) {
                bail!("run {} ({}) records no validation metric to choose a variant of '{method}' on (it predates sweeps): remove its folder from the run store and run the suite again", r.run, v.name);
            }
            if mine.is_empty() {
                continue;
            }
            let score = mine.iter().map(|r| r.validation).sum::<f64>() / mine.len() as f64;
            if best.is_none_or(|(_, b)| score > b) {
                best = Some((&v.name, score));
            }
        }
        if let Some((name, _)) = best {
            chosen.by_method.insert(method.clone(), name.to_string());
        }
    }
    Ok(chosen)
}

/// One sweep table row's figures: a variant on one modality row.
#[derive(Debug, Clone)]
pub struct SweepPoint {
    pub variant: String,
    pub modality: String,
    pub seeds: usize,
    /// Mean validation main metric over seeds.
    pub validation: f64,
    /// Test main metric: mean over seeds and its 95% hierarchical bootstrap interval.
    pub test: f64,
    pub low: f64,
    pub high: f64,
}

/// Every finished variant of `sweep` per modality row, in the sweep's order.
pub fn sweep_points(p: &Prepared, sweep: &Sweep, classification: &Frame) -> Result<Vec<SweepPoint>> {
    let rows = rows(classification)?;
    let metric = p.dataset.decl.main_metric;
    let classes = p.dataset.decl.classes.len();
    let mut out = vec![];
    for v in &sweep.variants {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.method == v.name).collect();
        let mut modalities: Vec<&str> = mine.iter().map(|r| r.modality.as_str()).collect();
        modalities.sort_by_key(|m| (super::paper::modality_order(m), m.to_string()));
        modalities.dedup();
        for modality in modalities {
            let mut here: Vec<&&Row> = mine.iter().filter(|r| r.modality == modality).collect();
            here.sort_by_key(|r| r.seed);
            let mut seeds = vec![];
            for r in &here {
                let predictions = read_predictions(&p.store.dir(&r.run)).with_context(|| format!("sweep table of '{}'", v.name))?;
                seeds.push(predictions.values().copied().unzip::<usize, usize, Vec<usize>, Vec<usize>>());
            }
            let mut rng = crate::rng::stream(0, &format!("sweep/{}/{modality}", v.name), 0);
            let b = score_bootstrap(&seeds, classes, metric, &mut rng);
            let validation = here.iter().map(|r| r.validation).sum::<f64>() / here.len() as f64;
            out.push(SweepPoint {
                variant: v.name.clone(),
                modality: modality.to_string(),
                seeds: here.len(),
                validation,
                test: b.mean,
                low: b.low,
                high: b.high,
            });
        }
    }
    Ok(out)
}

/// The sweep table of one swept method.
pub fn sweep_table(sweep: &Sweep, points: &[SweepPoint], chosen: Option<&str>, metric: &str) -> Table {
    let labels = sweep.labels();
    let mut headers: Vec<String> = vec!["Variant".into()];
    headers.extend(labels.iter().cloned());
    headers.extend(["Modality", "Seeds"].map(String::from));
    headers.extend([format!("Validation {metric} (%)"), format!("Test {metric} (%)"), "95% interval".into(), "Chosen".into()]);
    let mut t = Table { headers, rows: vec![] };
    for pt in points {
        let Some(v) = sweep.variant(&pt.variant) else { continue };
        let mut row = vec![pt.variant.clone()];
        row.extend(v.values.iter().map(|(_, value)| show(value)));
        row.extend([pt.modality.clone(), pt.seeds.to_string()]);
        row.extend([
            format!("{:.2}", 100.0 * pt.validation),
            format!("{:.2}", 100.0 * pt.test),
            format!("[{:.2}, {:.2}]", 100.0 * pt.low, 100.0 * pt.high),
            if chosen == Some(pt.variant.as_str()) { "yes".into() } else { String::new() },
        ]);
        t.push(row);
    }
    t
}

/// The note under a sweep table.
pub fn sweep_note(method: &str, sweep: &Sweep, chosen: Option<&str>) -> String {
    let search = match sweep.search {
        Search::Grid => "every point of the grid",
        Search::Random => "a seeded random sample of the grid",
        Search::OneAtATime => "the method file as written (`[base]`), then each key's other values with the other keys as written",
    };
    let mut note = format!(
        "Variants of `{method}`: {search}. Validation: the main metric on the validation split at each run's best epoch, mean over seeds. Test: mean over seeds with a 95% hierarchical bootstrap interval (seeds, then test samples).\n"
    );
    match chosen {
        Some(c) => note.push_str(&format!(
            "\nChosen: `{c}`, the highest validation metric averaged over seeds and modality rows; the main table, the claims and the other tables report `{method}` as this variant. The test split played no part in the choice.\n"
        )),
        None => note.push_str("\nNo variant has finished runs yet: nothing was chosen.\n"),
    }
    note
}

/// A swept method's variants along one key, the other keys held at the
/// reference point (the chosen variant; the `[base]` point for a
/// one-at-a-time sweep): (value label, variant) in the key's order.
pub fn along_key<'a>(sweep: &'a Sweep, key: usize, reference: &str) -> Vec<(String, &'a str)> {
    let Some(r) = sweep.variant(reference) else { return vec![] };
    if sweep.search == Search::OneAtATime {
        let mut out = vec![(format!("{} (as written)", show(&r.values[key].1)), r.name.as_str())];
        for v in &sweep.variants {
            let moved: Vec<usize> = (0..sweep.keys.len()).filter(|&k| v.values[k].1 != r.values[k].1).collect();
            if moved == [key] {
                out.push((show(&v.values[key].1), v.name.as_str()));
            }
        }
        return out;
    }
    sweep
        .variants
        .iter()
        .filter(|v| (0..sweep.keys.len()).all(|k| k == key || v.values[k].1 == r.values[k].1))
        .map(|v| (show(&v.values[key].1), v.name.as_str()))
        .collect()
}

/// The reference point of a sweep's plots.
pub fn reference<'a>(method: &str, sweep: &'a Sweep, chosen: Option<&'a str>) -> Option<&'a str> {
    match sweep.search {
        Search::OneAtATime => sweep.variant(&format!("{method}[base]")).map(|v| v.name.as_str()),
        _ => chosen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::sweep::Variant;

    fn sweep() -> Sweep {
        let base: crate::methods::config::MethodConfig = serde_yaml::from_str(
            "name: m\nkind: simclr\nmodalities: [x]\nencoders: {x: {type: co_occurrence}}\nschedule: {epochs: 1, batch_size: 4, lr: 0.001, plateau_patience: 5}\n",
        )
        .unwrap();
        let variant = |k: i64| Variant { name: format!("m[k={k}]"), values: vec![("loss.k".into(), k.into())], config: base.clone() };
        Sweep { keys: vec!["loss.k".into()], search: Search::Grid, base: base.clone(), variants: vec![variant(1), variant(2), variant(3)] }
    }

    /// Validation prefers k=2 while the test split prefers k=3: the choice
    /// follows validation alone, and the main view renames k=2's rows.
    #[test]
    fn the_choice_reads_validation_and_never_test() {
        let text = |values: [&str; 6]| values.map(String::from).to_vec();
        let frame = Frame::new(
            vec![
                ("method", text(["m[k=1]", "m[k=2]", "m[k=3]", "m[k=2]", "m[k=3]", "other"])),
                ("modality", text(["X", "X", "X", "X", "X", "X"])),
                ("run", text(["a", "b", "c", "d", "e", "f"])),
            ],
            vec![
                ("seed", vec![1.0, 1.0, 1.0, 2.0, 2.0, 1.0]),
                ("main", vec![0.5, 0.4, 0.9, 0.4, 0.9, 0.1]),
                ("validation", vec![0.6, 0.8, 0.7, 0.7, 0.7, 0.2]),
            ],
        )
        .unwrap();
        let sweeps = BTreeMap::from([("m".to_string(), sweep())]);
        let chosen = choose(&sweeps, &frame).unwrap();
        assert_eq!(chosen.by_method["m"], "m[k=2]");
        // Changing only the test metric changes nothing.
        let mut flipped = frame.clone();
        flipped.set_numbers("main", vec![0.9, 0.1, 0.0, 0.1, 0.0, 0.5]).unwrap();
        assert_eq!(choose(&sweeps, &flipped).unwrap().by_method["m"], "m[k=2]");
        let view = chosen.main_view(&frame).unwrap();
        assert_eq!(view.text("method").unwrap(), ["m", "m", "other"]);
        // A row without a validation metric is an error naming its run.
        let mut old = frame.clone();
        old.set_numbers("validation", vec![0.6, f64::NAN, 0.7, 0.7, 0.7, 0.2]).unwrap();
        let err = choose(&sweeps, &old).unwrap_err().to_string();
        assert!(err.contains("run b") && err.contains("validation"), "{err}");
    }

    #[test]
    fn variants_along_a_key_hold_the_others_at_the_reference() {
        let s = sweep();
        let along = along_key(&s, 0, "m[k=2]");
        assert_eq!(along.iter().map(|a| a.1).collect::<Vec<_>>(), ["m[k=1]", "m[k=2]", "m[k=3]"]);
    }
}
