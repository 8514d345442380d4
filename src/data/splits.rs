//! Train / validation / test protocols and label-fraction subsets.
//!
//! A protocol is either a set of rules on sample attributes (subjects, scenes,
//! sessions, trials) per split, or a seeded stratified random split.
//! Impossible protocols (overlapping or empty splits, a class that is in the
//! data but not in the training split) are errors, not warnings.

use crate::data::sample::{Attributes, SampleMeta};
use crate::rng::stream;
use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which samples belong to one split: every list given must contain the
/// sample's attribute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitRule {
    #[serde(default)]
    pub subjects: Option<Vec<u32>>,
    #[serde(default)]
    pub scenes: Option<Vec<u32>>,
    #[serde(default)]
    pub sessions: Option<Vec<u32>>,
    #[serde(default)]
    pub trials: Option<Vec<u32>>,
}

/// A seeded, per-class random split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StratifiedDecl {
    pub seed: u64,
    pub val_fraction: f64,
    pub test_fraction: f64,
}

/// A protocol: either `train`/`val`/`test` rules or `stratified`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolDecl {
    #[serde(default)]
    pub train: Option<SplitRule>,
    #[serde(default)]
    pub val: Option<SplitRule>,
    #[serde(default)]
    pub test: Option<SplitRule>,
    #[serde(default)]
    pub stratified: Option<StratifiedDecl>,
}

/// Sample indices of the three splits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Split {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
}

impl Split {
    /// The splits by name, in order.
    pub fn named(&self) -> [(&'static str, &[usize]); 3] {
        [("train", &self.train), ("val", &self.val), ("test", &self.test)]
    }
}

impl ProtocolDecl {
    /// Checks that exactly one form is used and its parameters make sense.
    pub fn validate(&self) -> Result<()> {
        let has_rules = self.train.is_some() || self.val.is_some() || self.test.is_some();
        match (&self.stratified, has_rules) {
            (Some(_), true) => bail!("give either train/val/test rules or 'stratified', not both"),
            (None, false) => bail!("give train/val/test rules or 'stratified'"),
            (None, true) if self.train.is_none() || self.val.is_none() || self.test.is_none() => {
                bail!("rules need all of train, val and test")
            }
            (Some(s), _) => {
                let ok = |f: f64| f > 0.0 && f < 1.0;
                if !ok(s.val_fraction) || !ok(s.test_fraction) || s.val_fraction + s.test_fraction >= 1.0 {
                    bail!("stratified fractions must be in (0, 1) and sum below 1");
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Assigns samples to splits; samples matching no rule are left out.
    pub fn split(&self, samples: &[SampleMeta]) -> Result<Split> {
        self.validate()?;
        let split = match &self.stratified {
            Some(s) => stratified_split(samples, s),
            None => rule_split(self, samples)?,
        };
        check_split(&split, samples)?;
        Ok(split)
    }
}

impl SplitRule {
    fn matches(&self, s: &SampleMeta) -> Result<bool> {
        self.admits(&s.id, &s.attributes())
    }

    /// Whether a sample (`id`, for messages) with attributes `a` belongs.
    fn admits(&self, id: &str, a: &Attributes) -> Result<bool> {
        let check = |list: &Option<Vec<u32>>, value: Option<u32>, what: &str| -> Result<bool> {
            match (list, value) {
                (None, _) => Ok(true),
                (Some(l), Some(v)) => Ok(l.contains(&v)),
                (Some(_), None) => bail!("sample {id} has no {what}, but the protocol selects by {what}"),
            }
        };
        Ok(check(&self.subjects, Some(a.subject), "subject")?
            && check(&self.scenes, a.scene, "scene")?
            && check(&self.sessions, a.session, "session")?
            && check(&self.trials, a.trial, "trial")?)
    }
}

impl ProtocolDecl {
    /// Whether an unlabelled sample belongs to the training split, as a
    /// labelled one with its attributes would: unlabelled windows join
    /// self-supervised pre-training on the training subjects only. A
    /// stratified protocol splits by label and so cannot place them.
    pub fn trains_on(&self, id: &str, a: &Attributes) -> Result<bool> {
        match (&self.train, &self.stratified) {
            (Some(rule), None) => rule.admits(id, a),
            _ => bail!("unlabelled windows for pre-training need a protocol with train/val/test rules; a stratified split places samples by label"),
        }
    }
}

fn rule_split(p: &ProtocolDecl, samples: &[SampleMeta]) -> Result<Split> {
    let rules = [p.train.as_ref(), p.val.as_ref(), p.test.as_ref()];
    let names = ["train", "val", "test"];
    let mut out: [Vec<usize>; 3] = Default::default();
    for (i, s) in samples.iter().enumerate() {
        let mut hit = None;
        for (k, rule) in rules.iter().enumerate() {
            if rule.expect("validated").matches(s)? {
                if let Some(prev) = hit {
                    bail!("sample {} is in both the {} and the {} split", s.id, names[prev], names[k]);
                }
                hit = Some(k);
            }
        }
        if let Some(k) = hit {
            out[k].push(i);
        }
    }
    let [train, val, test] = out;
    Ok(Split { train, val, test })
}

fn stratified_split(samples: &[SampleMeta], s: &StratifiedDecl) -> Split {
    let mut split = Split { train: vec![], val: vec![], test: vec![] };
    let labels: Vec<usize> = samples.iter().map(|s| s.label).collect();
    for (label, mut idx) in by_class(&labels, &(0..samples.len()).collect::<Vec<_>>()) {
        idx.shuffle(&mut stream(s.seed, "stratified_split", label as u64));
        let n = idx.len();
        // Round per class, but keep at least one training sample per class.
        let n_test = ((s.test_fraction * n as f64).round() as usize).min(n - 1);
        let n_val = ((s.val_fraction * n as f64).round() as usize).min(n - 1 - n_test);
        split.test.extend(&idx[..n_test]);
        split.val.extend(&idx[n_test..n_test + n_val]);
        split.train.extend(&idx[n_test + n_val..]);
    }
    for v in [&mut split.train, &mut split.val, &mut split.test] {
        v.sort_unstable();
    }
    split
}

/// Indices grouped by label, in label order, each group in input order.
fn by_class(labels: &[usize], indices: &[usize]) -> BTreeMap<usize, Vec<usize>> {
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &i in indices {
        groups.entry(labels[i]).or_default().push(i);
    }
    groups
}

fn check_split(split: &Split, samples: &[SampleMeta]) -> Result<()> {
    for (name, idx) in split.named() {
        if idx.is_empty() {
            bail!("the {name} split is empty: no sample matches its rule");
        }
    }
    let in_data: std::collections::BTreeSet<usize> = samples.iter().map(|s| s.label).collect();
    let in_train: std::collections::BTreeSet<usize> = split.train.iter().map(|&i| samples[i].label).collect();
    let missing: Vec<usize> = in_data.difference(&in_train).map(|l| l + 1).collect();
    if !missing.is_empty() {
        bail!("classes {missing:?} (1-based) occur in the data but not in the train split");
    }
    Ok(())
}

/// A per-class subset of `train` holding `fraction` of each class (rounded,
/// at least one sample per class), drawn from the stream
/// `(seed, "label_fraction", repetition)` so repetitions differ.
pub fn label_fraction_split(labels: &[usize], train: &[usize], fraction: f64, seed: u64, repetition: u64) -> Result<Vec<usize>> {
    if !(fraction > 0.0 && fraction <= 1.0) {
        bail!("label fraction must be in (0, 1], got {fraction}");
    }
    let mut rng = stream(seed, "label_fraction", repetition);
    let mut subset = Vec::new();
    for (_, mut idx) in by_class(labels, train) {
        let keep = ((fraction * idx.len() as f64).round() as usize).clamp(1, idx.len());
        idx.shuffle(&mut rng);
        subset.extend(&idx[..keep]);
    }
    subset.sort_unstable();
    Ok(subset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(n_classes: usize, subjects: u32, trials: u32) -> Vec<SampleMeta> {
        let mut v = vec![];
        for label in 0..n_classes {
            for subject in 1..=subjects {
                for trial in 1..=trials {
                    v.push(SampleMeta { id: format!("a{}_s{subject}_t{trial}", label + 1), label, subject, trial: Some(trial), scene: None, session: None });
                }
            }
        }
        v
    }

    fn rules(train: &[u32], val: &[u32], test: &[u32]) -> ProtocolDecl {
        let r = |s: &[u32]| Some(SplitRule { subjects: Some(s.to_vec()), ..Default::default() });
        ProtocolDecl { train: r(train), val: r(val), test: r(test), stratified: None }
    }

    #[test]
    fn subject_rules_split_and_leave_out_unlisted() {
        let m = meta(3, 8, 2);
        let s = rules(&[1, 3, 5], &[7], &[2, 4, 6]).split(&m).unwrap();
        assert_eq!((s.train.len(), s.val.len(), s.test.len()), (18, 6, 18));
        assert!(s.test.iter().all(|&i| m[i].subject.is_multiple_of(2) && m[i].subject != 8));
    }

    #[test]
    fn overlap_empty_and_missing_attributes_are_errors() {
        let m = meta(2, 4, 1);
        let e = rules(&[1, 2], &[2], &[3]).split(&m).unwrap_err().to_string();
        assert!(e.contains("both the train and the val"), "{e}");
        let e = rules(&[1], &[9], &[3]).split(&m).unwrap_err().to_string();
        assert!(e.contains("val split is empty"), "{e}");
        let mut p = rules(&[1], &[2], &[3]);
        p.test = Some(SplitRule { scenes: Some(vec![2]), ..Default::default() });
        assert!(p.split(&m).unwrap_err().to_string().contains("no scene"));
    }

    #[test]
    fn class_missing_from_train_is_an_error() {
        let mut m = meta(2, 3, 1);
        m.retain(|s| !(s.label == 1 && s.subject == 1));
        let e = rules(&[1], &[2], &[3]).split(&m).unwrap_err().to_string();
        assert!(e.contains("[2]"), "{e}");
    }

    #[test]
    fn stratified_split_is_seeded_disjoint_and_per_class() {
        let m = meta(4, 5, 4); // 20 per class
        let p = ProtocolDecl { stratified: Some(StratifiedDecl { seed: 3, val_fraction: 0.1, test_fraction: 0.25 }), ..Default::default() };
        let a = p.split(&m).unwrap();
        assert_eq!(a, p.split(&m).unwrap());
        assert_eq!((a.train.len(), a.val.len(), a.test.len()), (4 * 13, 4 * 2, 4 * 5));
        let mut all: Vec<usize> = a.train.iter().chain(&a.val).chain(&a.test).copied().collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), m.len());
        let other = ProtocolDecl { stratified: Some(StratifiedDecl { seed: 4, val_fraction: 0.1, test_fraction: 0.25 }), ..Default::default() };
        assert_ne!(a, other.split(&m).unwrap());
    }

    #[test]
    fn label_fractions_keep_one_per_class_and_differ_by_repetition() {
        let meta = meta(5, 3, 4); // 12 per class
        let m: Vec<usize> = meta.iter().map(|s| s.label).collect();
        let train: Vec<usize> = (0..m.len()).collect();
        for (f, per_class) in [(0.01, 1), (0.05, 1), (0.1, 1), (0.25, 3), (0.5, 6), (1.0, 12)] {
            let s = label_fraction_split(&m, &train, f, 7, 0).unwrap();
            assert_eq!(s.len(), 5 * per_class, "fraction {f}");
            for c in 0..5 {
                assert_eq!(s.iter().filter(|&&i| m[i] == c).count(), per_class);
            }
        }
        let a = label_fraction_split(&m, &train, 0.25, 7, 0).unwrap();
        assert_eq!(a, label_fraction_split(&m, &train, 0.25, 7, 0).unwrap());
        assert_ne!(a, label_fraction_split(&m, &train, 0.25, 7, 1).unwrap());
        assert!(label_fraction_split(&m, &train, 0.0, 7, 0).is_err());
    }
}
