//! Contrastive losses (docs/method.md section 6) and the non-contrastive
//! VICReg and Barlow Twins on burn tensors, used by the trainers, and [`plain`] wrappers that take row-major `&[f32]` matrices so the values
//! and gradients can be cross-checked from outside.

pub mod barlow_twins;
pub mod mining;
pub mod plain;
pub mod vicreg;

pub use barlow_twins::{barlow_twins_loss, BarlowTwinsOptions};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
pub use mining::{cmkm_masks, BlockMasks, CmkmOptions};
pub use vicreg::{vicreg_loss, VicregOptions};

/// Rows scaled to unit length.
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

/// Cosine similarities of every row of `a` with every row of `b`.
pub fn cosine_matrix(a: Tensor<2>, b: Tensor<2>) -> Tensor<2> {
    l2_normalize(a).matmul(l2_normalize(b).transpose())
}

/// Rows minus the batch mean of each dimension.
fn centred(z: Tensor<2>) -> Tensor<2> {
    let mean = z.clone().mean_dim(0);
    z - mean
}

/// The sum of all of `x`'s values. On a GPU burn sums a whole tensor with
/// atomic adds, in whatever order its workgroups finish, so a loss's last
/// bits would vary from run to run (its gradient would not, nor would the
/// weights; but a plateau schedule or early stopping compares losses): row
/// sums, then their sum, come out the same every time. The CPU keeps its
/// single sum, so its runs stay as they were.
fn total(x: Tensor<2>) -> Tensor<1> {
    if crate::device::is_host(&x.device()) {
        x.sum()
    } else {
        x.sum_dim(1).sum_dim(0).reshape([1])
    }
}

/// The D x D identity, a constant.
fn identity(d: usize, device: &Device) -> Tensor<2> {
    constant((0..d * d).map(|k| (k / d == k % d) as u8 as f32).collect(), [d, d], device)
}

fn constant(values: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, shape), &device.clone().without_autodiff())
}

/// Mean over rows of `-sum(positive * log_softmax(logits))`.
fn masked_cross_entropy(logits: Tensor<2>, positive: Tensor<2>) -> Tensor<1> {
    let rows = logits.dims()[0] as f64;
    total(log_softmax(logits, 1) * positive).neg() / rows
}

/// SimCLR's NT-Xent over two views `a`, `b` (N x D each): each of the 2N
/// views has its twin as positive and the other 2N - 2 as negatives.
pub fn nt_xent_loss(a: Tensor<2>, b: Tensor<2>, temperature: f32) -> Tensor<1> {
    let n = a.dims()[0];
    let device = a.device();
    let z = l2_normalize(Tensor::cat(vec![a, b], 0));
    let logits = z.clone().matmul(z.transpose()) / temperature as f64;
    let mut self_mask = vec![0.0; 4 * n * n];
    let mut twin = vec![0.0; 4 * n * n];
    for i in 0..2 * n {
        self_mask[i * 2 * n + i] = 1.0;
        twin[i * 2 * n + (i + n) % (2 * n)] = 1.0;
    }
    let self_mask = constant(self_mask, [2 * n, 2 * n], &device).equal_elem(1.0);
    masked_cross_entropy(logits.mask_fill(self_mask, -1e9), constant(twin, [2 * n, 2 * n], &device))
}

/// CMC's two-directional InfoNCE: rows anchored in modality 1 against all of
/// modality 2, and the reverse; positives on the diagonal.
pub fn cmc_loss(z1: Tensor<2>, z2: Tensor<2>, temperature: f32) -> Tensor<1> {
    let n = z1.dims()[0];
    let device = z1.device();
    let s = cosine_matrix(z1, z2) / temperature as f64;
    let logits = Tensor::cat(vec![s.clone(), s.transpose()], 0);
    let eye: Vec<f32> = (0..2 * n * n).map(|k| ((k / n) % n == k % n) as u8 as f32).collect();
    masked_cross_entropy(logits, constant(eye, [2 * n, n], &device))
}

/// The CMC-CMKM loss for masks from [`cmkm_masks`]: per row
/// `-log(num / (num + den))`, num over cross (and, with mining and intra
/// negatives, intra) positives, den over cross negatives plus lambda times the
/// intra negatives; row weights applied, mean over the 2N rows.
pub fn cmkm_loss(z1: Tensor<2>, z2: Tensor<2>, masks: &[BlockMasks; 2], o: &CmkmOptions) -> Tensor<1> {
    let n = z1.dims()[0];
    let device = z1.device();
    let tau = o.temperature as f64;
    let s = cosine_matrix(z1.clone(), z2.clone());
    let intra = [cosine_matrix(z1.clone(), z1), cosine_matrix(z2.clone(), z2)];
    let cross = [s.clone(), s.transpose()];
    let intra_scale = if o.intra_divide_by_temperature { 1.0 / tau } else { 1.0 };
    // Every term is scaled by exp(-shift), the largest logit possible, which
    // cancels in num / (num + den) and keeps exp() in range for small tau.
    let shift = (1.0 / tau).max(intra_scale);
    let mut rows = Vec::with_capacity(2);
    for (b, m) in masks.iter().enumerate() {
        let mask = |v: &Vec<f32>| constant(v.clone(), [n, n], &device);
        let cross_exp = (cross[b].clone() / tau - shift).exp();
        let intra_exp = (intra[b].clone() * intra_scale - shift).exp();
        let num = (cross_exp.clone() * mask(&m.cross_positive)).sum_dim(1) + (intra_exp.clone() * mask(&m.intra_positive)).sum_dim(1);
        let den = (cross_exp * mask(&m.cross_negative)).sum_dim(1) + (intra_exp * mask(&m.intra_negative)).sum_dim(1) * o.intra_lambda as f64;
        let row_loss = (num.clone() + den).log() - num.log();
        let weight = Tensor::<1>::from_data(TensorData::new(m.row_weight.clone(), [n]), &device.clone().without_autodiff());
        rows.push(row_loss.squeeze_dim::<1>(1) * weight);
    }
    Tensor::cat(rows, 0).mean()
}

/// Mean cosine similarity of the cross-modal positive and negative pairs
/// (logged per epoch to watch what mining does).
pub fn mean_pair_similarity(z1: Tensor<2>, z2: Tensor<2>, masks: &[BlockMasks; 2]) -> (f32, f32) {
    let s: Vec<f32> = cosine_matrix(z1.detach(), z2.detach()).try_into_vec_as::<f32>().expect("an f32 similarity matrix reads back as f32");
    let m = &masks[0];
    let mean = |mask: &[f32]| {
        let total: f32 = mask.iter().sum();
        s.iter().zip(mask).map(|(a, b)| a * b).sum::<f32>() / total.max(1.0)
    };
    (mean(&m.cross_positive), mean(&m.cross_negative))
}
