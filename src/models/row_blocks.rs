//! Column statistics and per-column parameters of `(N, C)` activations on
//! the composed path (GPUs), with no reduction over more than
//! [`ROWS_PER_REDUCTION`] rows; the GPU convolution's batch chunks
//! (`channels_last`) keep to the same bound where the driver needs it.
//!
//! Why: Mesa's software Vulkan driver (lavapipe, llvmpipe in Mesa 22.3:
//! the GPU of CI's tests) ends a shader invocation's loops after 65 535
//! iterations in all, and burn's wgpu column reductions give one
//! invocation a whole column there, so a column sum over more rows
//! silently drops the rest (the sum of 70 000 ones is 65 532). The
//! co-occurrence encoder's batch norms see 88 320 rows at batch 64. The
//! gradient of a per-channel value broadcast over those rows is such a sum
//! too, and stays one however the rows are shaped, since burn folds all of
//! a broadcast's axes into one reduction. Here the rows are `(K, M, C)`
//! blocks and a per-channel value is expanded over both block axes
//! explicitly, whose gradient burn reduces one axis at a time: every sum,
//! forward and backward, covers at most `M` or `K` rows. Blocked sums
//! also round less than one long one, so other GPUs take the same path.

use burn::prelude::*;

/// The longest column a reduction here covers: half the driver's loop
/// limit, so a kernel that unrolls by two or takes a few extra iterations
/// stays inside it.
pub const ROWS_PER_REDUCTION: usize = 32_768;

/// How an `(N, C)` activation splits into `K` blocks of `M` rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowBlocks {
    blocks: usize,
    rows_per_block: usize,
    columns: usize,
    /// Whether [`RowBlocks::spread`] expands explicitly; the CPU backend's
    /// broadcasting sums its gradients without the limit, and runs faster
    /// on a plain broadcast.
    expand: bool,
}

impl RowBlocks {
    /// The fewest blocks of at most [`ROWS_PER_REDUCTION`] rows that `n`
    /// divides into. `n = batch x positions` always splits when both are at
    /// most the limit (the batch is a divisor in range); otherwise, with no
    /// divisor between `n / limit` and the limit, one block of all `n`
    /// rows, whose sums lavapipe would truncate.
    pub fn new(n: usize, columns: usize, expand: bool) -> Self {
        let blocks =
            if n <= ROWS_PER_REDUCTION { 1 } else { (n.div_ceil(ROWS_PER_REDUCTION)..=ROWS_PER_REDUCTION).find(|k| n.is_multiple_of(*k)).unwrap_or(1) };
        RowBlocks { blocks, rows_per_block: n / blocks, columns, expand }
    }

    /// The blocks of `x`, `(N, C)`, expanded explicitly off the CPU
    /// backend (and on it when it runs the GPU's code).
    pub fn of(x: &Tensor<2>) -> Self {
        let [n, c] = x.dims();
        Self::new(n, c, !crate::device::is_host(&x.device()) || crate::device::cpu_as_gpu())
    }

    /// `(N, C)` -> `(K, M, C)`.
    pub fn split(&self, x: Tensor<2>) -> Tensor<3> {
        x.reshape([self.blocks, self.rows_per_block, self.columns])
    }

    /// `(K, M, C)` -> `(N, C)`.
    pub fn join(&self, x: Tensor<3>) -> Tensor<2> {
        x.reshape([self.blocks * self.rows_per_block, self.columns])
    }

    /// Column means of the blocks `x`, `(K, M, C)` -> `(1, 1, C)`: each
    /// block's rows summed, then the blocks.
    pub fn column_mean(&self, x: Tensor<3>) -> Tensor<3> {
        x.sum_dim(1).sum_dim(0).div_scalar((self.blocks * self.rows_per_block) as f64)
    }

    /// A per-column `value` (`(C)` or any shape of `C` values) as
    /// `(1, 1, C)`, the shape of [`RowBlocks::column_mean`].
    pub fn column<const D: usize>(&self, value: Tensor<D>) -> Tensor<3> {
        value.reshape([1, 1, self.columns])
    }

    /// A per-column `value` (`(C)` or `(1, 1, C)`) for every row of the
    /// blocks: `(K, M, C)`, an expanded view rather than a copy (or `(1, 1,
    /// C)` for the CPU backend to broadcast).
    pub fn spread<const D: usize>(&self, value: Tensor<D>) -> Tensor<3> {
        let value = self.column(value);
        if self.expand {
            value.expand([self.blocks, self.rows_per_block, self.columns])
        } else {
            value
        }
    }

    /// `x + bias` for `x` `(N, C)` and `bias` `(C)`, one per column.
    pub fn add_bias(x: Tensor<2>, bias: Tensor<1>) -> Tensor<2> {
        let blocks = Self::of(&x);
        blocks.join(blocks.split(x) + blocks.spread(bias))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_stay_within_the_limit_and_cover_every_row() {
        for (n, blocks) in [(1, 1), (32_768, 1), (32_769, 3), (88_320, 3), (128_000, 4), (64 * 50 * 20, 2)] {
            let split = RowBlocks::new(n, 8, true);
            assert_eq!((split.blocks, split.blocks * split.rows_per_block), (blocks, n), "{n} rows");
            assert!(split.rows_per_block <= ROWS_PER_REDUCTION);
        }
        // A prime number of rows above the limit cannot split: one block.
        assert_eq!(RowBlocks::new(65_537, 8, true).blocks, 1);
    }

    #[test]
    fn column_means_and_spreads_and_their_gradients_match_plain_broadcasting() {
        let device = Device::flex().autodiff();
        for expand in [true, false] {
            let x = Tensor::<2>::from_data(TensorData::new((0..40_000 * 3).map(|i| ((i % 97) as f32).sin()).collect(), [40_000, 3]), &device).require_grad();
            let row = Tensor::<1>::from_floats([0.5, -1.0, 2.0], &device).require_grad();
            let blocks = RowBlocks::new(40_000, 3, expand);
            assert_eq!(blocks.blocks, 2);
            let split = blocks.split(x.clone());
            let ours = blocks.join(split.clone() * blocks.spread(row.clone()) - blocks.spread(blocks.column_mean(split)));
            let plain = x.clone() * row.clone().unsqueeze_dim(0) - x.clone().mean_dim(0);
            let weights = Tensor::<2>::ones([40_000, 3], &device).cumsum(0).div_scalar(40_000.0);
            let (g_ours, g_plain) = ((ours.clone() * weights.clone()).sum().backward(), (plain.clone() * weights).sum().backward());
            let close = |a: Tensor<2>, b: Tensor<2>| a.into_data().assert_approx_eq::<f32>(&b.into_data(), burn::tensor::Tolerance::rel_abs(1e-4, 1e-5));
            close(ours, plain);
            close(x.grad(&g_ours).unwrap(), x.grad(&g_plain).unwrap());
            close(row.grad(&g_ours).unwrap().unsqueeze_dim(0), row.grad(&g_plain).unwrap().unsqueeze_dim(0));
        }
    }
}
