//! VICReg (Bardes, Ponce and LeCun, ICLR 2022): variance-invariance-covariance
//! regularisation of two embeddings of the same samples (two augmented views,
//! or two modalities). No negatives: the variance term keeps each dimension
//! spread over the batch, the covariance term decorrelates the dimensions.

use super::{centred, identity, total};
use burn::prelude::*;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

/// The weights of VICReg's three terms (the authors' 25 / 25 / 1) and the
/// epsilon under the standard deviation's square root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VicregOptions {
    /// Weight of the invariance term (mean squared distance of the pairs).
    #[serde(default = "twenty_five")]
    pub invariance: f32,
    /// Weight of the variance term (hinge on each dimension's standard deviation at 1).
    #[serde(default = "twenty_five")]
    pub variance: f32,
    /// Weight of the covariance term (squared off-diagonal covariances / D).
    #[serde(default = "one")]
    pub covariance: f32,
    /// Added to the variance under the square root.
    #[serde(default = "epsilon")]
    pub epsilon: f32,
}

fn twenty_five() -> f32 {
    25.0
}
fn one() -> f32 {
    1.0
}
fn epsilon() -> f32 {
    1e-4
}

impl Default for VicregOptions {
    fn default() -> Self {
        VicregOptions { invariance: twenty_five(), variance: twenty_five(), covariance: one(), epsilon: epsilon() }
    }
}

/// VICReg of `z1`, `z2` (N x D each, N >= 2):
/// `invariance * mean((z1 - z2)^2) + variance * (v(z1) + v(z2)) / 2 + covariance * (c(z1) + c(z2))`
/// with `v(z) = mean_k relu(1 - sqrt(var_k(z) + eps))` (unbiased variance)
/// and `c(z) = sum_{p != q} cov(z)_pq^2 / D`, as the authors' code computes it.
pub fn vicreg_loss(z1: Tensor<2>, z2: Tensor<2>, o: &VicregOptions) -> Tensor<1> {
    let invariance = (z1.clone() - z2.clone()).square().mean();
    let variance = (std_hinge(z1.clone(), o.epsilon) + std_hinge(z2.clone(), o.epsilon)) / 2.0;
    let covariance = off_diagonal_covariance(z1) + off_diagonal_covariance(z2);
    invariance * o.invariance as f64 + variance * o.variance as f64 + covariance * o.covariance as f64
}

/// Mean over dimensions of `relu(1 - std)`, the standard deviation over the batch.
fn std_hinge(z: Tensor<2>, epsilon: f32) -> Tensor<1> {
    let n = z.dims()[0] as f64;
    let variance = centred(z).square().sum_dim(0) / (n - 1.0); // [1, D]
    relu((variance + epsilon as f64).sqrt().neg() + 1.0).mean()
}

/// Sum of the squared off-diagonal entries of the D x D covariance, over D.
fn off_diagonal_covariance(z: Tensor<2>) -> Tensor<1> {
    let [n, d] = z.dims();
    let device = z.device();
    let c = centred(z);
    let covariance = c.clone().transpose().matmul(c) / (n as f64 - 1.0); // [D, D]
    total(covariance.square() * (identity(d, &device).neg() + 1.0)) / d as f64
}
