//! CMC (Tian et al., 2020) and CMC-CMKM (Brinzea et al., 2022) on two
//! modalities: one encoder + projection per modality, contrasted across
//! modalities. CMC-CMKM also lets each modality's frozen SimCLR encoder mine
//! positives for the other (docs/method.md section 6).

use super::simclr::weighted_mean;
use super::Context;
use crate::losses::{cmc_loss, cmkm_loss, cmkm_masks, cosine_matrix, mean_pair_similarity, CmkmOptions};
use crate::models::{Encoder, ProjectionHead};
use crate::training::batches::{batch_tensor, eval_batches};
use crate::training::branches::{forward_pair, initialise_parameters};
use crate::training::{Objective, StepOutput, Validation};
use anyhow::Result;
use burn::prelude::*;

/// One encoder and projection head per modality.
#[derive(Module, Debug)]
pub struct CmcModel {
    pub encoders: Vec<Encoder>,
    pub projections: Vec<ProjectionHead>,
}

impl CmcModel {
    /// The two encoders and projection heads; burn initialises each
    /// parameter when it is first used (or a checkpoint replaces it).
    pub fn new(ctx: &Context, device: &Device) -> Result<Self> {
        let mut encoders = vec![];
        let mut projections = vec![];
        for m in 0..2 {
            encoders.push(ctx.encoder(m, device)?);
            projections.push(ProjectionHead::new(ctx.encoder_output(m)?, &ctx.method.projection, device));
        }
        Ok(CmcModel { encoders, projections })
    }

    /// [`CmcModel::new`] with every parameter initialised now, in a fixed
    /// order, for training: the two modalities' branches run side by side
    /// and must not race for burn's generator. Call it under the training
    /// lock; a model built to load a checkpoint draws nothing.
    pub fn for_training(ctx: &Context, device: &Device) -> Result<Self> {
        let model = Self::new(ctx, device)?;
        initialise_parameters(&model);
        Ok(model)
    }

    fn embed(&self, m: usize, x: Tensor<4>) -> Tensor<2> {
        self.projections[m].forward(self.encoders[m].forward(x))
    }
}

/// CMC, or CMC-CMKM when `miners` holds the two frozen SimCLR encoders.
pub struct Contrastive<'a> {
    pub ctx: &'a Context<'a>,
    pub options: CmkmOptions,
    /// Frozen, evaluation-mode SimCLR encoders of modality 1 and 2.
    pub miners: Option<[Encoder; 2]>,
}

impl Contrastive<'_> {
    /// Loads the frozen encoders from the SimCLR runs named in `pretrained`.
    pub fn load_miners(ctx: &Context) -> Result<[Encoder; 2]> {
        let load = |m: usize| -> Result<Encoder> {
            let name = &ctx.data.modalities[m];
            super::load_simclr_encoder(&ctx.method.pretrained[name], name, ctx.data.shapes[m], ctx.data.classes, &ctx.eval_device)
        };
        Ok([load(0)?, load(1)?])
    }

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

impl Objective for Contrastive<'_> {
    type Model = CmcModel;

    fn step(&self, model: &CmcModel, batch: &[usize], epoch: u64) -> StepOutput {
        let [x1, x2] = self.inputs(batch, "train", epoch);
        let masks = self.miners.as_ref().map(|miners| {
            // P1, P2: similarities under the frozen encoders, on the very
            // batch the trained encoders see, side by side.
            let similarity = |e: &Encoder, x: Tensor<4>| {
                let f = e.forward(x);
                cosine_matrix(f.clone(), f).try_into_vec_as::<f32>().expect("an f32 similarity matrix reads back as f32")
            };
            let (p1, p2) = rayon::join(|| similarity(&miners[0], x1.clone()), || similarity(&miners[1], x2.clone()));
            cmkm_masks(&p1, &p2, batch.len(), &self.options)
        });
        // The two modalities' encoders share nothing: they run, forward and
        // backward, side by side.
        let (x1, x2) = (x1.autodiff(), x2.autodiff());
        let branches = forward_pair(&self.ctx.train_device, || model.embed(0, x1), || model.embed(1, x2));
        let (z1, z2) = (branches[0].leaf(), branches[1].leaf());
        let (loss, stats) = match masks {
            None => (cmc_loss(z1, z2, self.options.temperature), vec![]),
            Some(masks) => {
                let (pos, neg) = mean_pair_similarity(z1.clone(), z2.clone(), &masks);
                let stats = vec![("positive_similarity", pos as f64), ("negative_similarity", neg as f64)];
                (cmkm_loss(z1, z2, &masks, &self.options), stats)
            }
        };
        StepOutput { loss, stats, branches: Some(branches) }
    }

    /// Validation uses the plain CMC loss (docs/method.md: mining is training-only).
    fn validate(&self, model: &CmcModel) -> Validation {
        let c = self.ctx;
        let losses: Vec<(f64, usize)> = eval_batches(&c.data.split.val, c.method.schedule.batch_size)
            .iter()
            .filter(|b| b.len() >= 2)
            .map(|b| {
                let [x1, x2] = self.inputs(b, "val", 0);
                let loss = cmc_loss(model.embed(0, x1), model.embed(1, x2), self.options.temperature);
                (loss.into_scalar::<f32>() as f64, b.len())
            })
            .collect();
        Validation { loss: weighted_mean(&losses), metric: None }
    }
}
