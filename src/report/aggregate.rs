//! Aggregation over seeds (and label-fraction repetitions): mean, sample
//! standard deviation (n - 1, 0 for one value) and count per group.

use super::frame::Frame;
use anyhow::Result;
use std::collections::HashMap;

/// Mean, standard deviation and count of one value in one group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

/// One group: its key values (in `keys` order) and a statistic per value
/// column (in `values` order).
#[derive(Debug, Clone)]
pub struct Group {
    pub keys: Vec<String>,
    pub numeric_keys: Vec<f64>,
    pub stats: Vec<Stat>,
}

/// Groups `frame` by the text columns `keys` (and number columns
/// `numeric_keys`) in first-appearance order and summarises each column of
/// `values`.
pub fn summarise(frame: &Frame, keys: &[&str], numeric_keys: &[&str], values: &[&str]) -> Result<Vec<Group>> {
    let keys: Vec<&[String]> = keys.iter().map(|k| frame.text(k)).collect::<Result<_>>()?;
    let numeric_keys: Vec<&[f64]> = numeric_keys.iter().map(|k| frame.numbers(k)).collect::<Result<_>>()?;
    let values: Vec<&[f64]> = values.iter().map(|v| frame.numbers(v)).collect::<Result<_>>()?;
    // Each group's rows, in order of first appearance.
    let mut index: HashMap<(Vec<&str>, Vec<u64>), usize> = HashMap::new();
    let mut members: Vec<Vec<usize>> = vec![];
    for row in 0..frame.height() {
        // -0.0 and 0.0 are one key.
        let key = (keys.iter().map(|k| k[row].as_str()).collect(), numeric_keys.iter().map(|k| (k[row] + 0.0).to_bits()).collect());
        let next = members.len();
        let group = *index.entry(key).or_insert(next);
        if group == next {
            members.push(vec![]);
        }
        members[group].push(row);
    }
    Ok(members
        .iter()
        .map(|rows| Group {
            keys: keys.iter().map(|k| k[rows[0]].clone()).collect(),
            numeric_keys: numeric_keys.iter().map(|k| k[rows[0]]).collect(),
            stats: values.iter().map(|v| stat(rows.iter().map(|&r| v[r]))).collect(),
        })
        .collect())
}

/// Mean (a compensated, Kahan, sum, as polars summed a group)
/// and sample standard deviation (two passes).
fn stat(values: impl Iterator<Item = f64> + Clone) -> Stat {
    let n = values.clone().count();
    let (mut sum, mut carry) = (0.0f64, 0.0f64);
    for v in values.clone() {
        let y = v - carry;
        let t = sum + y;
        carry = (t - sum) - y;
        sum = t;
    }
    let mean = sum / n as f64;
    let std = if n > 1 { (values.map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64).sqrt() } else { 0.0 };
    Stat { mean, std, n }
}

/// `mean ± std` in percent with two decimals (the paper's format).
pub fn percent(s: Stat) -> String {
    if s.n > 1 {
        format!("{:.2} ± {:.2}", 100.0 * s.mean, 100.0 * s.std)
    } else {
        format!("{:.2}", 100.0 * s.mean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std_per_group_in_first_appearance_order() {
        let frame =
            |methods: &[&str], x: &[f64]| Frame::new(vec![("method", methods.iter().map(|m| m.to_string()).collect())], vec![("x", x.to_vec())]).unwrap();
        let g = summarise(&frame(&["b", "a", "b", "a", "b"], &[1.0, 10.0, 2.0, 10.0, 3.0]), &["method"], &[], &["x"]).unwrap();
        assert_eq!(g[0].keys, vec!["b".to_string()]);
        assert_eq!(g[0].stats[0], Stat { mean: 2.0, std: 1.0, n: 3 });
        assert_eq!(g[1].stats[0], Stat { mean: 10.0, std: 0.0, n: 2 });
        assert_eq!(summarise(&frame(&["a"], &[0.5]), &["method"], &[], &["x"]).unwrap()[0].stats[0], Stat { mean: 0.5, std: 0.0, n: 1 });
        assert!(summarise(&frame(&[], &[]), &["method"], &[], &["x"]).unwrap().is_empty());
        assert!(summarise(&frame(&["a"], &[0.5]), &["modality"], &[], &["x"]).unwrap_err().to_string().contains("'modality'"));
        assert_eq!(percent(Stat { mean: 0.97674, std: 0.005, n: 3 }), "97.67 ± 0.50");
    }

    #[test]
    fn number_keys_group_with_text_keys() {
        let frame = Frame::new(
            vec![("method", ["m", "m", "m", "m"].map(String::from).to_vec())],
            vec![("fraction", vec![0.1, 0.5, 0.1, -0.0]), ("x", vec![1.0, 5.0, 3.0, 7.0])],
        )
        .unwrap();
        let g = summarise(&frame, &["method"], &["fraction"], &["x"]).unwrap();
        let found: Vec<(f64, f64, usize)> = g.iter().map(|g| (g.numeric_keys[0], g.stats[0].mean, g.stats[0].n)).collect();
        assert_eq!(found, [(0.1, 2.0, 2), (0.5, 5.0, 1), (-0.0, 7.0, 1)]);
    }
}
