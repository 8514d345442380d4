//! Two modalities, one encoder and projection head each, and a loss that
//! pulls the two modalities' embeddings of a sample together: CMC's
//! InfoNCE (Tian et al., 2020), CMC-CMKM's mined one (Brinzea et al., 2022,
//! with each modality's frozen pretrained encoder mining positives for the
//! other, docs/method.md section 6), or VICReg and Barlow Twins across modalities.

use super::method::{Context, ModelSpec, Trained, TrainedParts};
use super::two_views::{weighted_mean, PairLoss};
use crate::losses::{cmkm_loss, cmkm_masks, cosine_matrix, mean_pair_similarity, CmkmOptions};
use crate::models::{Encoder, ProjectionHead};
use crate::training::batches::{batch_tensor, eval_batches};
use crate::training::branches::{forward_pair, initialise_parameters};
use crate::training::timing::{self, StepTimes};
use crate::training::{checkpoint, fit, FitRules, Objective, Progress, StepOutput, Validation};
use anyhow::Result;
use burn::prelude::*;
use std::path::Path;

/// One encoder and projection head per modality.
#[derive(Module, Debug)]
pub struct CrossModalModel {
    pub encoders: Vec<Encoder>,
    pub projections: Vec<ProjectionHead>,
}

impl CrossModalModel {
    /// The two encoders and projection heads; burn initialises each
    /// parameter when it is first used (or a checkpoint replaces it).
    pub fn new(spec: &ModelSpec, device: &Device) -> Result<Self> {
        let mut encoders = vec![];
        let mut projections = vec![];
        for m in 0..2 {
            encoders.push(spec.encoder(m, device)?);
            projections.push(ProjectionHead::new(spec.encoder_output(m)?, &spec.method.projection, device));
        }
        Ok(CrossModalModel { encoders, projections })
    }

    /// [`CrossModalModel::new`] with every parameter initialised now, in a fixed
    /// order, for training: the two modalities' branches run side by side
    /// and must not race for burn's generator. Call it under the training
    /// lock; a model built to load a checkpoint draws nothing.
    pub fn for_training(spec: &ModelSpec, device: &Device) -> Result<Self> {
        let model = Self::new(spec, device)?;
        initialise_parameters(&model);
        Ok(model)
    }

    fn embed(&self, m: usize, x: Tensor<4>) -> Tensor<2> {
        self.projections[m].forward(self.encoders[m].forward(x))
    }
}

/// CMC-CMKM's positive mining: the frozen encoders of modality 1 and 2 and
/// the loss switches.
pub struct Mining<'a> {
    pub miners: &'a [Encoder],
    pub options: CmkmOptions,
}

/// The objective: `loss` of the two modalities' embeddings (validation
/// always), or the mined CMC-CMKM loss in training when `mining` is set.
pub struct CrossModal<'a> {
    pub ctx: &'a Context<'a>,
    pub loss: PairLoss<'a>,
    pub mining: Option<Mining<'a>>,
}

impl CrossModal<'_> {
    /// The two modalities of a batch, augmented with each modality's own
    /// pipeline, on the evaluation device (for the frozen miners).
    fn inputs(&self, batch: &[usize], view: &str, epoch: u64) -> [Tensor<4>; 2] {
        let c = self.ctx;
        std::array::from_fn(|m| {
            let name = format!("{view}/{}", c.data.modalities[m]);
            batch_tensor(&c.data.clips[m], batch, c.method.augmentation(&c.data.modalities[m]), Some((c.seed, &name, epoch)), &c.eval_device)
        })
    }
}

impl Objective for CrossModal<'_> {
    type Model = CrossModalModel;

    fn step(&self, model: &CrossModalModel, batch: &[usize], epoch: u64) -> StepOutput {
        let [x1, x2] = self.inputs(batch, "train", epoch);
        let masks = self.mining.as_ref().map(|mining| {
            // P1, P2: similarities under the frozen encoders, on the very
            // batch the trained encoders see, side by side.
            let similarity = |e: &Encoder, x: Tensor<4>| {
                let f = e.forward(x);
                cosine_matrix(f.clone(), f).try_into_vec_as::<f32>().expect("an f32 similarity matrix reads back as f32")
            };
            let (p1, p2) = crate::device::join(&x1.device(), || similarity(&mining.miners[0], x1.clone()), || similarity(&mining.miners[1], x2.clone()));
            (cmkm_masks(&p1, &p2, batch.len(), &mining.options), &mining.options)
        });
        // The two modalities' encoders share nothing: they run, forward and
        // backward, side by side.
        let (x1, x2) = (x1.autodiff(), x2.autodiff());
        let branches = forward_pair(&self.ctx.train_device, || model.embed(0, x1), || model.embed(1, x2));
        let (z1, z2) = (branches[0].leaf(), branches[1].leaf());
        let (loss, stats) = match masks {
            None => ((self.loss)(z1, z2), vec![]),
            Some((masks, options)) => {
                let (pos, neg) = mean_pair_similarity(z1.clone(), z2.clone(), &masks);
                let stats = vec![("positive_similarity", pos as f64), ("negative_similarity", neg as f64)];
                (cmkm_loss(z1, z2, &masks, options), stats)
            }
        };
        StepOutput { loss, stats, branches: Some(branches) }
    }

    /// Validation uses `loss` (docs/method.md: mining is training-only).
    fn validate(&self, model: &CrossModalModel) -> Validation {
        let c = self.ctx;
        let losses: Vec<(f64, usize)> = eval_batches(&c.data.split.val, c.method.schedule.batch_size)
            .iter()
            .filter(|b| b.len() >= 2)
            .map(|b| {
                let [x1, x2] = self.inputs(b, "val", 0);
                let loss = (self.loss)(model.embed(0, x1), model.embed(1, x2));
                (loss.into_scalar::<f32>() as f64, b.len())
            })
            .collect();
        Validation { loss: weighted_mean(&losses), metric: None }
    }
}

/// A freshly initialised [`CrossModalModel`] on the training device.
fn fresh_model(ctx: &Context) -> Result<CrossModalModel> {
    crate::device::build(&ctx.train_device, |d| CrossModalModel::for_training(&ctx.spec(), d))
}

/// Trains a [`CrossModalModel`] and saves it to `out`.
pub fn train(ctx: &Context, loss: PairLoss, mining: Option<Mining>, progress: &Progress, out: &Path) -> Result<Trained> {
    let objective = CrossModal { ctx, loss, mining };
    let fitted = fit(&objective, fresh_model(ctx)?, &ctx.data.pretraining(), &ctx.method.schedule, FitRules::SelfSupervised, ctx.seed, progress)?;
    Trained::save(fitted, out, None)
}

/// Times what [`train`] runs ([`crate::methods::Method::time_steps`]).
pub fn time_steps(ctx: &Context, loss: PairLoss, mining: Option<Mining>, batch: &[usize], steps: usize) -> Result<StepTimes> {
    Ok(timing::time_steps(&CrossModal { ctx, loss, mining }, fresh_model(ctx)?, batch, steps, &ctx.train_device))
}

/// The encoders and projection heads of a saved [`CrossModalModel`].
pub fn load(spec: &ModelSpec, device: &Device, path: &Path) -> Result<TrainedParts> {
    let model = checkpoint::load(CrossModalModel::new(spec, device)?, path)?.valid();
    Ok(TrainedParts { encoders: model.encoders, projections: Some(model.projections) })
}
