//! The one place that decides which instruction set the kernels use.
//!
//! Decided once per process, at the first kernel call, from the CPU: AVX2
//! and FMA on x86-64 (nothing elsewhere), and AVX-512 F beside them. Two
//! switches lower it, for tests and comparisons: the portable path is
//! forced by the `portable` feature or by `CMKM_KERNELS_PORTABLE=1` (any
//! value other than empty or `0`), and `CMKM_KERNELS_MAX_ISA=avx2` caps the
//! level at AVX2 + FMA on an AVX-512 CPU (`portable` there forces the
//! portable path too). Every path computes each output with the same
//! operations in the same order, so the results do not depend on the
//! level; `make test` runs the kernel tests at every level the CPU has.

use std::sync::OnceLock;

/// The environment variable that forces the portable path.
pub const FORCE_PORTABLE: &str = "CMKM_KERNELS_PORTABLE";

/// The environment variable that caps the instruction set: `avx2` or
/// `portable` (`avx512`, or unset, leaves the CPU's).
pub const MAX_ISA: &str = "CMKM_KERNELS_MAX_ISA";

/// What the kernels may use on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    /// 256-bit integer and float lanes.
    pub avx2: bool,
    /// AVX2 and fused multiply-add: the direct convolution, the blocked and
    /// sparse products and attention's vector path need both.
    pub avx2_fma: bool,
    /// AVX-512 F (with AVX2 and FMA): 16-lane multiply-adds, used by the
    /// peak and by the kernels that gain from them.
    pub avx512: bool,
}

/// The portable level: no vector path.
const PORTABLE: Level = Level { avx2: false, avx2_fma: false, avx512: false };

/// The level the kernels run at (decided once).
pub fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| capped(detected(), cap()))
}

/// A cap on the level, from the switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cap {
    None,
    Avx2,
    Portable,
}

fn cap() -> Cap {
    if forced_portable() {
        return Cap::Portable;
    }
    max_isa().unwrap_or_else(|e| panic!("{e}"))
}

/// The cap `CMKM_KERNELS_MAX_ISA` asks for.
fn max_isa() -> Result<Cap, String> {
    match std::env::var(MAX_ISA).as_deref().map(str::to_ascii_lowercase).as_deref() {
        Ok("avx2") => Ok(Cap::Avx2),
        Ok("portable") => Ok(Cap::Portable),
        Ok("") | Ok("avx512") | Err(_) => Ok(Cap::None),
        Ok(other) => Err(format!("{MAX_ISA}={other}: expected avx512, avx2 or portable")),
    }
}

fn capped(found: Level, cap: Cap) -> Level {
    match cap {
        Cap::None => found,
        Cap::Avx2 => Level { avx512: false, ..found },
        Cap::Portable => PORTABLE,
    }
}

/// Checks the switches' values, for a command line to report a misspelt
/// one as an error before any work (the kernels would panic on it).
pub fn check_switches() -> Result<(), String> {
    max_isa().map(|_| ())
}

/// Whether the AVX2 paths run.
pub fn avx2() -> bool {
    level().avx2
}

/// Whether the AVX2 + FMA paths run.
pub fn avx2_fma() -> bool {
    level().avx2_fma
}

/// Whether the AVX-512 paths run.
pub fn avx512() -> bool {
    level().avx512
}

/// Runs `f` compiled for the widest vector instructions the kernels may
/// use ([`avx512`], else [`avx2_fma`]): plain loops are otherwise compiled
/// for x86-64's baseline, four SSE lanes. Batch norm's output pass runs
/// so (0.78-0.89 of its time on the AVX-512 Xeon; its gradient passes,
/// the feed-forward's gradient pass and Adam, all bound by memory, gained
/// nothing measurable and stay on the baseline). LLVM
/// vectorises a loop across its independent values and never fuses a
/// multiply with an add on its own, so each value is computed as on the
/// baseline, bit for bit. `f` should run a whole block of work and be
/// marked `#[inline(always)]` (`vectorised(#[inline(always)] || ...)`):
/// only inlined into the wrapper that carries the features is it compiled
/// with them.
#[inline(always)]
pub fn vectorised<T>(f: impl FnOnce() -> T) -> T {
    #[cfg(target_arch = "x86_64")]
    {
        if avx512() {
            // SAFETY: `avx512` is true only on a CPU with AVX-512 F, AVX2 and FMA.
            return unsafe { with_avx512(f) };
        }
        if avx2_fma() {
            // SAFETY: `avx2_fma` is true only on a CPU with AVX2 and FMA.
            return unsafe { with_avx2(f) };
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn with_avx512<T>(f: impl FnOnce() -> T) -> T {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2<T>(f: impl FnOnce() -> T) -> T {
    f()
}

/// Whether the portable path is forced (feature or environment).
pub fn forced_portable() -> bool {
    cfg!(feature = "portable") || std::env::var(FORCE_PORTABLE).is_ok_and(|v| !v.is_empty() && v != "0")
}

#[cfg(target_arch = "x86_64")]
fn detected() -> Level {
    let avx2 = is_x86_feature_detected!("avx2");
    let avx2_fma = avx2 && is_x86_feature_detected!("fma");
    Level { avx2, avx2_fma, avx512: avx2_fma && is_x86_feature_detected!("avx512f") }
}

#[cfg(not(target_arch = "x86_64"))]
fn detected() -> Level {
    PORTABLE
}

/// The name of a level's widest path.
fn name(l: Level) -> &'static str {
    if l.avx512 {
        "AVX-512"
    } else if l.avx2_fma {
        "AVX2 + FMA"
    } else if l.avx2 {
        "AVX2 (no FMA)"
    } else {
        "portable"
    }
}

/// A line for logs and benchmark reports: which path runs and why.
pub fn describe() -> String {
    let (found, l) = (detected(), level());
    let by = if forced_portable() {
        format!("{FORCE_PORTABLE}=1 or the `portable` feature")
    } else {
        format!("{MAX_ISA}={}", std::env::var(MAX_ISA).unwrap_or_default())
    };
    match cap() {
        Cap::None => name(l).to_string(),
        _ if found == l => format!("{} (the CPU's widest; {by} asks no more)", name(l)),
        _ => format!("{} (the CPU has {}; capped by {by})", name(l), name(found)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn forcing_the_portable_path_turns_every_fast_path_off() {
        let l = super::level();
        assert!(!l.avx2_fma || l.avx2, "FMA paths need AVX2 too");
        assert!(!l.avx512 || l.avx2_fma, "AVX-512 paths need AVX2 and FMA too");
        if super::forced_portable() {
            assert_eq!(l, super::PORTABLE);
            assert!(super::describe().starts_with("portable"));
        }
        eprintln!("kernel ISA: {}", super::describe());
    }

    #[test]
    fn caps_lower_the_level_and_never_raise_it() {
        use super::{capped, Cap, Level};
        let all = Level { avx2: true, avx2_fma: true, avx512: true };
        assert_eq!(capped(all, Cap::None), all);
        assert_eq!(capped(all, Cap::Avx2), Level { avx512: false, ..all });
        assert_eq!(capped(all, Cap::Portable), super::PORTABLE);
        let avx2 = Level { avx512: false, ..all };
        assert_eq!(capped(avx2, Cap::Avx2), avx2);
        assert_eq!(capped(super::PORTABLE, Cap::None), super::PORTABLE);
    }
}
