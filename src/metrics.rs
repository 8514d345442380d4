//! Classification metrics. Macro averages run over the classes that occur in
//! the labels or the predictions (scikit-learn's default `labels=None`); a
//! class with no predicted (or no true) samples has precision (or recall)
//! 0, as scikit-learn's `zero_division=0`.

use serde::{Deserialize, Serialize};

/// The metric that selects models and heads the paper's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MainMetric {
    Accuracy,
    F1Macro,
}

/// Accuracy, macro precision / recall / F1 (fractions in 0..1) and the
/// confusion matrix (`confusion[true][predicted]`). What `metrics.json`
/// holds (fine-tuning adds its epochs and modalities beside), and what the
/// report reads back from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationMetrics {
    pub accuracy: f64,
    pub f1_macro: f64,
    pub precision_macro: f64,
    pub recall_macro: f64,
    pub confusion: Vec<Vec<usize>>,
}

impl ClassificationMetrics {
    /// The dataset's main metric (model selection, the paper's table).
    pub fn main(&self, which: MainMetric) -> f64 {
        match which {
            MainMetric::Accuracy => self.accuracy,
            MainMetric::F1Macro => self.f1_macro,
        }
    }
}

/// Metrics of `predictions` against `labels`, both 0-based below `classes`.
pub fn classification_metrics(labels: &[usize], predictions: &[usize], classes: usize) -> ClassificationMetrics {
    let mut confusion = vec![vec![0usize; classes]; classes];
    for (&l, &p) in labels.iter().zip(predictions) {
        confusion[l][p] += 1;
    }
    let correct: usize = (0..classes).map(|c| confusion[c][c]).sum();
    let present: Vec<usize> = (0..classes).filter(|&c| confusion[c].iter().sum::<usize>() > 0 || (0..classes).any(|r| confusion[r][c] > 0)).collect();
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let (mut p_sum, mut r_sum, mut f_sum) = (0.0, 0.0, 0.0);
    for &c in &present {
        let tp = confusion[c][c];
        let precision = ratio(tp, (0..classes).map(|r| confusion[r][c]).sum());
        let recall = ratio(tp, confusion[c].iter().sum());
        let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
        p_sum += precision;
        r_sum += recall;
        f_sum += f1;
    }
    let k = present.len().max(1) as f64;
    ClassificationMetrics { accuracy: ratio(correct, labels.len()), f1_macro: f_sum / k, precision_macro: p_sum / k, recall_macro: r_sum / k, confusion }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand_with_an_absent_class() {
        // Class 2 never occurs; class 1 is predicted once wrongly.
        let m = classification_metrics(&[0, 0, 1, 1, 3], &[0, 1, 1, 1, 3], 4);
        assert_eq!(m.accuracy, 0.8);
        // Precision: c0 1/1, c1 2/3, c3 1/1; recall: c0 1/2, c1 1, c3 1.
        assert!((m.precision_macro - (1.0 + 2.0 / 3.0 + 1.0) / 3.0).abs() < 1e-12);
        assert!((m.recall_macro - (0.5 + 1.0 + 1.0) / 3.0).abs() < 1e-12);
        let f = [2.0 * 0.5 / 1.5, 2.0 * (2.0 / 3.0) / (5.0 / 3.0), 1.0];
        assert!((m.f1_macro - f.iter().sum::<f64>() / 3.0).abs() < 1e-12);
        assert_eq!(m.confusion[0], vec![1, 1, 0, 0]);
    }
}
