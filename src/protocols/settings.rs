//! How the evaluation protocols train their heads, as values the planner's
//! steps, the runner and `cmkm evaluate` hand on whole: the head training
//! (schedule, head, frozen-encoder mode, seed) and the label subsets
//! (fractions, repetitions). Leaf types: the protocols read them, nothing
//! here reads a protocol.

use crate::methods::config::ScheduleConfig;
use crate::models::EvaluationHead;

/// How frozen encoders behave while a head trains on them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum FrozenEncoders {
    /// Evaluation mode: batch norm on its running statistics, no dropout.
    /// The features never change, so they are computed once (cmkm's
    /// default).
    #[default]
    Eval,
    /// Training mode with gradients stopped, as the reference's frozen
    /// encoders run under pytorch_lightning 1.4.9 (docs/method.md section
    /// 8): batch norm normalises with each batch's statistics and moves its
    /// running statistics (which validation and test then use), dropout
    /// is on. The encoders run in every step and every validation pass.
    Training,
}

impl FrozenEncoders {
    /// Whether this is the default, [`FrozenEncoders::Eval`] (left out of
    /// run specifications, so that run ids from before the setting stand).
    pub fn is_eval(&self) -> bool {
        *self == FrozenEncoders::Eval
    }
}

/// docs/method.md section 7: 100 epochs, batch 64, Adam 1e-3, plateau on the
/// validation metric (factor 0.5, patience 10; 5 for the multimodal
/// classifier), early stopping on the validation loss (patience 50).
pub fn paper_schedule(multimodal: bool) -> ScheduleConfig {
    ScheduleConfig {
        epochs: 100,
        batch_size: 64,
        lr: 1e-3,
        plateau_factor: 0.5,
        plateau_patience: if multimodal { 5 } else { 10 },
        early_stopping_patience: Some(50),
        grad_clip_norm: None,
    }
}

/// How a protocol trains an evaluation head on encoders.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadTraining {
    /// Epochs, batch, learning rate, plateau and early stopping.
    pub schedule: ScheduleConfig,
    /// The head on the encoders' features.
    pub head: EvaluationHead,
    /// How frozen encoders behave while it trains.
    pub frozen: FrozenEncoders,
    /// Seeds the head, its batches and the label subsets.
    pub seed: u64,
}

impl HeadTraining {
    /// The paper's schedule for heads on `modalities` encoders (section 7),
    /// with `epochs` where given.
    pub fn paper(modalities: usize, epochs: Option<usize>, head: EvaluationHead, frozen: FrozenEncoders, seed: u64) -> Self {
        let mut schedule = paper_schedule(modalities > 1);
        if let Some(e) = epochs {
            schedule.epochs = e;
        }
        HeadTraining { schedule, head, frozen, seed }
    }
}

/// Which label subsets a label-fraction evaluation trains on: each fraction
/// of every class of the training split, drawn `repetitions` times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelSubsets<'a> {
    pub fractions: &'a [f64],
    pub repetitions: u64,
}
