//! Method declarations: what a method trains, with which encoders,
//! augmentations, loss switches and schedule. A new baseline is a new YAML.

use crate::data::declaration::DatasetDecl;
use crate::data::transforms::Step;
use crate::losses::CmkmOptions;
use crate::models::{EncoderConfig, ProjectionConfig};
pub use crate::training::schedule::ScheduleConfig;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The learning methods of the harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodKind {
    /// Encoders + classifier trained end to end on labels (one modality:
    /// linear head; several: the fusion classifier).
    Supervised,
    /// SimCLR on one modality: two augmented views, NT-Xent.
    Simclr,
    /// CMC on two modalities.
    Cmc,
    /// CMC-CMKM: CMC with positives mined by frozen SimCLR encoders.
    Cmkm,
}

impl MethodKind {
    /// The kind as YAML spells it.
    pub fn name(self) -> &'static str {
        match self {
            MethodKind::Supervised => "supervised",
            MethodKind::Simclr => "simclr",
            MethodKind::Cmc => "cmc",
            MethodKind::Cmkm => "cmkm",
        }
    }
}

/// The only loss key SimCLR and CMC read: a method file of those kinds is
/// parsed once more against this, so a CMC-CMKM switch in it is an error
/// naming its line.
#[derive(Deserialize)]
struct TemperatureOnly {
    #[serde(default)]
    #[allow(dead_code)] // read only to reject the other keys
    loss: Option<TemperatureKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TemperatureKey {
    #[allow(dead_code)]
    temperature: f32,
}

/// A method declaration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodConfig {
    pub name: String,
    pub kind: MethodKind,
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
    /// Contrastive loss: temperature and, for CMC-CMKM, its switches.
    #[serde(default)]
    pub loss: Option<CmkmOptions>,
    /// CMC-CMKM: the SimCLR run folder of each modality, whose frozen encoder
    /// mines positives (relative paths from the method file's folder).
    #[serde(default)]
    pub pretrained: BTreeMap<String, PathBuf>,
    pub schedule: ScheduleConfig,
}

impl MethodConfig {
    /// Reads a method file; relative `pretrained` paths are resolved against
    /// the file's folder.
    pub fn from_file(path: &Path) -> Result<Self> {
        let mut m: MethodConfig = crate::config::read_yaml(path)?;
        if m.kind != MethodKind::Cmkm {
            // Only CMC-CMKM reads the loss switches; elsewhere a switch would
            // be silently ignored, so name it with its line.
            crate::config::read_yaml::<TemperatureOnly>(path).with_context(|| {
                format!(
                    "{}: a `{}` method's loss takes only `temperature`; the other loss keys are CMC-CMKM switches (kind: cmkm)",
                    path.display(),
                    m.kind.name()
                )
            })?;
        }
        let base = path.parent().unwrap_or(Path::new(""));
        for p in m.pretrained.values_mut() {
            if p.is_relative() {
                *p = crate::fsutil::normalize(&base.join(&*p));
            }
        }
        Ok(m)
    }

    /// Checks the method against itself and the dataset it will train on.
    pub fn validate(&self, dataset: &DatasetDecl) -> Result<()> {
        let wanted = match self.kind {
            MethodKind::Simclr => 1..=1,
            MethodKind::Cmc | MethodKind::Cmkm => 2..=2,
            MethodKind::Supervised => 1..=usize::MAX,
        };
        if !wanted.contains(&self.modalities.len()) {
            bail!("method '{}' ({:?}) needs {wanted:?} modalities, got {:?}", self.name, self.kind, self.modalities);
        }
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
        let ssl = self.kind != MethodKind::Supervised;
        match (&self.loss, ssl) {
            (None, true) => bail!("method '{}': a contrastive method needs 'loss' (at least the temperature)", self.name),
            (Some(_), false) => bail!("method '{}': a supervised method has no contrastive loss; remove `loss`", self.name),
            (Some(l), _) if !(l.temperature > 0.0) => bail!("method '{}': temperature must be positive", self.name),
            (Some(l), _) if self.kind != MethodKind::Cmkm && *l != CmkmOptions::cmc(l.temperature) => {
                bail!("method '{}': a `{}` method's loss takes only `temperature`; mining, intra negatives, pruning and weighting are CMC-CMKM switches (kind: cmkm)", self.name, self.kind.name())
            }
            _ => {}
        }
        if self.kind == MethodKind::Cmkm {
            if let Some(m) = self.modalities.iter().find(|m| !self.pretrained.contains_key(*m)) {
                bail!("method '{}': CMC-CMKM needs a pretrained SimCLR run for modality '{m}'", self.name);
            }
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

    /// Whether SSL rules apply: drop the last incomplete batch, schedule on
    /// the training loss, keep the checkpoint with the lowest validation loss.
    pub fn is_self_supervised(&self) -> bool {
        self.kind != MethodKind::Supervised
    }

    /// The augmentation pipeline of a modality (empty when none).
    pub fn augmentation(&self, modality: &str) -> &[Step] {
        self.augmentations.get(modality).map(Vec::as_slice).unwrap_or(&[])
    }
}
