//! How close the bench's figures run to this machine's floating-point
//! peak: each figure's FLOPs ([`crate::methods::flops`], a training step
//! counted as three forward passes) over its median time, against the
//! multiply-add peak of one thread ([`cmkm_kernels::peak`]) times the
//! threads. Above about 70% no kernel work can halve a figure any more.

/// GFLOP/s of `flops` done in `ms` milliseconds.
pub fn gflop_per_s(flops: u64, ms: f64) -> f64 {
    flops as f64 / (ms * 1e6)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_rate_is_flops_over_time() {
        assert_eq!(super::gflop_per_s(3_000_000_000, 1000.0), 3.0);
    }
}
