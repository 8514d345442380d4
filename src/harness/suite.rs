//! Suites: which dataset, methods, seeds and evaluations make up one
//! experiment (e.g. the paper's UTD-MHAD table), declared in YAML.

use super::sweep::Sweep;
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
    /// A sweep over dotted keys of the method file (`loss.mining_k: [1, 2,
    /// 3]`): the method becomes one variant per point ([`super::sweep`]).
    /// A null value removes the key (the kind's default).
    #[serde(default, skip_serializing_if = "serde_yaml::Mapping::is_empty")]
    pub sweep: serde_yaml::Mapping,
    /// Which points of the sweep's grid run: `grid` (all), `random`
    /// (`samples` of them, drawn with `search_seed`) or `one_at_a_time`.
    #[serde(default)]
    pub search: super::sweep::Search,
    #[serde(default)]
    pub samples: Option<usize>,
    #[serde(default)]
    pub search_seed: u64,
}

impl SuiteMethod {
    fn sweep_decl(&self) -> super::sweep::SweepDecl<'_> {
        super::sweep::SweepDecl { keys: &self.sweep, search: self.search, samples: self.samples, search_seed: self.search_seed }
    }
    fn has_search_settings(&self) -> bool {
        self.search != Default::default() || self.samples.is_some() || self.search_seed != 0
    }
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
    /// Whether self-supervised methods pre-train on the training split's
    /// unlabelled windows (`pretrain`) or not (`drop`), overriding the
    /// dataset's `windows.unlabelled` (format `recordings` only). The
    /// setting becomes part of the dataset's fingerprint, so runs of the
    /// two choices never share an id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlabelled_windows: Option<crate::data::recordings::decl::UnlabelledUse>,
}

/// A suite with its files read and paths resolved.
#[derive(Debug, Clone)]
pub struct Suite {
    pub decl: SuiteDecl,
    pub path: PathBuf,
    pub dataset_path: PathBuf,
    /// Every method the suite trains, by run name: the suite's methods, a
    /// swept one replaced by its variants (`cmc-cmkm[mining_k=2]`).
    pub methods: BTreeMap<String, MethodConfig>,
    /// The swept suite methods by name.
    pub sweeps: BTreeMap<String, Sweep>,
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
        let mut sweeps = BTreeMap::new();
        let for_suite = |mut method: MethodConfig| {
            if let Some(e) = decl.epochs {
                method.schedule.epochs = e;
            }
            // Miners come from the suite's own runs, not from paths.
            method.pretrained.clear();
            method
        };
        for (name, m) in &decl.methods {
            let file = resolve(&m.file);
            if m.sweep.is_empty() {
                if m.has_search_settings() {
                    let key = if m.samples.is_some() {
                        "samples"
                    } else if m.search_seed != 0 {
                        "search_seed"
                    } else {
                        "search"
                    };
                    return Err(crate::config::setting_error(path, &text, &["methods", name, key], "applies to a `sweep`, and this method has none"));
                }
                let method = MethodConfig::from_file(&file).with_context(|| format!("{}: method '{name}'", path.display()))?;
                methods.insert(name.clone(), for_suite(method));
                continue;
            }
            let mut sweep = super::sweep::expand(name, &file, &m.sweep_decl()).map_err(|e| {
                let mut keys = vec!["methods", name.as_str(), "sweep"];
                keys.extend(e.key.as_deref());
                crate::config::setting_error(path, &text, &keys, format!("{:#}", e.error))
            })?;
            if decl.epochs.is_some() && sweep.keys.iter().any(|k| k == "schedule.epochs") {
                return Err(crate::config::setting_error(path, &text, &["epochs"], format!("overrides the epochs that method '{name}' sweeps")));
            }
            for v in &mut sweep.variants {
                v.config = for_suite(v.config.clone());
                methods.insert(v.name.clone(), v.config.clone());
            }
            sweep.base = for_suite(sweep.base);
            sweeps.insert(name.clone(), sweep);
        }
        let suite = Suite { dataset_path: resolve(&decl.dataset), path: path.to_path_buf(), decl, methods, sweeps, text };
        suite.check_settings()?;
        Ok(suite)
    }

    /// The suite method a run name belongs to: a variant's swept method,
    /// else the name itself.
    pub fn entry_name<'a>(&'a self, name: &'a str) -> &'a str {
        self.sweeps.iter().find(|(_, s)| s.variant(name).is_some()).map_or(name, |(entry, _)| entry.as_str())
    }

    /// The suite's declaration of the method a run name belongs to.
    pub fn entry(&self, name: &str) -> Option<&SuiteMethod> {
        self.decl.methods.get(self.entry_name(name))
    }

    /// The method file of a suite method, as the suite runs it (a swept
    /// one's as written).
    fn entry_config(&self, entry: &str) -> &MethodConfig {
        self.sweeps.get(entry).map_or_else(|| &self.methods[entry], |s| &s.base)
    }

    /// Whether `name` is a run name or a suite method (claims may name both).
    pub fn knows(&self, name: &str) -> bool {
        self.methods.contains_key(name) || self.sweeps.contains_key(name)
    }

    /// An error about the setting at `keys`, naming the file and its line.
    fn error(&self, keys: &[&str], message: impl std::fmt::Display) -> anyhow::Error {
        crate::config::setting_error(&self.path, &self.text, keys, message)
    }

    /// The checks that need only the suite and its method files.
    fn check_settings(&self) -> Result<()> {
        let d = &self.decl;
        if crate::harness::store::RESERVED_NAMES.contains(&d.name.as_str()) {
            return Err(self.error(&["name"], format!("a suite may not be called '{}', the run store's own folder", d.name)));
        }
        if d.seeds.is_empty() {
            return Err(self.error(&["seeds"], "a suite needs at least one seed"));
        }
        if let Some(s) = crate::config::first_repeated(&d.seeds) {
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
        self.check_sweeps()?;
        for (k, claim) in d.claims.iter().flatten().enumerate() {
            for (key, name) in [("a", &claim.a), ("b", &claim.b)] {
                if !self.knows(name) {
                    let known: Vec<&str> = d.methods.keys().chain(self.methods.keys()).map(String::as_str).collect();
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

    /// A sweep is chosen on a validation metric: a self-supervised method's
    /// comes from fine-tuning.
    fn check_sweeps(&self) -> Result<()> {
        for (name, sweep) in &self.sweeps {
            if sweep.base.is_self_supervised() && self.decl.evaluations.fine_tuning.is_none() {
                return Err(self.error(
                    &["methods", name, "sweep"],
                    "a self-supervised method's variants are chosen on the fine-tuning validation metric, and the suite has no `evaluations: fine_tuning`",
                ));
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
            if let Some(f) = crate::config::first_repeated(&lf.fractions) {
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
            let method = self.entry_config(name);
            let at = ["methods", name.as_str(), "pretrained"];
            method.check_pretrained(m.pretrained.keys().map(String::as_str)).map_err(|e| self.error(&at, e))?;
            for (modality, dep) in &m.pretrained {
                if self.sweeps.contains_key(dep) {
                    return Err(
                        self.error(&at, format!("'{modality}' is pretrained by `{dep}`, which is swept: sweep the method it pre-trains, not its miner"))
                    );
                }
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

    /// The suite's dataset declaration, with the suite's
    /// `unlabelled_windows` applied.
    pub fn dataset_decl(&self) -> Result<crate::data::DatasetDecl> {
        let mut decl = crate::data::DatasetDecl::from_file(&self.dataset_path)?;
        if let Some(choice) = self.decl.unlabelled_windows {
            let Some(windows) = decl.windows.as_mut() else {
                return Err(self.error(
                    &["unlabelled_windows"],
                    format!("dataset {} has no windows (format {:?}): nothing is unlabelled", self.dataset_path.display(), decl.format),
                ));
            };
            windows.unlabelled = choice;
        }
        Ok(decl)
    }

    /// The checks that need the dataset: the protocol, each method against
    /// the dataset's modalities and shapes, and every batch against the
    /// train split. What passes here fails no run for its settings.
    pub fn check_against(&self, dataset: &crate::data::Dataset) -> Result<()> {
        let protocol = &self.decl.protocol;
        dataset.decl.protocol(protocol).map_err(|e| self.error(&["protocol"], e))?;
        let train = dataset.decl.split(protocol, &dataset.meta).map_err(|e| self.error(&["protocol"], format!("{e:#}")))?.train.len();
        for (name, m) in &self.methods {
            let entry = self.entry_name(name);
            let at = if entry == name { ["methods", entry, "file"] } else { ["methods", entry, "sweep"] };
            let file = self.decl.methods[entry].file.display();
            let file = if entry == name { file.to_string() } else { format!("{file} as variant {name}") };
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
