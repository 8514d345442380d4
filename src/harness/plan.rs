//! Run planning: a suite expands to runs (train, fine-tune, retrieval, label
//! fractions) per method and seed, with dependencies (SimCLR before
//! CMC-CMKM, training before evaluation). A run's id is the SHA-256 of its
//! fully resolved specification, the dataset fingerprint and the crate
//! version, so editing a method re-plans exactly the runs that depend on it.

pub use super::steps::Step;
use super::steps::{FineTuneStep, LabelFractionsStep, RandomFractionsStep, RetrievalStep, SupervisedFractionsStep, TrainStep};
use super::suite::{Baseline, Suite};
use crate::methods::config::MethodConfig;
use anyhow::{bail, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// One planned run.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedRun {
    /// First 16 hex digits of the SHA-256 of the specification.
    pub id: String,
    /// Human-readable name, e.g. `train cmc-cmkm seed 28`.
    pub label: String,
    /// The suite method (or sweep variant) whose run this is; the step
    /// names the suite method, so that variants resolving to the same
    /// method are one run.
    pub method: String,
    /// Other variants the very same run stands for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<String>,
    pub seed: u64,
    pub step: Step,
    /// Ids of the runs this one needs.
    pub depends_on: Vec<String>,
}

/// Expands a suite into runs in dependency order; a run that several
/// sweep variants resolve to is planned once, the others in its `also`.
pub fn plan(suite: &Suite, dataset_fingerprint: &str) -> Result<Vec<PlannedRun>> {
    let mut runs: Vec<PlannedRun> = vec![];
    let mut add = |run: PlannedRun| match runs.iter_mut().find(|r| r.id == run.id) {
        Some(same) if same.method != run.method && !same.also.contains(&run.method) => same.also.push(run.method),
        Some(_) => {}
        None => runs.push(run),
    };
    for &seed in &suite.decl.seeds {
        let planner = Planner { suite, fingerprint: dataset_fingerprint, seed };
        let mut trained: BTreeMap<String, String> = BTreeMap::new();
        for name in training_order(suite)? {
            let config = suite.methods[&name].clone();
            let entry = suite.entry(&name).expect("every run name has its suite method");
            let pretrained: BTreeMap<String, String> = entry.pretrained.iter().map(|(m, dep)| (m.clone(), trained[dep].clone())).collect();
            let deps = pretrained.values().cloned().collect();
            let step = Step::Train(TrainStep { method: suite.entry_name(&name).to_string(), config, pretrained });
            let run = planner.make(&name, format!("train {name} seed {seed}"), step, deps)?;
            trained.insert(name, run.id.clone());
            add(run);
        }
        for (name, config) in &suite.methods {
            for run in planner.evaluations(name, config, &trained[name])? {
                add(run);
            }
        }
    }
    Ok(runs)
}

/// The runs of one seed.
struct Planner<'a> {
    suite: &'a Suite,
    fingerprint: &'a str,
    seed: u64,
}

impl Planner<'_> {
    /// The evaluations of run name `name` (`config`), trained by run `encoders`.
    fn evaluations(&self, name: &str, config: &MethodConfig, encoders: &str) -> Result<Vec<PlannedRun>> {
        let (suite, seed) = (self.suite, self.seed);
        let evaluations = &suite.decl.evaluations;
        let method = suite.entry_name(name).to_string();
        let mut runs = vec![];
        let subsets = modality_subsets(config);
        let ssl = config.method()?.self_supervised();
        if let (true, Some(ft)) = (ssl, &evaluations.fine_tuning) {
            for modalities in &subsets {
                let step = Step::FineTune(FineTuneStep {
                    method: method.clone(),
                    encoders: encoders.to_string(),
                    modalities: modalities.clone(),
                    epochs: ft.epochs,
                    head: evaluations.head,
                    frozen: evaluations.frozen,
                });
                runs.push(self.make(name, format!("fine-tune {name} {} seed {seed}", modalities.join("+")), step, vec![encoders.to_string()])?);
            }
        }
        if evaluations.retrieval {
            let step = Step::Retrieval(RetrievalStep { method: method.clone(), encoders: encoders.to_string() });
            runs.push(self.make(name, format!("retrieval {name} seed {seed}"), step, vec![encoders.to_string()])?);
        }
        if let (false, Some(lf)) = (ssl, &evaluations.label_fractions) {
            for baseline in &lf.baselines {
                let (step, label) = match baseline {
                    Baseline::Supervised => (
                        Step::SupervisedFractions(SupervisedFractionsStep {
                            method: method.clone(),
                            config: config.clone(),
                            fractions: lf.fractions.clone(),
                            repetitions: lf.repetitions,
                        }),
                        format!("label-fractions {name} seed {seed}"),
                    ),
                    Baseline::Random => (
                        Step::RandomFractions(RandomFractionsStep {
                            method: method.clone(),
                            config: config.clone(),
                            fractions: lf.fractions.clone(),
                            repetitions: lf.repetitions,
                            epochs: lf.epochs,
                            head: evaluations.head,
                            frozen: evaluations.frozen,
                        }),
                        format!("label-fractions random-init {name} seed {seed}"),
                    ),
                };
                runs.push(self.make(name, label, step, vec![])?);
            }
        }
        if let (true, Some(lf)) = (ssl, &evaluations.label_fractions) {
            for modalities in &subsets {
                let step = Step::LabelFractions(LabelFractionsStep {
                    method: method.clone(),
                    encoders: encoders.to_string(),
                    modalities: modalities.clone(),
                    fractions: lf.fractions.clone(),
                    repetitions: lf.repetitions,
                    epochs: lf.epochs,
                    head: evaluations.head,
                    frozen: evaluations.frozen,
                });
                runs.push(self.make(name, format!("label-fractions {name} {} seed {seed}", modalities.join("+")), step, vec![encoders.to_string()])?);
            }
        }
        Ok(runs)
    }

    fn make(&self, name: &str, label: String, step: Step, depends_on: Vec<String>) -> Result<PlannedRun> {
        let mut identity = serde_json::json!({
            "step": &step,
            "seed": self.seed,
            "dataset": self.fingerprint,
            "protocol": self.suite.decl.protocol,
            "crate_version": env!("CARGO_PKG_VERSION"),
        });
        // A GPU's results are other results: its kind joins the id (the adapter
        // goes to the run's record). The CPU adds nothing, so every CPU run id
        // stands.
        if let Some(device) = crate::device::run_key() {
            identity["device"] = device.into();
        }
        let digest = Sha256::digest(serde_json::to_string(&identity)?.as_bytes());
        let id: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Ok(PlannedRun { id, label, method: name.to_string(), also: vec![], seed: self.seed, step, depends_on })
    }
}

/// Each modality alone, and all of them together when there are several.
fn modality_subsets(m: &MethodConfig) -> Vec<Vec<String>> {
    let mut subsets: Vec<Vec<String>> = m.modalities.iter().map(|x| vec![x.clone()]).collect();
    if m.modalities.len() > 1 {
        subsets.push(m.modalities.clone());
    }
    subsets
}

/// Method names ordered so that every pre-training comes first.
fn training_order(suite: &Suite) -> Result<Vec<String>> {
    let mut order: Vec<String> = vec![];
    let mut pending: Vec<&String> = suite.methods.keys().collect();
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|name| {
            let ready = suite.entry(name).is_some_and(|e| e.pretrained.values().all(|d| order.contains(d)));
            if ready {
                order.push((*name).clone());
            }
            !ready
        });
        if pending.len() == before {
            bail!("{}: circular pre-training between methods {pending:?}", suite.path.display());
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::fine_tuning::FrozenEncoders;

    /// Run ids hash the serialised step: the default frozen mode is left
    /// out, so the ids of suites written before the setting stand, and
    /// `frozen: training` makes other runs.
    #[test]
    fn the_default_frozen_mode_is_left_out_of_the_run_specification() {
        let step = |frozen| {
            Step::FineTune(FineTuneStep {
                method: "m".into(),
                encoders: "e".into(),
                modalities: vec!["x".into()],
                epochs: 100,
                head: Default::default(),
                frozen,
            })
        };
        let eval = serde_json::to_string(&step(FrozenEncoders::Eval)).unwrap();
        assert_eq!(eval, r#"{"step":"fine_tune","method":"m","encoders":"e","modalities":["x"],"epochs":100,"head":"linear"}"#);
        let training = serde_json::to_string(&step(FrozenEncoders::Training)).unwrap();
        assert!(training.ends_with(r#""head":"linear","frozen":"training"}"#), "{training}");
    }
}
