//! Method declarations: what a method trains, with which encoders,
//! augmentations, loss switches and schedule. A new baseline is a new YAML.

use crate::data::declaration::DatasetDecl;
use crate::data::transforms::Step;
use crate::models::{EncoderConfig, ProjectionConfig};
pub use crate::training::schedule::ScheduleConfig;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A method declaration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodConfig {
    pub name: String,
    /// Which method trains it: a key of [`super::registry`] (`supervised`,
    /// `simclr`, `cmc`, `cmkm`, `vicreg`, `barlow_twins`).
    pub kind: String,
    /// Dataset modalities it trains on, in order (CMC's modality 1 and 2).
    pub modalities: Vec<String>,
    /// Encoder per modality.
    pub encoders: BTreeMap<String, EncoderConfig>,
    /// Training-time augmentation pipeline per modality (none if absent).
    #[serde(default)]
    pub augmentations: BTreeMap<String, Vec<Step>>,
    /// SSL projection head.
    #[serde(default)]
    pub projection: ProjectionConfig,
    /// The loss settings, as the method's kind reads them (e.g. SimCLR's and
    /// CMC's temperature, CMC-CMKM's switches, VICReg's weights); each kind
    /// rejects the keys it does not read.
    #[serde(default)]
    pub loss: Option<serde_yaml::Value>,
    /// CMC-CMKM: the unimodal (SimCLR) run folder of each modality, whose
    /// frozen encoder mines positives (relative paths from the method file's folder).
    #[serde(default)]
    pub pretrained: BTreeMap<String, PathBuf>,
    pub schedule: ScheduleConfig,
}

impl MethodConfig {
    /// Reads a method file as written (no kind-specific checks: see
    /// [`MethodConfig::from_file`]); relative `pretrained` paths are resolved
    /// against the file's folder.
    pub fn read_file(path: &Path) -> Result<Self> {
        let mut m: MethodConfig = crate::config::read_yaml(path)?;
        let base = path.parent().unwrap_or(Path::new(""));
        for p in m.pretrained.values_mut() {
            if p.is_relative() {
                *p = crate::fsutil::normalize(&base.join(&*p));
            }
        }
        Ok(m)
    }

    /// The checks every kind shares: modalities against the dataset,
    /// encoders and augmentations per modality, the schedule.
    pub fn validate_common(&self, dataset: &DatasetDecl) -> Result<()> {
        for m in &self.modalities {
            dataset.modality(m)?;
            if !self.encoders.contains_key(m) {
                bail!("method '{}': no encoder for modality '{m}'", self.name);
            }
        }
        let known = |k: &String| self.modalities.contains(k);
        if let Some(k) = self.encoders.keys().chain(self.augmentations.keys()).chain(self.pretrained.keys()).find(|k| !known(k)) {
            bail!("method '{}': '{k}' is not one of its modalities {:?}", self.name, self.modalities);
        }
        let s = &self.schedule;
        if s.epochs == 0 || s.batch_size < 2 || !(s.lr > 0.0) || !(0.0 < s.plateau_factor && s.plateau_factor < 1.0) {
            bail!("method '{}': need epochs >= 1, batch_size >= 2, lr > 0 and 0 < plateau_factor < 1", self.name);
        }
        if let Some(c) = s.grad_clip_norm.filter(|c| !(*c > 0.0 && c.is_finite())) {
            bail!("method '{}': schedule.grad_clip_norm must be a positive number, got {c}", self.name);
        }
        for (m, steps) in &self.augmentations {
            let decl = dataset.modality(m)?;
            for step in steps {
                step.transform.check(&decl.shape()).with_context(|| format!("method '{}', augmentation of '{m}'", self.name))?;
            }
        }
        Ok(())
    }

    /// The augmentation pipeline of a modality (empty when none).
    pub fn augmentation(&self, modality: &str) -> &[Step] {
        self.augmentations.get(modality).map(Vec::as_slice).unwrap_or(&[])
    }
}
