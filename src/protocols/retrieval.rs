//! Activity retrieval (our protocol; the paper does not state its variant):
//! each test sample queries the train gallery by cosine similarity; a hit is
//! a gallery item of the query's class. Reports precision@1, @5, @10 and mean
//! average precision over the whole ranking. Ties in similarity are ranked by
//! gallery order (lower index first), so results are reproducible.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Retrieval quality of one embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrievalMetrics {
    pub precision_at_1: f64,
    pub precision_at_5: f64,
    pub precision_at_10: f64,
    pub mean_average_precision: f64,
    pub queries: usize,
    pub gallery: usize,
}

/// One query's ranking: the top gallery indices, most similar first.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    pub top: Vec<usize>,
    pub precision_at: [f64; 3],
    pub average_precision: f64,
}

/// Rows scaled to unit length (zero rows stay zero).
pub fn normalize_rows(rows: &[Vec<f32>]) -> Vec<Vec<f32>> {
    rows.iter()
        .map(|r| {
            let n = r.iter().map(|v| v * v).sum::<f32>().sqrt();
            if n > 0.0 {
                r.iter().map(|v| v / n).collect()
            } else {
                r.clone()
            }
        })
        .collect()
}

/// Concatenation of per-modality L2-normalised embeddings (the fused view).
pub fn fuse(parts: &[Vec<Vec<f32>>]) -> Vec<Vec<f32>> {
    let normalized: Vec<Vec<Vec<f32>>> = parts.iter().map(|p| normalize_rows(p)).collect();
    (0..parts[0].len()).map(|i| normalized.iter().flat_map(|p| p[i].iter().copied()).collect()).collect()
}

/// Ranks the gallery for one query (both already L2-normalised).
pub fn rank(query: &[f32], query_label: usize, gallery: &[Vec<f32>], gallery_labels: &[usize], top: usize) -> Ranking {
    let sims: Vec<f32> = gallery.iter().map(|g| g.iter().zip(query).map(|(a, b)| a * b).sum()).collect();
    let mut order: Vec<usize> = (0..gallery.len()).collect();
    order.sort_by(|&a, &b| sims[b].total_cmp(&sims[a]).then(a.cmp(&b)));
    let relevant: Vec<bool> = order.iter().map(|&g| gallery_labels[g] == query_label).collect();
    let precision = |k: usize| relevant.iter().take(k).filter(|&&r| r).count() as f64 / k.min(relevant.len()).max(1) as f64;
    let total_relevant = relevant.iter().filter(|&&r| r).count();
    let mut hits = 0;
    let mut ap = 0.0;
    for (pos, &r) in relevant.iter().enumerate() {
        if r {
            hits += 1;
            ap += hits as f64 / (pos + 1) as f64;
        }
    }
    Ranking {
        top: order.into_iter().take(top).collect(),
        precision_at: [precision(1), precision(5), precision(10)],
        average_precision: if total_relevant > 0 { ap / total_relevant as f64 } else { 0.0 },
    }
}

/// Ranks every query against the gallery (cosine similarity).
pub fn retrieve(queries: &[Vec<f32>], query_labels: &[usize], gallery: &[Vec<f32>], gallery_labels: &[usize]) -> (RetrievalMetrics, Vec<Ranking>) {
    let q = normalize_rows(queries);
    let g = normalize_rows(gallery);
    let rankings: Vec<Ranking> = q.par_iter().zip(query_labels).map(|(q, &l)| rank(q, l, &g, gallery_labels, 10)).collect();
    let n = rankings.len().max(1) as f64;
    let mean = |f: &dyn Fn(&Ranking) -> f64| rankings.iter().map(f).sum::<f64>() / n;
    let metrics = RetrievalMetrics {
        precision_at_1: mean(&|r| r.precision_at[0]),
        precision_at_5: mean(&|r| r.precision_at[1]),
        precision_at_10: mean(&|r| r.precision_at[2]),
        mean_average_precision: mean(&|r| r.average_precision),
        queries: queries.len(),
        gallery: gallery.len(),
    };
    (metrics, rankings)
}

/// One retrieval setting's result: its metrics and per-query rankings.
pub struct RetrievalSetting {
    pub name: String,
    pub metrics: RetrievalMetrics,
    pub rankings: Vec<Ranking>,
}

/// Runs every retrieval setting the encoders allow: each modality alone,
/// the fused embedding (several modalities), and cross-modal retrieval in
/// the shared projection space (CMC / CMC-CMKM only). Queries are the test
/// split, the gallery the train split.
pub fn retrieval_settings(set: &super::EncoderSet, data: &crate::training::TrainData, device: &burn::prelude::Device) -> anyhow::Result<Vec<RetrievalSetting>> {
    set.check(data)?;
    let (q, g) = (&data.split.test, &data.split.train);
    let pick = |rows: &Vec<Vec<f32>>, idx: &[usize]| idx.iter().map(|&i| rows[i].clone()).collect::<Vec<_>>();
    let labels = |idx: &[usize]| idx.iter().map(|&i| data.labels[i]).collect::<Vec<_>>();
    let run = |name: String, query: &Vec<Vec<f32>>, gallery: &Vec<Vec<f32>>| {
        let (metrics, rankings) = retrieve(&pick(query, q), &labels(q), &pick(gallery, g), &labels(g));
        RetrievalSetting { name, metrics, rankings }
    };
    let features = set.features(data, device)?;
    let mut out: Vec<RetrievalSetting> = set.modalities.iter().zip(&features).map(|(m, f)| run(m.clone(), f, f)).collect();
    if features.len() > 1 {
        let fused = fuse(&features);
        out.push(run("fused".into(), &fused, &fused));
    }
    if let Some(p) = set.projected(data, device)? {
        let (a, b) = (&set.modalities[0], &set.modalities[1]);
        out.push(run(format!("{a}->{b}"), &p[0], &p[1]));
        out.push(run(format!("{b}->{a}"), &p[1], &p[0]));
    }
    Ok(out)
}

/// `retrieval.json`: the metrics of each setting, by setting name
/// (`inertial`, `skeleton`, `fused`, `inertial->skeleton`...).
pub type RetrievalFile = std::collections::BTreeMap<String, RetrievalMetrics>;

/// The name of a retrieval run's metrics file.
pub const RETRIEVAL_FILE: &str = "retrieval.json";

/// Reads a run's `retrieval.json`.
pub fn read_retrieval(dir: &std::path::Path) -> anyhow::Result<RetrievalFile> {
    crate::fsutil::read_json(&dir.join(RETRIEVAL_FILE))
}

/// Writes `retrieval.json` (metrics per setting) and, per setting,
/// `ranking_<setting>.csv` with the top-10 gallery ids of every query.
pub fn write_retrieval(dir: &std::path::Path, settings: &[RetrievalSetting], data: &crate::training::TrainData) -> anyhow::Result<()> {
    let file: RetrievalFile = settings.iter().map(|s| (s.name.clone(), s.metrics.clone())).collect();
    crate::fsutil::write_json(&dir.join(RETRIEVAL_FILE), &file)?;
    for s in settings {
        let mut csv = String::from("query_id,label");
        (1..=10).for_each(|k| csv.push_str(&format!(",top{k}")));
        csv.push('\n');
        for (&qi, r) in data.split.test.iter().zip(&s.rankings) {
            csv.push_str(&format!("{},{}", data.sample_ids[qi], data.labels[qi] + 1));
            for &g in &r.top {
                csv.push_str(&format!(",{}", data.sample_ids[data.split.train[g]]));
            }
            csv.push('\n');
        }
        let file = format!("ranking_{}.csv", s.name.replace("->", "_to_"));
        crate::fsutil::write_atomic(&dir.join(file), csv.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed writer gives the bytes of the files written before it (a
    /// setting of the committed paper suite's `retrieval.json`, keys sorted).
    #[test]
    fn retrieval_files_read_and_written_back_keep_their_bytes() {
        let text = "{\n  \"fused\": {\n    \"gallery\": 323,\n    \"mean_average_precision\": 0.7404678944925621,\n    \"precision_at_1\": 0.8906976744186047,\n    \"precision_at_10\": 0.716511627906977,\n    \"precision_at_5\": 0.815348837209303,\n    \"queries\": 430\n  }\n}";
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(RETRIEVAL_FILE), text).unwrap();
        let file = read_retrieval(dir.path()).unwrap();
        crate::fsutil::write_json(&dir.path().join("again.json"), &file).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("again.json")).unwrap(), text);
    }

    #[test]
    fn by_hand() {
        // Gallery on the unit circle; query at angle 0, class 0.
        let g = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.9, 0.1], vec![-1.0, 0.0]];
        let labels = [0, 1, 1, 0];
        let r = rank(&normalize_rows(&[vec![1.0, 0.0]])[0], 0, &normalize_rows(&g), &labels, 10);
        assert_eq!(r.top, vec![0, 2, 1, 3]);
        // Relevant at ranks 1 and 4: AP = (1/1 + 2/4) / 2.
        assert!((r.average_precision - 0.75).abs() < 1e-12);
        assert_eq!(r.precision_at[0], 1.0);
        assert_eq!(r.precision_at[1], 0.5); // 2 of the 4 available
    }

    #[test]
    fn clusters_are_retrieved_perfectly_and_ties_keep_gallery_order() {
        let centre = |c: usize| -> Vec<f32> { (0..4).map(|k| if k == c { 1.0 } else { 0.0 }).collect() };
        let gallery: Vec<Vec<f32>> = (0..40).map(|i| centre(i % 4).iter().map(|v| v + 0.01 * (i as f32).sin()).collect()).collect();
        let glabels: Vec<usize> = (0..40).map(|i| i % 4).collect();
        let queries: Vec<Vec<f32>> = (0..8).map(|i| centre(i % 4)).collect();
        let qlabels: Vec<usize> = (0..8).map(|i| i % 4).collect();
        let (m, _) = retrieve(&queries, &qlabels, &gallery, &glabels);
        assert_eq!((m.precision_at_1, m.precision_at_5, m.precision_at_10, m.mean_average_precision), (1.0, 1.0, 1.0, 1.0));
        let same = vec![vec![1.0, 0.0]; 3];
        assert_eq!(rank(&[1.0, 0.0], 0, &same, &[1, 0, 0], 3).top, vec![0, 1, 2]);
        // Fused embeddings weigh each modality equally.
        let fused = fuse(&[vec![vec![3.0, 4.0]], vec![vec![0.0, 2.0]]]);
        assert_eq!(fused[0], vec![0.6, 0.8, 0.0, 1.0]);
    }
}
