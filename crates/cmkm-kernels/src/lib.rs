//! The slice-level kernels behind cmkm's encoders: channels-last
//! convolution (im2col + gemm, direct AVX2 tiles, Winograd F(2x2, 3x3)),
//! batch norm, max-pool, the 1 x 1 point convolution, the Transformer's
//! feed-forward and attention, and the sparse products that skip ReLU's
//! zeros, each with its backward pass, on plain `&[f32]` slices; and
//! [`peak`], the multiply-add peak of one thread that they are measured
//! against.
//!
//! Nothing here knows burn: the main crate registers these as single
//! operations of burn's CPU backend (`cmkm::models::flex_kernels`). Which
//! instruction set runs is decided in one place, [`isa`]; the
//! `CMKM_KERNELS_PORTABLE=1` environment variable (or the `portable`
//! feature) forces the portable path, which the tests then cover.
//! Every unsafe block states why it is sound (`// SAFETY:`), enforced by
//! `clippy::undocumented_unsafe_blocks`.

#![deny(clippy::undocumented_unsafe_blocks)]
// `!(x > 0.0)` treats NaN as not positive, on purpose.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod adam;
pub mod attention;
pub mod conv;
pub mod direct;
pub mod feed_forward;
pub mod isa;
pub mod mask;
pub mod norm;
pub mod peak;
pub mod point;
pub mod pool;
pub mod sparse;
pub mod winograd;

use rayon::prelude::*;

/// Samples per work chunk: im2col blocks of about 128 K values, and at
/// least eight chunks. Depends on the shape only, never on the thread count.
pub fn chunks_of(batch: usize, per_sample: usize) -> usize {
    (131_072 / per_sample.max(1)).clamp(1, batch.div_ceil(8).max(1))
}

/// A new vector of `len` values, filled in parallel blocks of `span`
/// values (the last may be shorter) by `fill(block index, block)`.
/// Activations are written once instead of zeroed first: the zeroing was
/// about 2% of a CMC step.
///
/// # Safety
/// `fill` must write every value of every block it is given.
pub unsafe fn written<T: Send>(len: usize, span: usize, fill: impl Fn(usize, &mut [std::mem::MaybeUninit<T>]) + Sync) -> Vec<T> {
    let mut out = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len].par_chunks_mut(span.max(1)).enumerate().for_each(|(block, values)| fill(block, values));
    // SAFETY: the caller's `fill` wrote all `len` values.
    unsafe { out.set_len(len) };
    out
}
