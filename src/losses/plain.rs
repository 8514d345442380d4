//! The losses on plain row-major `&[f32]` matrices, with gradients, so that
//! anyone can cross-check them (the tests compare them with values worked
//! out independently and with finite differences).

use super::{barlow_twins_loss, cmc_loss, cmkm_loss, cmkm_masks, nt_xent_loss, vicreg_loss, BarlowTwinsOptions, CmkmOptions, VicregOptions};
use anyhow::{bail, Result};
use burn::prelude::*;

/// A loss value and its gradient with respect to each input matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct LossAndGrad {
    pub loss: f32,
    pub grads: Vec<Vec<f32>>,
}

fn evaluate(inputs: &[&[f32]], n: usize, d: usize, f: impl Fn(Vec<Tensor<2>>) -> Tensor<1>) -> Result<LossAndGrad> {
    for (k, x) in inputs.iter().enumerate() {
        if x.len() != n * d {
            bail!("input {k} has {} values, expected {n} x {d}", x.len());
        }
    }
    if n < 2 {
        bail!("these losses need at least 2 samples, got {n}");
    }
    let device = Device::flex().autodiff();
    let tensors: Vec<Tensor<2>> = inputs.iter().map(|x| Tensor::from_data(TensorData::new(x.to_vec(), [n, d]), &device).require_grad()).collect();
    let loss = f(tensors.clone());
    let value = loss.clone().into_scalar::<f32>();
    let grads = loss.backward();
    let grads = tensors
        .iter()
        .map(|t| match t.grad(&grads) {
            Some(g) => g.try_into_vec_as::<f32>().map_err(|e| anyhow::anyhow!("cannot read a gradient back: {e:?}")),
            None => Ok(vec![0.0; n * d]), // the input does not reach the loss
        })
        .collect::<Result<_>>()?;
    Ok(LossAndGrad { loss: value, grads })
}

/// NT-Xent of two views (`a`, `b`: N x D).
pub fn nt_xent(a: &[f32], b: &[f32], n: usize, d: usize, temperature: f32) -> Result<LossAndGrad> {
    evaluate(&[a, b], n, d, |mut t| {
        let b = t.pop().expect("two inputs");
        nt_xent_loss(t.pop().expect("two inputs"), b, temperature)
    })
}

/// CMC loss of two modalities' projections (N x D each).
pub fn cmc(z1: &[f32], z2: &[f32], n: usize, d: usize, temperature: f32) -> Result<LossAndGrad> {
    evaluate(&[z1, z2], n, d, |mut t| {
        let z2 = t.pop().expect("two inputs");
        cmc_loss(t.pop().expect("two inputs"), z2, temperature)
    })
}

/// CMC-CMKM loss; `p1`, `p2` are the N x N frozen-encoder similarity matrices.
pub fn cmkm(z1: &[f32], z2: &[f32], p1: &[f32], p2: &[f32], n: usize, d: usize, o: &CmkmOptions) -> Result<LossAndGrad> {
    if p1.len() != n * n || p2.len() != n * n {
        bail!("similarity matrices must be {n} x {n}");
    }
    let masks = cmkm_masks(p1, p2, n, o);
    evaluate(&[z1, z2], n, d, |mut t| {
        let z2 = t.pop().expect("two inputs");
        cmkm_loss(t.pop().expect("two inputs"), z2, &masks, o)
    })
}

/// VICReg of two embeddings of the same samples (N x D each).
pub fn vicreg(z1: &[f32], z2: &[f32], n: usize, d: usize, o: &VicregOptions) -> Result<LossAndGrad> {
    evaluate(&[z1, z2], n, d, |mut t| {
        let z2 = t.pop().expect("two inputs");
        vicreg_loss(t.pop().expect("two inputs"), z2, o)
    })
}

/// Barlow Twins of two embeddings of the same samples (N x D each).
pub fn barlow_twins(z1: &[f32], z2: &[f32], n: usize, d: usize, o: &BarlowTwinsOptions) -> Result<LossAndGrad> {
    evaluate(&[z1, z2], n, d, |mut t| {
        let z2 = t.pop().expect("two inputs");
        barlow_twins_loss(t.pop().expect("two inputs"), z2, o)
    })
}
