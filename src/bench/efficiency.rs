//! How close the bench's figures run to this machine's floating-point
//! peak: each figure's FLOPs ([`crate::models::flops`], a training step
//! counted as three forward passes) over its median time, against the
//! multiply-add peak of one thread ([`cmkm_kernels::peak`]) times the
//! threads. Above about 70% no kernel work can halve a figure any more.

use crate::methods::ModelSpec;
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

impl MethodFlops {
    /// Counted from `method`'s configuration and `data`'s input shapes.
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

    /// A cross-modal (CMC) training step on `batch` samples; `mining` adds
    /// the frozen miners' forward passes (CMC-CMKM).
    pub fn cross_modal_step(&self, batch: usize, mining: bool) -> u64 {
        let trained: u64 = self.encoders.iter().zip(&self.projections).map(|(e, p)| e + p).sum();
        let miners: u64 = if mining { self.encoders.iter().sum() } else { 0 };
        batch as u64 * (3 * trained + miners)
    }

    /// A SimCLR step: two views of `batch` samples through one encoder and head.
    pub fn two_views_step(&self, batch: usize) -> u64 {
        2 * batch as u64 * 3 * (self.encoders[0] + self.projections[0])
    }

    /// A supervised multimodal forward pass of `samples` samples (times 3 for a step).
    pub fn supervised_forward(&self, samples: usize) -> u64 {
        samples as u64 * (self.encoders.iter().sum::<u64>() + self.fusion)
    }
}

/// GFLOP/s of `flops` done in `ms` milliseconds.
pub fn gflop_per_s(flops: u64, ms: f64) -> f64 {
    flops as f64 / (ms * 1e6)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_step_counts_three_forward_passes_and_the_miners_one() {
        let m = super::MethodFlops { encoders: vec![10, 20], projections: vec![1, 2], fusion: 5 };
        assert_eq!(m.cross_modal_step(4, false), 4 * 3 * 33);
        assert_eq!(m.cross_modal_step(4, true), 4 * (3 * 33 + 30));
        assert_eq!(m.two_views_step(4), 2 * 4 * 3 * 11);
        assert_eq!(m.supervised_forward(2), 2 * 35);
        assert_eq!(super::gflop_per_s(3_000_000_000, 1000.0), 3.0);
    }
}
