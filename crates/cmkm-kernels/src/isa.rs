//! The one place that decides which instruction set the kernels use.
//!
//! Decided once per process, at the first kernel call: the CPU's AVX2 and
//! FMA support on x86-64 (nothing elsewhere), unless the portable path is
//! forced by the `portable` feature or by `CMKM_KERNELS_PORTABLE=1` in the
//! environment (any value other than empty or `0`). Both paths give the
//! same results up to floating-point summation order; `.ci/run` runs the
//! kernel tests both ways.

use std::sync::OnceLock;

/// The environment variable that forces the portable path.
pub const FORCE_PORTABLE: &str = "CMKM_KERNELS_PORTABLE";

/// What the kernels may use on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    /// 256-bit integer and float lanes.
    pub avx2: bool,
    /// AVX2 and fused multiply-add: the direct convolution, the blocked and
    /// sparse products and attention's vector path need both.
    pub avx2_fma: bool,
}

/// The level the kernels run at (decided once).
pub fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| if forced_portable() { Level { avx2: false, avx2_fma: false } } else { detected() })
}

/// Whether the AVX2 paths run.
pub fn avx2() -> bool {
    level().avx2
}

/// Whether the AVX2 + FMA paths run.
pub fn avx2_fma() -> bool {
    level().avx2_fma
}

/// Whether the portable path is forced (feature or environment).
pub fn forced_portable() -> bool {
    cfg!(feature = "portable") || std::env::var(FORCE_PORTABLE).is_ok_and(|v| !v.is_empty() && v != "0")
}

#[cfg(target_arch = "x86_64")]
fn detected() -> Level {
    let avx2 = is_x86_feature_detected!("avx2");
    Level { avx2, avx2_fma: avx2 && is_x86_feature_detected!("fma") }
}

#[cfg(not(target_arch = "x86_64"))]
fn detected() -> Level {
    Level { avx2: false, avx2_fma: false }
}

/// A line for logs and benchmark reports: which path runs and why.
pub fn describe() -> String {
    let l = level();
    let path = if l.avx2_fma {
        "AVX2 + FMA"
    } else if l.avx2 {
        "AVX2 (no FMA)"
    } else {
        "portable"
    };
    if forced_portable() {
        format!("{path} (forced by {FORCE_PORTABLE} or the `portable` feature)")
    } else {
        path.to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn forcing_the_portable_path_turns_every_fast_path_off() {
        let l = super::level();
        assert!(!l.avx2_fma || l.avx2, "FMA paths need AVX2 too");
        if super::forced_portable() {
            assert_eq!(l, super::Level { avx2: false, avx2_fma: false });
            assert!(super::describe().starts_with("portable"));
        }
    }
}
