//! Suites: which dataset, methods, seeds and evaluations make up one
//! experiment (e.g. the paper's UTD-MHAD table), declared in YAML.

use crate::methods::config::MethodConfig;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One method of a suite.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteMethod {
    /// Method file, relative to the suite file.
    pub file: PathBuf,
    /// CMC-CMKM: the suite method whose run pre-trains each modality's miner.
    #[serde(default)]
    pub pretrained: BTreeMap<String, String>,
    /// Name of the approach in reports (default: the paper's name for the
    /// method's kind: Supervised, SimCLR, CMC, CMC-CMKM). Rows whose
    /// modality and approach match one of the paper's get its number beside.
    #[serde(default)]
    pub approach: Option<String>,
}

/// Fine-tuning settings of a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FineTuningDecl {
    /// Head epochs (docs/method.md: 100).
    #[serde(default = "hundred")]
    pub epochs: usize,
}

/// Label-fraction settings of a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelFractionsDecl {
    #[serde(default = "paper_fractions")]
    pub fractions: Vec<f64>,
    #[serde(default = "ten")]
    pub repetitions: u64,
    #[serde(default = "hundred")]
    pub epochs: usize,
    /// docs/method.md section 8's baselines, planned for each supervised method of the suite:
    /// `random` (its encoders randomly initialised, frozen, with the
    /// evaluation heads) and `supervised` (trained from scratch on each
    /// subset with its own schedule).
    #[serde(default)]
    pub baselines: Vec<Baseline>,
}

/// A label-fraction baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    Random,
    Supervised,
}

fn hundred() -> usize {
    100
}
fn ten() -> u64 {
    10
}
fn paper_fractions() -> Vec<f64> {
    crate::protocols::label_fractions::PAPER_FRACTIONS.to_vec()
}

/// Which evaluations run on the suite's methods.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationsDecl {
    #[serde(default)]
    pub fine_tuning: Option<FineTuningDecl>,
    #[serde(default)]
    pub retrieval: bool,
    #[serde(default)]
    pub label_fractions: Option<LabelFractionsDecl>,
    /// The head on one frozen SSL encoder in fine-tuning and label
    /// fractions: `linear` (the default, the reference's evaluation) or
    /// `mlp` (256-128). Several modalities always get the fusion classifier.
    #[serde(default)]
    pub head: crate::models::EvaluationHead,
    /// How frozen encoders run while the heads train (fine-tuning, label
    /// fractions, random-encoder baselines): `eval` (the default; features
    /// computed once) or `training` (the reference's: batch statistics,
    /// dropout, moving running statistics; encoders run every step, many
    /// times slower). docs/method.md section 8.
    #[serde(default)]
    pub frozen: crate::protocols::fine_tuning::FrozenEncoders,
}

/// One claim of a suite's `claims:` list, checked by `cmkm report`'s
/// claims table: method `a` scores higher than method `b` (suite method
/// names) in every modality row both have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimDecl {
    pub a: String,
    pub b: String,
}

/// A suite file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteDecl {
    pub name: String,
    /// Dataset declaration, relative to the suite file.
    pub dataset: PathBuf,
    pub protocol: String,
    pub seeds: Vec<u64>,
    /// Override every method's epochs (quick suites).
    #[serde(default)]
    pub epochs: Option<usize>,
    /// Methods by name, in the order of the report.
    pub methods: BTreeMap<String, SuiteMethod>,
    #[serde(default)]
    pub evaluations: EvaluationsDecl,
    /// Orderings the claims table checks besides the paper's (CMC-CMKM
    /// over CMC and SimCLR, CMC over SimCLR, each SSL approach over
    /// Supervised, between every pair of methods with those approaches),
    /// e.g. CMC-CMKM over a new baseline.
    #[serde(default)]
    pub claims: Option<Vec<ClaimDecl>>,
}

/// A suite with its files read and paths resolved.
#[derive(Debug, Clone)]
pub struct Suite {
    pub decl: SuiteDecl,
    pub path: PathBuf,
    pub dataset_path: PathBuf,
    pub methods: BTreeMap<String, MethodConfig>,
}

impl Suite {
    /// Reads a suite and every method file it names.
    pub fn from_file(path: &Path) -> Result<Self> {
        let decl: SuiteDecl = crate::config::read_yaml(path)?;
        let base = path.parent().unwrap_or(Path::new(""));
        let resolve = |p: &Path| crate::fsutil::normalize(&base.join(p));
        if decl.seeds.is_empty() {
            bail!("{}: a suite needs at least one seed", path.display());
        }
        if let Some(lf) = &decl.evaluations.label_fractions {
            if let Some(f) = lf.fractions.iter().find(|f| !(**f > 0.0 && **f <= 1.0)) {
                bail!("{}: evaluations.label_fractions.fractions: {f} is not in (0, 1] (it would leave classes without a labelled sample)", path.display());
            }
            if lf.fractions.is_empty() || lf.repetitions == 0 || lf.epochs == 0 {
                bail!("{}: evaluations.label_fractions needs at least one fraction, one repetition and one epoch", path.display());
            }
        }
        let e = &decl.evaluations;
        if !e.frozen.is_eval() && e.fine_tuning.is_none() && e.label_fractions.is_none() {
            bail!("{}: evaluations.frozen applies to fine_tuning and label_fractions, and the suite has neither", path.display());
        }
        let mut methods = BTreeMap::new();
        for (name, m) in &decl.methods {
            let mut method = MethodConfig::from_file(&resolve(&m.file)).with_context(|| format!("{}: method '{name}'", path.display()))?;
            if let Some(e) = decl.epochs {
                method.schedule.epochs = e;
            }
            // Miners come from the suite's own runs, not from paths.
            method.pretrained.clear();
            for (modality, dep) in &m.pretrained {
                if !decl.methods.contains_key(dep) {
                    bail!("{}: method '{name}' pretrains '{modality}' with unknown suite method '{dep}'", path.display());
                }
            }
            methods.insert(name.clone(), method);
        }
        Ok(Suite { dataset_path: resolve(&decl.dataset), path: path.to_path_buf(), decl, methods })
    }
}
