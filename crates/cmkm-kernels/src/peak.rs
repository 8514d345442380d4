//! The floating-point peak of one thread: independent chains of
//! multiply-adds, as many as keep the FMA units busy, timed. `cmkm bench`
//! divides the encoders' FLOP counts by their step times and by this
//! figure, which says how much any kernel work could still gain.
//!
//! The widest path the CPU has runs 12 chains of fused multiply-adds (the
//! units' latency times their count, with room): 16 lanes each with
//! AVX-512, 8 with AVX2 + FMA; the portable path runs 8-lane chains as
//! plain `a * b + c` on arrays, which the compiler vectorises as the
//! baseline instruction set allows. [`crate::isa`] picks, so the peak is
//! the machine's as the kernels are allowed to see it.

use std::time::Instant;

/// Independent chains, each [`lanes`] wide.
const CHAINS: usize = 12;
const LANES: usize = 8;
const WIDE_LANES: usize = 16;

/// Lanes per chain on the path that runs: 16 with AVX-512, else 8.
pub fn lanes() -> usize {
    if crate::isa::avx512() {
        WIDE_LANES
    } else {
        LANES
    }
}

/// The instruction set the peak is timed with, for reports.
pub fn isa() -> &'static str {
    if crate::isa::avx512() {
        "AVX-512, 16-lane FMA"
    } else if crate::isa::avx2_fma() {
        "AVX2, 8-lane FMA"
    } else {
        "portable"
    }
}

/// Runs `iterations` rounds of `acc = acc * scale + step` on every lane of
/// every chain, starting from `start[chain]`, and returns the sum of the
/// lanes (so that the work cannot be skipped).
pub fn chains(start: [f32; CHAINS], scale: f32, step: f32, iterations: usize) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if crate::isa::avx512() {
        // SAFETY: the CPU has AVX-512 F (checked by `isa`).
        return unsafe { avx512::chains(start, scale, step, iterations) };
    }
    #[cfg(target_arch = "x86_64")]
    if crate::isa::avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked by `isa`).
        return unsafe { avx::chains(start, scale, step, iterations) };
    }
    portable_chains(start, scale, step, iterations)
}

fn portable_chains(start: [f32; CHAINS], scale: f32, step: f32, iterations: usize) -> f32 {
    let mut acc = start.map(|s| [s; LANES]);
    for _ in 0..iterations {
        for chain in &mut acc {
            for lane in chain.iter_mut() {
                *lane = *lane * scale + step;
            }
        }
        acc = std::hint::black_box(acc);
    }
    acc.iter().flatten().sum()
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use super::{CHAINS, LANES};
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn chains(start: [f32; CHAINS], scale: f32, step: f32, iterations: usize) -> f32 {
        let (b, c) = (_mm256_set1_ps(scale), _mm256_set1_ps(step));
        let mut acc = start.map(|s| _mm256_set1_ps(s));
        for _ in 0..iterations {
            for a in &mut acc {
                *a = _mm256_fmadd_ps(*a, b, c);
            }
        }
        let mut total = 0.0;
        for a in acc {
            let mut lanes = [0.0f32; LANES];
            // SAFETY: `lanes` holds the 8 values an unaligned store writes.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), a) };
            total += lanes.iter().sum::<f32>();
        }
        total
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{CHAINS, WIDE_LANES};
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must support AVX-512 F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn chains(start: [f32; CHAINS], scale: f32, step: f32, iterations: usize) -> f32 {
        let (b, c) = (_mm512_set1_ps(scale), _mm512_set1_ps(step));
        let mut acc = start.map(|s| _mm512_set1_ps(s));
        for _ in 0..iterations {
            for a in &mut acc {
                *a = _mm512_fmadd_ps(*a, b, c);
            }
        }
        let mut total = 0.0;
        for a in acc {
            let mut lanes = [0.0f32; WIDE_LANES];
            // SAFETY: `lanes` holds the 16 values an unaligned store writes.
            unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), a) };
            total += lanes.iter().sum::<f32>();
        }
        total
    }
}

/// FLOP per second of one thread at its best: rounds of about 20 ms for
/// at least `min_seconds`, the fastest round kept (a VM's neighbours only
/// ever slow a round down).
pub fn flops_per_second(min_seconds: f64) -> f64 {
    let iterations = 2_000_000;
    let start = Instant::now();
    let mut best = 0.0f64;
    while best == 0.0 || start.elapsed().as_secs_f64() < min_seconds {
        let round = Instant::now();
        // Scale just under 1 and a tiny step keep the values finite and normal.
        std::hint::black_box(chains(std::hint::black_box([1.0; CHAINS]), 0.999_999, 1e-7, iterations));
        // A multiply and an add per lane of every chain.
        let flops = iterations as f64 * (2 * CHAINS * lanes()) as f64;
        best = best.max(flops / round.elapsed().as_secs_f64());
    }
    best
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_chains_compute_what_they_say_on_either_path() {
        // Scale 1 and step 1 add exactly 1 per iteration on every lane.
        let start: [f32; super::CHAINS] = std::array::from_fn(|i| i as f32);
        let expected = |lanes: usize| (0..super::CHAINS).map(|i| (i + 1000) as f32 * lanes as f32).sum::<f32>();
        assert_eq!(super::chains(start, 1.0, 1.0, 1000), expected(super::lanes()), "{}", super::isa());
        assert_eq!(super::portable_chains(start, 1.0, 1.0, 1000), expected(super::LANES));
    }

    #[test]
    fn the_peak_is_a_positive_rate() {
        let peak = super::flops_per_second(0.01);
        assert!(peak.is_finite() && peak > 1e6, "{peak}");
    }
}
