//! Learning-rate schedule and stopping rules (docs/method.md section 7), with
//! PyTorch's semantics so schedules from the reference carry over.

use serde::{Deserialize, Serialize};

/// Whether a smaller or a larger monitored value is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Min,
    Max,
}

impl Mode {
    /// True when `value` improves on `best` by more than the relative threshold.
    fn improves(self, value: f64, best: f64, threshold: f64) -> bool {
        match self {
            Mode::Min => value < best - best.abs() * threshold,
            Mode::Max => value > best + best.abs() * threshold,
        }
    }
}

/// `torch.optim.lr_scheduler.ReduceLROnPlateau` (relative threshold 1e-4,
/// no cooldown): multiply the learning rate by `factor` once the monitored
/// value has not improved for more than `patience` epochs.
#[derive(Debug, Clone)]
pub struct ReduceLrOnPlateau {
    mode: Mode,
    factor: f64,
    patience: usize,
    best: Option<f64>,
    bad_epochs: usize,
    lr: f64,
}

impl ReduceLrOnPlateau {
    pub fn new(lr: f64, mode: Mode, factor: f64, patience: usize) -> Self {
        ReduceLrOnPlateau { mode, factor, patience, best: None, bad_epochs: 0, lr }
    }

    /// Current learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Records one epoch's value; returns the learning rate for the next.
    pub fn step(&mut self, value: f64) -> f64 {
        match self.best {
            Some(best) if !self.mode.improves(value, best, 1e-4) => self.bad_epochs += 1,
            _ => {
                self.best = Some(value);
                self.bad_epochs = 0;
            }
        }
        if self.bad_epochs > self.patience {
            self.lr *= self.factor;
            self.bad_epochs = 0;
        }
        self.lr
    }
}

/// Stops training once the monitored value has not improved for `patience` epochs.
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    mode: Mode,
    patience: usize,
    best: Option<f64>,
    stale: usize,
}

impl EarlyStopping {
    pub fn new(mode: Mode, patience: usize) -> Self {
        EarlyStopping { mode, patience, best: None, stale: 0 }
    }

    /// Records one epoch's value; true when training should stop.
    pub fn should_stop(&mut self, value: f64) -> bool {
        match self.best {
            Some(best) if !self.mode.improves(value, best, 0.0) => self.stale += 1,
            _ => {
                self.best = Some(value);
                self.stale = 0;
            }
        }
        self.stale >= self.patience
    }
}

/// Keeps track of the best epoch for checkpoint selection.
#[derive(Debug, Clone)]
pub struct BestTracker {
    mode: Mode,
    pub best: Option<f64>,
    pub epoch: Option<usize>,
}

impl BestTracker {
    pub fn new(mode: Mode) -> Self {
        BestTracker { mode, best: None, epoch: None }
    }

    /// True when `value` is the best so far (ties keep the earlier epoch).
    pub fn update(&mut self, epoch: usize, value: f64) -> bool {
        let better = match self.best {
            None => value.is_finite(),
            Some(best) => self.mode.improves(value, best, 0.0),
        };
        if better {
            self.best = Some(value);
            self.epoch = Some(epoch);
        }
        better
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plateau_halves_after_patience_like_pytorch() {
        let mut s = ReduceLrOnPlateau::new(1e-3, Mode::Min, 0.5, 2);
        // Improvements keep the rate; three bad epochs (> patience 2) halve it.
        for v in [1.0, 0.9, 0.9, 0.95] {
            assert_eq!(s.step(v), 1e-3);
        }
        assert_eq!(s.step(0.91), 5e-4);
        // The counter restarts after a reduction.
        assert_eq!(s.step(0.92), 5e-4);
        let mut m = ReduceLrOnPlateau::new(1.0, Mode::Max, 0.5, 0);
        assert_eq!(m.step(0.5), 1.0);
        assert_eq!(m.step(0.5), 0.5);
    }

    #[test]
    fn early_stopping_and_best_tracking() {
        let mut e = EarlyStopping::new(Mode::Min, 2);
        assert!(!e.should_stop(1.0));
        assert!(!e.should_stop(1.1));
        assert!(e.should_stop(1.0));
        let mut b = BestTracker::new(Mode::Max);
        assert!(b.update(0, 0.5));
        assert!(!b.update(1, 0.5));
        assert!(b.update(2, 0.6));
        assert_eq!((b.best, b.epoch), (Some(0.6), Some(2)));
        assert!(!BestTracker::new(Mode::Min).update(0, f64::NAN));
    }
}

/// Optimiser, schedule and stopping rules (docs/method.md section 7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    pub epochs: usize,
    pub batch_size: usize,
    #[serde(default = "lr")]
    pub lr: f64,
    #[serde(default = "factor")]
    pub plateau_factor: f64,
    /// Epochs without improvement before the rate is reduced (SSL: training
    /// loss, patience 20; supervised: validation main metric, patience 10).
    pub plateau_patience: usize,
    /// Stop after this many epochs without a lower validation loss.
    #[serde(default)]
    pub early_stopping_patience: Option<usize>,
    /// Clip each parameter tensor's gradient to this L2 norm before the
    /// optimizer step (burn's `GradientClippingConfig::Norm`); off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_clip_norm: Option<f64>,
}

fn lr() -> f64 {
    1e-3
}
fn factor() -> f64 {
    0.5
}
