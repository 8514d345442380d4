//! Suites: which dataset, methods, seeds and evaluations make up one
//! experiment (e.g. the paper's UTD-MHAD table), declared in YAML.

use crate::methods::config::MethodConfig;
use anyhow::{Context, Result};
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
    /// The suite file's text, for the lines of later errors.
    text: String,
}

impl Suite {
    /// Reads a suite and every method file it names, and checks every
    /// setting that needs no data ([`Suite::check_against`] checks the
    /// rest): each error names the file, the key's line and the key.
    pub fn from_file(path: &Path) -> Result<Self> {
        let (decl, text): (SuiteDecl, String) = crate::config::read_yaml_text(path)?;
        let base = path.parent().unwrap_or(Path::new(""));
        let resolve = |p: &Path| crate::fsutil::normalize(&base.join(p));
        let mut methods = BTreeMap::new();
        for (name, m) in &decl.methods {
            let mut method = MethodConfig::from_file(&resolve(&m.file)).with_context(|| format!("{}: method '{name}'", path.display()))?;
            if let Some(e) = decl.epochs {
                method.schedule.epochs = e;
            }
            // Miners come from the suite's own runs, not from paths.
            method.pretrained.clear();
            methods.insert(name.clone(), method);
        }
        let suite = Suite { dataset_path: resolve(&decl.dataset), path: path.to_path_buf(), decl, methods, text };
        suite.check_settings()?;
        Ok(suite)
    }

    /// An error about the setting at `keys`, naming the file and its line.
    fn error(&self, keys: &[&str], message: impl std::fmt::Display) -> anyhow::Error {
        crate::config::setting_error(&self.path, &self.text, keys, message)
    }

    /// The checks that need only the suite and its method files.
    fn check_settings(&self) -> Result<()> {
        let d = &self.decl;
        if d.seeds.is_empty() {
            return Err(self.error(&["seeds"], "a suite needs at least one seed"));
        }
        if let Some(s) = first_repeated(&d.seeds) {
            return Err(self.error(&["seeds"], format!("seed {s} is listed twice (its runs would be the same runs)")));
        }
        if d.methods.is_empty() {
            return Err(self.error(&["methods"], "a suite needs at least one method"));
        }
        if d.epochs == Some(0) {
            return Err(self.error(&["epochs"], "must be at least 1"));
        }
        self.check_evaluations()?;
        self.check_pretrained()?;
        for (k, claim) in d.claims.iter().flatten().enumerate() {
            for (key, name) in [("a", &claim.a), ("b", &claim.b)] {
                if !d.methods.contains_key(name) {
                    let known: Vec<&str> = d.methods.keys().map(String::as_str).collect();
                    let hint = crate::config::closest(name, &known).map(|b| format!("; did you mean `{b}`?")).unwrap_or_default();
                    let line = crate::config::value_line(&self.text, &["claims"], name);
                    let message = format!("claim {} names `{name}`, which is not a method of the suite{hint} (methods: {known:?})", k + 1);
                    return Err(crate::config::located_error(&self.path, line, &["claims", key], message));
                }
            }
            if claim.a == claim.b {
                return Err(self.error(&["claims", "b"], format!("claim {} compares `{}` with itself", k + 1, claim.a)));
            }
        }
        Ok(())
    }

    fn check_evaluations(&self) -> Result<()> {
        let e = &self.decl.evaluations;
        let any_ssl = self.methods.values().any(MethodConfig::is_self_supervised);
        let any_supervised = self.methods.values().any(|m| !m.is_self_supervised());
        if let Some(ft) = &e.fine_tuning {
            if ft.epochs == 0 {
                return Err(self.error(&["evaluations", "fine_tuning", "epochs"], "must be at least 1"));
            }
            if !any_ssl {
                return Err(self.error(&["evaluations", "fine_tuning"], "fine-tunes self-supervised methods, and the suite has none"));
            }
        }
        if let Some(lf) = &e.label_fractions {
            let at = |key: &'static str| ["evaluations", "label_fractions", key];
            if lf.fractions.is_empty() {
                return Err(self.error(&at("fractions"), "needs at least one fraction"));
            }
            if let Some(f) = lf.fractions.iter().find(|f| !(**f > 0.0 && **f <= 1.0)) {
                return Err(self.error(&at("fractions"), format!("{f} is not in (0, 1] (it would leave classes without a labelled sample)")));
            }
            if let Some(f) = first_repeated(&lf.fractions) {
                return Err(self.error(&at("fractions"), format!("{f} is listed twice")));
            }
            if lf.repetitions == 0 {
                return Err(self.error(&at("repetitions"), "must be at least 1"));
            }
            if lf.epochs == 0 {
                return Err(self.error(&at("epochs"), "must be at least 1"));
            }
            if !lf.baselines.is_empty() && !any_supervised {
                return Err(self.error(&at("baselines"), "baselines are planned for supervised methods, and the suite has none"));
            }
            if !any_ssl && lf.baselines.is_empty() {
                return Err(self.error(
                    &["evaluations", "label_fractions"],
                    "evaluates self-supervised methods (or the baselines of supervised ones), and the suite has neither",
                ));
            }
        }
        let heads_used = e.fine_tuning.is_some() || e.label_fractions.is_some();
        if !e.frozen.is_eval() && !heads_used {
            return Err(self.error(&["evaluations", "frozen"], "applies to fine_tuning and label_fractions, and the suite has neither"));
        }
        if e.head != Default::default() && !heads_used {
            return Err(self.error(&["evaluations", "head"], "applies to fine_tuning and label_fractions, and the suite has neither"));
        }
        Ok(())
    }

    /// Each `pretrained` entry names a suite method trained on that modality
    /// alone, for a method whose kind reads pretrained encoders.
    fn check_pretrained(&self) -> Result<()> {
        for (name, m) in &self.decl.methods {
            let method = &self.methods[name];
            let at = ["methods", name.as_str(), "pretrained"];
            method.check_pretrained(m.pretrained.keys().map(String::as_str)).map_err(|e| self.error(&at, e))?;
            for (modality, dep) in &m.pretrained {
                let Some(miner) = self.methods.get(dep) else {
                    return Err(self.error(&at, format!("'{modality}' is pretrained by `{dep}`, which is not a method of the suite")));
                };
                if miner.modalities != [modality.clone()] {
                    return Err(self.error(&at, format!("'{modality}' is pretrained by `{dep}`, which trains {:?}, not '{modality}' alone", miner.modalities)));
                }
            }
        }
        Ok(())
    }

    /// The checks that need the dataset: the protocol, each method against
    /// the dataset's modalities and shapes, and every batch against the
    /// train split. What passes here fails no run for its settings.
    pub fn check_against(&self, dataset: &crate::data::Dataset) -> Result<()> {
        let protocol = &self.decl.protocol;
        dataset.decl.protocol(protocol).map_err(|e| self.error(&["protocol"], e))?;
        let train = dataset.decl.split(protocol, &dataset.meta).map_err(|e| self.error(&["protocol"], format!("{e:#}")))?.train.len();
        for (name, m) in &self.methods {
            let at = ["methods", name.as_str(), "file"];
            let file = self.decl.methods[name].file.display();
            m.validate_except_pretrained(&dataset.decl).map_err(|e| self.error(&at, format!("{file}: {e:#}")))?;
            if m.is_self_supervised() && m.schedule.batch_size > train {
                let why = format!(
                    "{file}: batch_size {} exceeds the {train} samples of protocol '{protocol}''s train split (no complete batch)",
                    m.schedule.batch_size
                );
                return Err(self.error(&at, why));
            }
        }
        Ok(())
    }
}

/// The first value of `values` that an earlier one equals.
fn first_repeated<T: PartialEq>(values: &[T]) -> Option<&T> {
    values.iter().enumerate().find_map(|(i, v)| values[..i].contains(v).then_some(v))
}
