//! Barlow Twins (Zbontar et al., ICML 2021): the cross-correlation matrix of
//! two batch-normalised embeddings of the same samples (two augmented views,
//! or two modalities) is pulled towards the identity. No negatives.

use super::{centred, identity, total};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// Barlow Twins' redundancy-reduction weight lambda (the authors' 5e-3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BarlowTwinsOptions {
    /// Weight of the off-diagonal (redundancy) term.
    #[serde(default = "lambda")]
    pub lambda: f32,
}

fn lambda() -> f32 {
    5e-3
}

impl Default for BarlowTwinsOptions {
    fn default() -> Self {
        BarlowTwinsOptions { lambda: lambda() }
    }
}

/// The epsilon of the authors' affine-free `BatchNorm1d` that normalises the embeddings.
pub const NORM_EPSILON: f64 = 1e-5;

/// Barlow Twins of `z1`, `z2` (N x D each, N >= 2): with `C = norm(z1)^T norm(z2) / N`
/// (each dimension standardised over the batch, biased variance + 1e-5, as
/// batch norm does), `sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2`.
pub fn barlow_twins_loss(z1: Tensor<2>, z2: Tensor<2>, o: &BarlowTwinsOptions) -> Tensor<1> {
    let [n, d] = z1.dims();
    let device = z1.device();
    let c = standardised(z1).transpose().matmul(standardised(z2)) / n as f64; // [D, D]
    let eye = identity(d, &device);
    let on_diagonal = total((c.clone() - eye.clone()).square() * eye.clone());
    let off_diagonal = total(c.square() * (eye.neg() + 1.0));
    on_diagonal + off_diagonal * o.lambda as f64
}

/// Each dimension minus its batch mean, over its batch standard deviation.
fn standardised(z: Tensor<2>) -> Tensor<2> {
    let n = z.dims()[0] as f64;
    let c = centred(z);
    let variance = c.clone().square().sum_dim(0) / n; // [1, D]
    c / (variance + NORM_EPSILON).sqrt()
}
