//! Evaluation protocols (docs/method.md section 8) for any encoders the methods
//! produce, SSL-trained, supervised or randomly initialised: fine-tuning,
//! activity retrieval and label fractions.

pub mod fine_tuning;
pub mod label_fractions;
pub mod retrieval;
pub mod settings;

pub use settings::{FrozenEncoders, HeadTraining, LabelSubsets};

use crate::methods::config::MethodConfig;
use crate::methods::load_run;
use crate::metrics::ClassificationMetrics;
use crate::models::{Encoder, EncoderConfig, InputShape, ProjectionHead};
use crate::training::batches::{eval_batches, stack};
use crate::training::TrainData;
use anyhow::{bail, Result};
use burn::prelude::*;
use serde::Serialize;
use std::path::Path;

/// Encoders under evaluation, in evaluation mode on the plain device.
pub struct EncoderSet {
    /// Run folder, or `random:<method>` for untrained encoders.
    pub source: String,
    /// The method kind that trained them (`random` encoders: the method's kind).
    pub kind: String,
    pub modalities: Vec<String>,
    pub configs: Vec<EncoderConfig>,
    pub shapes: Vec<InputShape>,
    pub encoders: Vec<Encoder>,
    /// Cross-modal methods' projection heads: the shared space of cross-modal retrieval.
    pub projections: Option<Vec<ProjectionHead>>,
}

impl EncoderSet {
    /// The encoders of a finished run.
    pub fn from_run(dir: &Path, classes: usize, device: &Device) -> Result<Self> {
        let (record, parts) = load_run(dir, classes, device)?;
        let (encoders, projections) = (parts.encoders, parts.projections);
        let configs = record.method.modalities.iter().map(|m| record.method.encoders[m].clone()).collect();
        Ok(EncoderSet {
            source: dir.display().to_string(),
            kind: record.method.kind.clone(),
            modalities: record.method.modalities.clone(),
            configs,
            shapes: record.input_shapes,
            encoders,
            projections,
        })
    }

    /// Randomly initialised encoders of `method` (the random-encoder
    /// baseline); the caller seeds burn's generator.
    pub fn random(method: &MethodConfig, shapes: &[InputShape], device: &Device) -> Result<Self> {
        let configs: Vec<EncoderConfig> = method.modalities.iter().map(|m| method.encoders[m].clone()).collect();
        let encoders = configs.iter().zip(shapes).map(|(c, &s)| crate::device::build(device, |d| c.init(s, d)).map(|e| e.valid())).collect::<Result<_>>()?;
        Ok(EncoderSet {
            source: format!("random:{}", method.name),
            kind: method.kind.clone(),
            modalities: method.modalities.clone(),
            configs,
            shapes: shapes.to_vec(),
            encoders,
            projections: None,
        })
    }

    /// Keeps only `modalities` (e.g. the inertial encoder of a CMC run).
    pub fn restrict(mut self, modalities: &[String]) -> Result<Self> {
        let mut keep = vec![];
        for m in modalities {
            match self.modalities.iter().position(|x| x == m) {
                Some(i) => keep.push(i),
                None => bail!("{} has no encoder for modality '{m}' (it has {:?})", self.source, self.modalities),
            }
        }
        self.encoders = keep.iter().map(|&i| self.encoders[i].clone()).collect();
        self.configs = keep.iter().map(|&i| self.configs[i].clone()).collect();
        self.shapes = keep.iter().map(|&i| self.shapes[i]).collect();
        self.modalities = modalities.to_vec();
        if self.projections.is_some() && keep != [0, 1] {
            self.projections = None;
        }
        Ok(self)
    }

    /// Checks the data's modalities and shapes against the encoders.
    pub fn check(&self, data: &TrainData) -> Result<()> {
        if data.modalities != self.modalities || data.shapes != self.shapes {
            bail!(
                "{}: encoders take {:?} with shapes {:?}, the data gives {:?} with {:?}",
                self.source,
                self.modalities,
                self.shapes,
                data.modalities,
                data.shapes
            );
        }
        Ok(())
    }

    /// Encoder features of every sample, per modality (computed once, in
    /// batches; frozen encoders see no augmentation, so this is exact).
    pub fn features(&self, data: &TrainData, device: &Device) -> Result<Vec<Vec<Vec<f32>>>> {
        self.encoders.iter().enumerate().map(|(m, e)| self.embed_all(data, m, device, |x| e.forward(x))).collect()
    }

    /// Projection-space embeddings of both modalities (cross-modal methods only).
    pub fn projected(&self, data: &TrainData, device: &Device) -> Result<Option<Vec<Vec<Vec<f32>>>>> {
        let Some(p) = self.projections.as_ref() else { return Ok(None) };
        let both = (0..2).map(|m| self.embed_all(data, m, device, |x| p[m].forward(self.encoders[m].forward(x)))).collect::<Result<_>>()?;
        Ok(Some(both))
    }

    /// `f` of modality `m` of every sample, read back from the device; a
    /// failed read-back or a non-finite value (diverged weights) is an error
    /// naming the encoders and the sample, never a stand-in value.
    fn embed_all(&self, data: &TrainData, m: usize, device: &Device, f: impl Fn(Tensor<4>) -> Tensor<2>) -> Result<Vec<Vec<f32>>> {
        let all: Vec<usize> = (0..data.labels.len()).collect();
        let mut out = Vec::with_capacity(all.len());
        for batch in eval_batches(&all, 128) {
            let clips: Vec<_> = batch.iter().map(|&i| &data.clips[m][i]).collect();
            let y = f(stack(&clips, device));
            let [_, d] = y.dims();
            let flat = y
                .try_into_vec_as::<f32>()
                .map_err(|e| anyhow::anyhow!("{}: cannot read the '{}' features back from the device: {e:?}", self.source, data.modalities[m]))?;
            if let Some(k) = flat.iter().position(|v| !v.is_finite()) {
                bail!(
                    "{}: the '{}' encoder gives a non-finite feature ({}) for sample {}",
                    self.source,
                    data.modalities[m],
                    flat[k],
                    data.sample_ids[batch[k / d]]
                );
            }
            out.extend(flat.chunks(d).map(<[f32]>::to_vec));
        }
        Ok(out)
    }
}

/// The name of a classification run's metrics file.
pub const METRICS_FILE: &str = "metrics.json";

/// Reads the test metrics of a run's `metrics.json` (fine-tuning or
/// supervised training).
pub fn read_metrics(dir: &Path) -> Result<ClassificationMetrics> {
    crate::fsutil::read_json(&dir.join(METRICS_FILE))
}

/// The key of `metrics.json` that holds the validation main metric at the
/// best epoch (runs of cmkm 0.13.0 written before sweeps lack it).
pub const VALIDATION_KEY: &str = "validation";

/// The validation main metric of a run's `metrics.json`, if it records one.
pub fn read_validation(dir: &Path) -> Result<Option<f64>> {
    let json: serde_json::Value = crate::fsutil::read_json(&dir.join(METRICS_FILE))?;
    Ok(json.get(VALIDATION_KEY).and_then(serde_json::Value::as_f64))
}

/// A classification evaluation: test metrics, what was predicted, and the
/// head's training curve.
#[derive(Debug, Clone, Serialize)]
pub struct ClassificationResult {
    pub metrics: ClassificationMetrics,
    pub best_epoch: usize,
    pub epochs_run: usize,
    /// The main metric on the validation split at the best epoch: what a
    /// sweep chooses its variant on.
    pub validation: Option<f64>,
    #[serde(skip)]
    pub sample_ids: Vec<String>,
    #[serde(skip)]
    pub labels: Vec<usize>,
    #[serde(skip)]
    pub predictions: Vec<usize>,
}

impl ClassificationResult {
    /// Writes `metrics.json` and `predictions.csv` (1-based labels) into `dir`.
    pub fn write(&self, dir: &Path, extra: serde_json::Value) -> Result<()> {
        let mut json = serde_json::to_value(&self.metrics)?;
        if let (Some(obj), serde_json::Value::Object(more)) = (json.as_object_mut(), extra) {
            obj.insert("best_epoch".into(), self.best_epoch.into());
            obj.insert("epochs_run".into(), self.epochs_run.into());
            if let Some(v) = self.validation {
                obj.insert(VALIDATION_KEY.into(), v.into());
            }
            obj.extend(more);
        }
        crate::fsutil::write_json(&dir.join(METRICS_FILE), &json)?;
        let mut csv = String::from("sample_id,label,prediction\n");
        for ((id, l), p) in self.sample_ids.iter().zip(&self.labels).zip(&self.predictions) {
            csv.push_str(&format!("{id},{},{}\n", l + 1, p + 1));
        }
        crate::fsutil::write_atomic(&dir.join("predictions.csv"), csv.as_bytes())
    }
}
