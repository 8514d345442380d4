//! The contrastive losses against values worked out independently, CMKM with
//! every switch off against CMC, and autodiff gradients against finite
//! differences.
//!
//! The reference values come from this short, loop-based NumPy script, written
//! from docs/method.md section 6 and independent of the tensor code under test:
//!
//! ```python
//! import numpy as np
//! z1 = np.array([[1.0, 0.2, -0.3], [0.1, 0.9, 0.4], [-0.5, 0.3, 0.8], [0.7, -0.6, 0.2]])
//! z2 = np.array([[0.9, 0.1, -0.2], [0.3, 0.8, 0.1], [-0.2, 0.4, 0.9], [0.5, -0.8, 0.4]])
//! p1 = np.array([[1, .9, .1, .2], [.9, 1, .3, .1], [.1, .3, 1, .8], [.2, .1, .8, 1]])
//! p2 = np.array([[1, .1, .9, .2], [.1, 1, .3, .8], [.9, .3, 1, .1], [.2, .8, .1, 1]])
//! def cos(a, b):
//!     a = a / np.linalg.norm(a, axis=1, keepdims=True); b = b / np.linalg.norm(b, axis=1, keepdims=True)
//!     return a @ b.T
//! def knn(p, i, k):
//!     order = sorted([j for j in range(len(p)) if j != i], key=lambda j: (-p[i][j], j))
//!     return order[:k]
//! def nt_xent(a, b, tau):
//!     z = np.vstack([a, b]); n = len(a); s = cos(z, z) / tau; total = 0
//!     for i in range(2 * n):
//!         pos = (i + n) % (2 * n)
//!         den = sum(np.exp(s[i, j]) for j in range(2 * n) if j != i)
//!         total += -np.log(np.exp(s[i, pos]) / den)
//!     return total / (2 * n)
//! def cmkm(z1, z2, tau, k, lam, gamma=None):
//!     n = len(z1); s = cos(z1, z2); i1 = cos(z1, z1); i2 = cos(z2, z2); total = 0
//!     c1 = p1.mean(axis=0); c2 = p2.mean(axis=0)   # connectivity: column means
//!     for block in range(2):
//!         cross = s if block == 0 else s.T
//!         intra = i1 if block == 0 else i2
//!         p_cross = p2 if block == 0 else p1   # the other modality's neighbours
//!         p_intra = p1 if block == 0 else p2   # the anchor's own modality's neighbours
//!         c_other = c2 if block == 0 else c1   # prunes the cross-modal negatives
//!         c_own = c1 if block == 0 else c2     # prunes the intra-modality negatives
//!         kept = lambda c, j: gamma is None or c[j] <= gamma
//!         for i in range(n):
//!             pos = [i] + (knn(p_cross, i, k) if k else [])
//!             ipos = knn(p_intra, i, k) if (k and lam) else []
//!             num = sum(np.exp(cross[i, j] / tau) for j in pos) + sum(np.exp(intra[i, j]) for j in ipos)
//!             den = sum(np.exp(cross[i, j] / tau) for j in range(n) if j not in pos and kept(c_other, j))
//!             if lam:
//!                 den += lam * sum(np.exp(intra[i, j]) for j in range(n) if j != i and j not in ipos and kept(c_own, j))
//!             total += -np.log(num / (num + den))
//!     return total / (2 * n)
//! print("nt_xent(z1, z2, 0.5) =", repr(nt_xent(z1, z2, 0.5)))
//! print("cmc(z1, z2, 0.1) =", repr(cmkm(z1, z2, 0.1, 0, 0)))
//! print("cmkm(z1, z2, 0.1, K=1, lambda=1) =", repr(cmkm(z1, z2, 0.1, 1, 1.0)))
//! print("cmkm(z1, z2, 0.1, K=0, lambda=1) =", repr(cmkm(z1, z2, 0.1, 0, 1.0)))
//! for k, lam in [(0, 1.0), (1, 1.0), (1, 0.0)]:
//!     print(f"cmkm(z1, z2, 0.1, K={k}, lambda={lam}, gamma=0.56) =", repr(cmkm(z1, z2, 0.1, k, lam, 0.56)))
//! ```
//! which printed nt_xent 0.8083907328919336, cmc 0.03247710195891966,
//! cmkm (K=1, lambda=1) 0.03135180904797112, cmkm (K=0, lambda=1) 0.03271434018818197,
//! and with pruning at gamma 0.56 (c1 = [0.55, 0.575, 0.55, 0.525], c2 =
//! [0.55, 0.55, 0.575, 0.525]): (K=0, lambda=1) 0.009281100486805612,
//! (K=1, lambda=1) 0.007947398223746986, (K=1, lambda=0) 0.007812582884120806.

use cmkm::losses::plain::{barlow_twins, cmc, cmkm, nt_xent, vicreg};
use cmkm::losses::{BarlowTwinsOptions, CmkmOptions, VicregOptions};

const Z1: [f32; 12] = [1.0, 0.2, -0.3, 0.1, 0.9, 0.4, -0.5, 0.3, 0.8, 0.7, -0.6, 0.2];
const Z2: [f32; 12] = [0.9, 0.1, -0.2, 0.3, 0.8, 0.1, -0.2, 0.4, 0.9, 0.5, -0.8, 0.4];
const P1: [f32; 16] = [1.0, 0.9, 0.1, 0.2, 0.9, 1.0, 0.3, 0.1, 0.1, 0.3, 1.0, 0.8, 0.2, 0.1, 0.8, 1.0];
const P2: [f32; 16] = [1.0, 0.1, 0.9, 0.2, 0.1, 1.0, 0.3, 0.8, 0.9, 0.3, 1.0, 0.1, 0.2, 0.8, 0.1, 1.0];

fn close(a: f32, b: f64, rel: f64) {
    assert!(((a as f64) - b).abs() <= rel * b.abs().max(1e-6), "{a} vs {b}");
}

fn cmkm_opts(k: usize, lambda: f32) -> CmkmOptions {
    CmkmOptions { mining_k: k, intra_lambda: lambda, ..CmkmOptions::cmc(0.1) }
}

#[test]
fn losses_match_independent_values() {
    close(nt_xent(&Z1, &Z2, 4, 3, 0.5).unwrap().loss, 0.8083907328919336, 1e-5);
    close(cmc(&Z1, &Z2, 4, 3, 0.1).unwrap().loss, 0.03247710195891966, 1e-4);
    close(cmkm(&Z1, &Z2, &P1, &P2, 4, 3, &cmkm_opts(1, 1.0)).unwrap().loss, 0.03135180904797112, 1e-4);
    close(cmkm(&Z1, &Z2, &P1, &P2, 4, 3, &cmkm_opts(0, 1.0)).unwrap().loss, 0.03271434018818197, 1e-4);
}

#[test]
fn pruning_removes_intra_and_cross_negatives_as_the_reference_does() {
    let pruned = |k, lambda| CmkmOptions { prune_gamma: Some(0.56), ..cmkm_opts(k, lambda) };
    close(cmkm(&Z1, &Z2, &P1, &P2, 4, 3, &pruned(0, 1.0)).unwrap().loss, 0.009281100486805612, 1e-4);
    close(cmkm(&Z1, &Z2, &P1, &P2, 4, 3, &pruned(1, 1.0)).unwrap().loss, 0.007947398223746986, 1e-4);
    close(cmkm(&Z1, &Z2, &P1, &P2, 4, 3, &pruned(1, 0.0)).unwrap().loss, 0.007812582884120806, 1e-4);
}

#[test]
fn cmc_by_hand() {
    // Two orthogonal pairs, tau = 1: every row is -log(e / (e + 1)).
    let z = [1.0, 0.0, 0.0, 1.0];
    close(cmc(&z, &z, 2, 2, 1.0).unwrap().loss, (1.0 + (-1.0f64).exp()).ln(), 1e-6);
}

#[test]
fn cmkm_with_every_switch_off_is_cmc() {
    let n = 16;
    let d = 8;
    let val = |k: usize, s: f32| ((k as f32 * 0.618 + s).sin() * 1.7).tan().clamp(-3.0, 3.0);
    let z1: Vec<f32> = (0..n * d).map(|k| val(k, 0.1)).collect();
    let z2: Vec<f32> = (0..n * d).map(|k| val(k, 2.3)).collect();
    let p: Vec<f32> = (0..n * n).map(|k| val(k, 4.0) / 3.0).collect();
    for tau in [0.05, 0.1, 0.5] {
        let a = cmc(&z1, &z2, n, d, tau).unwrap();
        let b = cmkm(&z1, &z2, &p, &p, n, d, &CmkmOptions::cmc(tau)).unwrap();
        close(b.loss, a.loss as f64, 1e-5);
        for (ga, gb) in a.grads.iter().flatten().zip(b.grads.iter().flatten()) {
            assert!((ga - gb).abs() < 1e-5, "{ga} vs {gb}");
        }
    }
}

/// Central differences of `f` in each coordinate of `x`, compared with `grad`.
fn check_gradient(x: &[f32], grad: &[f32], f: impl Fn(&[f32]) -> f32) {
    let eps = 1e-2;
    for k in 0..x.len() {
        let mut up = x.to_vec();
        let mut down = x.to_vec();
        up[k] += eps;
        down[k] -= eps;
        let numeric = (f(&up) - f(&down)) / (2.0 * eps);
        assert!((numeric - grad[k]).abs() < 2e-3 + 2e-2 * numeric.abs(), "coordinate {k}: autodiff {} vs finite difference {numeric}", grad[k]);
    }
}

#[test]
fn gradients_agree_with_finite_differences() {
    let g = nt_xent(&Z1, &Z2, 4, 3, 0.5).unwrap();
    check_gradient(&Z1, &g.grads[0], |x| nt_xent(x, &Z2, 4, 3, 0.5).unwrap().loss);
    check_gradient(&Z2, &g.grads[1], |x| nt_xent(&Z1, x, 4, 3, 0.5).unwrap().loss);
    let g = cmc(&Z1, &Z2, 4, 3, 0.5).unwrap();
    check_gradient(&Z1, &g.grads[0], |x| cmc(x, &Z2, 4, 3, 0.5).unwrap().loss);
    let full = CmkmOptions {
        temperature: 0.5,
        mining_k: 1,
        symmetric_mining: true,
        intra_lambda: 0.7,
        intra_divide_by_temperature: true,
        prune_gamma: Some(0.56),
        weight_scale: Some(1.5),
    };
    let g = cmkm(&Z1, &Z2, &P1, &P2, 4, 3, &full).unwrap();
    check_gradient(&Z1, &g.grads[0], |x| cmkm(x, &Z2, &P1, &P2, 4, 3, &full).unwrap().loss);
    check_gradient(&Z2, &g.grads[1], |x| cmkm(&Z1, x, &P1, &P2, 4, 3, &full).unwrap().loss);
}

#[test]
fn switches_change_the_loss_and_bad_shapes_are_errors() {
    let base = cmkm(&Z1, &Z2, &P1, &P2, 4, 3, &cmkm_opts(1, 1.0)).unwrap().loss;
    let divided = CmkmOptions { intra_divide_by_temperature: true, ..cmkm_opts(1, 1.0) };
    assert!(cmkm(&Z1, &Z2, &P1, &P2, 4, 3, &divided).unwrap().loss != base);
    let sym = CmkmOptions { symmetric_mining: true, ..cmkm_opts(1, 1.0) };
    assert!(cmkm(&Z1, &Z2, &P1, &P2, 4, 3, &sym).unwrap().loss != base);
    assert!(cmc(&Z1, &Z2, 4, 4, 0.1).is_err());
    assert!(cmkm(&Z1, &Z2, &P1[..9], &P2, 4, 3, &cmkm_opts(1, 1.0)).is_err());
}

// VICReg and Barlow Twins against this loop-based NumPy statement, written
// from the papers (VICReg: Bardes et al. 2022, eq. 1-6 with the authors'
// unbiased variance and eps 1e-4; Barlow Twins: Zbontar et al. 2021, eq. 1
// with the authors' affine-free batch norm, biased variance + 1e-5):
//
// ```python
// import numpy as np
// z1 = np.array([[1.0, 0.2, -0.3], [0.1, 0.9, 0.4], [-0.5, 0.3, 0.8], [0.7, -0.6, 0.2]])
// z2 = np.array([[0.9, 0.1, -0.2], [0.3, 0.8, 0.1], [-0.2, 0.4, 0.9], [0.5, -0.8, 0.4]])
// def vicreg(a, b, inv=25.0, var=25.0, cov=1.0, eps=1e-4):
//     n, d = a.shape
//     invariance = sum((a[i, k] - b[i, k]) ** 2 for i in range(n) for k in range(d)) / (n * d)
//     def std_term(x):
//         total = 0.0
//         for k in range(d):
//             m = sum(x[i, k] for i in range(n)) / n
//             v = sum((x[i, k] - m) ** 2 for i in range(n)) / (n - 1)
//             total += max(0.0, 1.0 - np.sqrt(v + eps))
//         return total / d
//     def cov_term(x):
//         m = [sum(x[i, k] for i in range(n)) / n for k in range(d)]
//         total = 0.0
//         for p in range(d):
//             for q in range(d):
//                 if p != q:
//                     c = sum((x[i, p] - m[p]) * (x[i, q] - m[q]) for i in range(n)) / (n - 1)
//                     total += c * c
//         return total / d
//     return inv * invariance + var * (std_term(a) + std_term(b)) / 2 + cov * (cov_term(a) + cov_term(b))
// def barlow(a, b, lam=5e-3, eps=1e-5):
//     n, d = a.shape
//     def norm(x):
//         out = np.zeros_like(x)
//         for k in range(d):
//             m = sum(x[i, k] for i in range(n)) / n
//             v = sum((x[i, k] - m) ** 2 for i in range(n)) / n
//             for i in range(n):
//                 out[i, k] = (x[i, k] - m) / np.sqrt(v + eps)
//         return out
//     an, bn = norm(a), norm(b)
//     total = 0.0
//     for p in range(d):
//         for q in range(d):
//             c = sum(an[i, p] * bn[i, q] for i in range(n)) / n
//             total += (1 - c) ** 2 if p == q else lam * c * c
//     return total
// print("vicreg(z1, z2) =", repr(vicreg(z1, z2)))
// print("vicreg(z1, z2, 1, 2, 3) =", repr(vicreg(z1, z2, 1.0, 2.0, 3.0)))
// print("vicreg(2 z1, z2) =", repr(vicreg(2 * z1, z2)))
// print("barlow(z1, z2) =", repr(barlow(z1, z2)))
// print("barlow(z1, z2, 0.5) =", repr(barlow(z1, z2, 0.5)))
// ```
// which printed vicreg 12.00675382113417, vicreg with weights 1, 2, 3
// 1.263420639024067, vicreg(2 z1, z2) 18.124559215380106, barlow
// 0.02442795060213604, barlow with lambda 0.5 1.0802970736010231.

fn vicreg_weights(invariance: f32, variance: f32, covariance: f32) -> VicregOptions {
    VicregOptions { invariance, variance, covariance, ..VicregOptions::default() }
}

#[test]
fn vicreg_and_barlow_twins_match_independent_values() {
    let doubled: Vec<f32> = Z1.iter().map(|v| 2.0 * v).collect();
    close(vicreg(&Z1, &Z2, 4, 3, &VicregOptions::default()).unwrap().loss, 12.00675382113417, 1e-5);
    close(vicreg(&Z1, &Z2, 4, 3, &vicreg_weights(1.0, 2.0, 3.0)).unwrap().loss, 1.263420639024067, 1e-5);
    close(vicreg(&doubled, &Z2, 4, 3, &VicregOptions::default()).unwrap().loss, 18.124559215380106, 1e-5);
    close(barlow_twins(&Z1, &Z2, 4, 3, &BarlowTwinsOptions::default()).unwrap().loss, 0.02442795060213604, 1e-4);
    close(barlow_twins(&Z1, &Z2, 4, 3, &BarlowTwinsOptions { lambda: 0.5 }).unwrap().loss, 1.0802970736010231, 1e-4);
}

#[test]
fn vicreg_and_barlow_twins_by_hand() {
    // Identical, already decorrelated views with unit spread: nothing to pay.
    // Columns (1, -1, 1, -1) and (1, 1, -1, -1) have mean 0, are orthogonal
    // and have biased variance 1, so C = I for Barlow Twins (up to its eps);
    // VICReg sees unbiased variance 4/3 > 1, no invariance and no covariance.
    let z = [1.0, 1.0, -1.0, 1.0, 1.0, -1.0, -1.0, -1.0];
    assert!(vicreg(&z, &z, 4, 2, &VicregOptions::default()).unwrap().loss.abs() < 1e-6);
    assert!(barlow_twins(&z, &z, 4, 2, &BarlowTwinsOptions::default()).unwrap().loss.abs() < 1e-4);
    // Collapsed views (every sample the same): VICReg's variance term is
    // 25 * (1 - sqrt(eps)) and Barlow Twins' diagonal pays 1 per dimension.
    let flat = [0.5f32; 8];
    close(vicreg(&flat, &flat, 4, 2, &VicregOptions::default()).unwrap().loss, 25.0 * (1.0 - 1e-4f64.sqrt()), 1e-5);
    close(barlow_twins(&flat, &flat, 4, 2, &BarlowTwinsOptions::default()).unwrap().loss, 2.0, 1e-5);
    assert!(vicreg(&z, &z, 1, 8, &VicregOptions::default()).is_err(), "one sample has no variance");
}

#[test]
fn vicreg_and_barlow_twins_gradients_agree_with_finite_differences() {
    let weights = vicreg_weights(1.0, 2.0, 3.0);
    for o in [VicregOptions::default(), weights] {
        let g = vicreg(&Z1, &Z2, 4, 3, &o).unwrap();
        check_gradient(&Z1, &g.grads[0], |x| vicreg(x, &Z2, 4, 3, &o).unwrap().loss);
        check_gradient(&Z2, &g.grads[1], |x| vicreg(&Z1, x, 4, 3, &o).unwrap().loss);
    }
    let o = BarlowTwinsOptions { lambda: 0.5 };
    let g = barlow_twins(&Z1, &Z2, 4, 3, &o).unwrap();
    check_gradient(&Z1, &g.grads[0], |x| barlow_twins(x, &Z2, 4, 3, &o).unwrap().loss);
    check_gradient(&Z2, &g.grads[1], |x| barlow_twins(&Z1, x, 4, 3, &o).unwrap().loss);
}
