//! Floating-point work of a method's passes, counted from its
//! configuration and input shapes ([`crate::models::flops`]): a training
//! step counts as three forward passes (forward, and backward's two
//! products per layer). `cmkm bench` divides these by its timings, and a
//! plan estimates untimed runs from them.

use super::method::ModelSpec;
use crate::models::flops;
use anyhow::Result;

/// Forward FLOPs per sample of a method's parts.
pub struct MethodFlops {
    /// Each modality's encoder.
    pub encoders: Vec<u64>,
    /// Each modality's SSL projection head.
    pub projections: Vec<u64>,
    /// The fusion classifier of a multimodal supervised model.
    pub fusion: u64,
}

/// The work of one training step and one validation pass on some samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassFlops {
    pub step: u64,
    pub validation: u64,
}

impl MethodFlops {
    /// Counted from the model `spec` describes.
    pub fn of(spec: &ModelSpec) -> Result<Self> {
        let mut encoders = vec![];
        let mut projections = vec![];
        let mut fusion = flops::linear(256 * spec.modalities.len(), spec.classes);
        let method = spec.method;
        for (name, &shape) in spec.modalities.iter().zip(spec.shapes) {
            let encoder = &method.encoders[name];
            let out = encoder.output_size(shape)?;
            encoders.push(encoder.forward_flops(shape)?);
            let p = &method.projection;
            projections.push(flops::linear(out, p.hidden) + flops::linear(p.hidden, p.out));
            fusion += flops::linear(out, 256);
        }
        Ok(MethodFlops { encoders, projections, fusion })
    }

    /// A cross-modal (CMC) model on `samples` samples: each modality's
    /// encoder and head; `mining` adds the frozen miners' forward passes
    /// to a training step (CMC-CMKM), not to validation.
    pub fn cross_modal(&self, samples: usize, mining: bool) -> PassFlops {
        let trained: u64 = self.encoders.iter().zip(&self.projections).map(|(e, p)| e + p).sum();
        let miners: u64 = if mining { self.encoders.iter().sum() } else { 0 };
        let n = samples as u64;
        PassFlops { step: n * (3 * trained + miners), validation: n * trained }
    }

    /// A SimCLR model: two views of `samples` samples through one encoder and head.
    pub fn two_views(&self, samples: usize) -> PassFlops {
        let views = 2 * samples as u64 * (self.encoders[0] + self.projections[0]);
        PassFlops { step: 3 * views, validation: views }
    }

    /// A supervised model: every modality's encoder and the classifier.
    pub fn supervised(&self, samples: usize) -> PassFlops {
        let forward = samples as u64 * (self.encoders.iter().sum::<u64>() + self.fusion);
        PassFlops { step: 3 * forward, validation: forward }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_counts_three_forward_passes_and_the_miners_one() {
        let m = MethodFlops { encoders: vec![10, 20], projections: vec![1, 2], fusion: 5 };
        assert_eq!(m.cross_modal(4, false), PassFlops { step: 4 * 3 * 33, validation: 4 * 33 });
        assert_eq!(m.cross_modal(4, true), PassFlops { step: 4 * (3 * 33 + 30), validation: 4 * 33 });
        assert_eq!(m.two_views(4), PassFlops { step: 2 * 4 * 3 * 11, validation: 2 * 4 * 11 });
        assert_eq!(m.supervised(2), PassFlops { step: 3 * 2 * 35, validation: 2 * 35 });
    }
}
