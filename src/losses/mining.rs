//! Cross-modal knowledge mining (docs/method.md section 6), on plain matrices: which
//! pairs of a batch count as positives and negatives in each block of the
//! CMC-CMKM loss, and how much each row weighs. Block 0 holds the rows
//! anchored in modality 1 (against modality 2), block 1 the rows anchored in
//! modality 2 (against modality 1).

use serde::{Deserialize, Serialize};

/// Every switch of the CMC-CMKM loss. With all of them off it is the CMC loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CmkmOptions {
    /// Softmax temperature tau.
    pub temperature: f32,
    /// Positive mining: the K nearest neighbours (self excluded) under the
    /// other modality's frozen-encoder similarities become positives; 0 = off.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mining_k: usize,
    /// Use the union of both modalities' neighbours for both blocks.
    #[serde(default, skip_serializing_if = "is_false")]
    pub symmetric_mining: bool,
    /// Weight lambda of the intra-modality negatives; 0 = off.
    #[serde(default, skip_serializing_if = "is_zero_f32")]
    pub intra_lambda: f32,
    /// Divide intra-modality similarities by tau (the reference does not).
    #[serde(default, skip_serializing_if = "is_false")]
    pub intra_divide_by_temperature: bool,
    /// Negative pruning: drop the cross-modal negatives whose connectivity
    /// in the other modality exceeds gamma, and the intra-modality negatives
    /// whose connectivity in the anchor's own modality does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_gamma: Option<f32>,
    /// Loss-term weighting: row weight exp(scale * own connectivity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_scale: Option<f32>,
}

// Switches left off are not written, so a SimCLR or CMC configuration
// serialises to its temperature alone (and reads back as such).
fn is_zero(v: &usize) -> bool {
    *v == 0
}
fn is_zero_f32(v: &f32) -> bool {
    *v == 0.0
}
fn is_false(v: &bool) -> bool {
    !*v
}

impl CmkmOptions {
    /// Plain CMC with temperature `tau`: every CMKM switch off.
    pub fn cmc(temperature: f32) -> Self {
        CmkmOptions {
            temperature,
            mining_k: 0,
            symmetric_mining: false,
            intra_lambda: 0.0,
            intra_divide_by_temperature: false,
            prune_gamma: None,
            weight_scale: None,
        }
    }
}

/// 0/1 masks (row-major N x N) and row weights of one block.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockMasks {
    pub cross_positive: Vec<f32>,
    pub cross_negative: Vec<f32>,
    pub intra_positive: Vec<f32>,
    pub intra_negative: Vec<f32>,
    pub row_weight: Vec<f32>,
}

/// The `k` most similar samples to each row of the N x N similarity matrix
/// `p`, self excluded, most similar first; ties go to the lower index.
pub fn nearest_neighbours(p: &[f32], n: usize, k: usize) -> Vec<Vec<usize>> {
    (0..n)
        .map(|i| {
            let row = &p[i * n..(i + 1) * n];
            let mut others: Vec<usize> = (0..n).filter(|&j| j != i).collect();
            others.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
            others.truncate(k);
            others
        })
        .collect()
}

/// Column means of an N x N matrix: each sample's connectivity.
pub fn connectivity(p: &[f32], n: usize) -> Vec<f32> {
    (0..n).map(|j| (0..n).map(|i| p[i * n + j]).sum::<f32>() / n as f32).collect()
}

/// Masks for both blocks, from the frozen-encoder similarity matrices `p1`
/// (modality 1) and `p2` (modality 2) of the same batch.
pub fn cmkm_masks(p1: &[f32], p2: &[f32], n: usize, o: &CmkmOptions) -> [BlockMasks; 2] {
    let nn1 = nearest_neighbours(p1, n, o.mining_k);
    let nn2 = nearest_neighbours(p2, n, o.mining_k);
    let union: Vec<Vec<usize>> = nn1
        .iter()
        .zip(&nn2)
        .map(|(a, b)| {
            let mut u = a.clone();
            u.extend(b.iter().filter(|j| !a.contains(j)));
            u
        })
        .collect();
    let (c1, c2) = (connectivity(p1, n), connectivity(p2, n));
    // Block 0: anchor in modality 1; its cross positives come from modality
    // 2's neighbours, its intra positives from its own modality's.
    let block = |cross_nn: &[Vec<usize>], intra_nn: &[Vec<usize>], other_conn: &[f32], own_conn: &[f32]| {
        let (cross_nn, intra_nn) = if o.symmetric_mining { (&union[..], &union[..]) } else { (cross_nn, intra_nn) };
        let mut m = BlockMasks {
            cross_positive: vec![0.0; n * n],
            cross_negative: vec![0.0; n * n],
            intra_positive: vec![0.0; n * n],
            intra_negative: vec![0.0; n * n],
            row_weight: vec![1.0; n],
        };
        #[allow(clippy::needless_range_loop)] // i, j index four matrices at once
        for i in 0..n {
            for j in 0..n {
                let cross_pos = j == i || cross_nn[i].contains(&j);
                let pruned = o.prune_gamma.is_some_and(|g| other_conn[j] > g);
                m.cross_positive[i * n + j] = cross_pos as u8 as f32;
                m.cross_negative[i * n + j] = (!cross_pos && !pruned) as u8 as f32;
                if o.intra_lambda > 0.0 && j != i {
                    // Pruning reaches the intra negatives too, by the
                    // anchor's own modality's connectivity, as the reference
                    // code does (docs/method.md section 6).
                    let intra_pos = intra_nn[i].contains(&j);
                    let own_pruned = o.prune_gamma.is_some_and(|g| own_conn[j] > g);
                    m.intra_positive[i * n + j] = intra_pos as u8 as f32;
                    m.intra_negative[i * n + j] = (!intra_pos && !own_pruned) as u8 as f32;
                }
            }
            if let Some(scale) = o.weight_scale {
                m.row_weight[i] = (scale * own_conn[i]).exp();
            }
        }
        m
    };
    [block(&nn2, &nn1, &c2, &c1), block(&nn1, &nn2, &c1, &c2)]
}

#[cfg(test)]
mod tests {
    use super::*;

    // Similarities of 4 samples: 0~1 and 2~3 are close.
    const P: [f32; 16] = [1.0, 0.9, 0.1, 0.2, 0.9, 1.0, 0.3, 0.1, 0.1, 0.3, 1.0, 0.8, 0.2, 0.1, 0.8, 1.0];

    #[test]
    fn neighbours_exclude_self_and_break_ties_low() {
        assert_eq!(nearest_neighbours(&P, 4, 1), vec![vec![1], vec![0], vec![3], vec![2]]);
        assert_eq!(nearest_neighbours(&P, 4, 2), vec![vec![1, 3], vec![0, 2], vec![3, 1], vec![2, 0]]);
        let ties = [1.0, 0.5, 0.5, 0.5, 1.0, 0.5, 0.5, 0.5, 1.0];
        assert_eq!(nearest_neighbours(&ties, 3, 1), vec![vec![1], vec![0], vec![0]]);
    }

    #[test]
    fn all_switches_off_gives_cmc_masks() {
        let [b0, b1] = cmkm_masks(&P, &P, 4, &CmkmOptions::cmc(0.1));
        for b in [b0, b1] {
            for i in 0..4 {
                for j in 0..4 {
                    assert_eq!(b.cross_positive[i * 4 + j], (i == j) as u8 as f32);
                    assert_eq!(b.cross_negative[i * 4 + j], (i != j) as u8 as f32);
                }
            }
            assert!(b.intra_positive.iter().chain(&b.intra_negative).all(|&v| v == 0.0));
            assert!(b.row_weight.iter().all(|&w| w == 1.0));
        }
    }

    #[test]
    fn mining_borrows_the_other_modality_and_prunes_by_connectivity() {
        // Modality 2 pairs 0~2 and 1~3 instead.
        let p2 = [1.0, 0.1, 0.9, 0.2, 0.1, 1.0, 0.3, 0.8, 0.9, 0.3, 1.0, 0.1, 0.2, 0.8, 0.1, 1.0];
        let o = CmkmOptions { mining_k: 1, intra_lambda: 1.0, ..CmkmOptions::cmc(0.1) };
        let [b0, b1] = cmkm_masks(&P, &p2, 4, &o);
        // Row 0 of block 0 (anchor in modality 1): cross positives 0 and 2 (from P2), intra positive 1 (from P1).
        assert_eq!(&b0.cross_positive[0..4], &[1.0, 0.0, 1.0, 0.0]);
        assert_eq!(&b0.cross_negative[0..4], &[0.0, 1.0, 0.0, 1.0]);
        assert_eq!(&b0.intra_positive[0..4], &[0.0, 1.0, 0.0, 0.0]);
        assert_eq!(&b0.intra_negative[0..4], &[0.0, 0.0, 1.0, 1.0]);
        // Block 1 the other way round.
        assert_eq!(&b1.cross_positive[0..4], &[1.0, 1.0, 0.0, 0.0]);
        assert_eq!(&b1.intra_positive[0..4], &[0.0, 0.0, 1.0, 0.0]);
        // Symmetric mining: union of both.
        let s = CmkmOptions { symmetric_mining: true, ..o.clone() };
        let [s0, _] = cmkm_masks(&P, &p2, 4, &s);
        assert_eq!(&s0.cross_positive[0..4], &[1.0, 1.0, 1.0, 0.0]);
        assert_eq!(&s0.intra_positive[0..4], &[0.0, 1.0, 1.0, 0.0]);
        // Pruning drops negatives whose connectivity in the other modality exceeds gamma.
        let c2 = connectivity(&p2, 4); // [0.55, 0.55, 0.575, 0.525]
        assert!((c2[2] - 0.575).abs() < 1e-6);
        let pr = CmkmOptions { prune_gamma: Some(0.56), ..CmkmOptions::cmc(0.1) };
        let [p0, _] = cmkm_masks(&P, &p2, 4, &pr);
        assert_eq!(&p0.cross_negative[4..8], &[1.0, 0.0, 0.0, 1.0]);
        // With intra negatives, pruning also drops intra negatives by the
        // anchor's own modality: c1 = [0.55, 0.575, 0.55, 0.525] (column
        // means of P) prunes sample 1 from block 0's intra negatives, c2
        // prunes sample 2 from block 1's; the cross negatives go by the
        // other modality (block 0 loses 2, block 1 loses 1). Row 3, no mining:
        let pi = CmkmOptions { prune_gamma: Some(0.56), intra_lambda: 1.0, ..CmkmOptions::cmc(0.1) };
        let [q0, q1] = cmkm_masks(&P, &p2, 4, &pi);
        assert_eq!(&q0.intra_negative[12..16], &[1.0, 0.0, 1.0, 0.0]);
        assert_eq!(&q0.cross_negative[12..16], &[1.0, 1.0, 0.0, 0.0]);
        assert_eq!(&q1.intra_negative[12..16], &[1.0, 1.0, 0.0, 0.0]);
        assert_eq!(&q1.cross_negative[12..16], &[1.0, 0.0, 1.0, 0.0]);
        // With K = 1 mining, row 0 of block 0: intra positive 1 stays a
        // positive although pruned; intra negatives 2 and 3 stay (c1 0.55, 0.525).
        let pm = CmkmOptions { mining_k: 1, ..pi.clone() };
        let [m0, m1] = cmkm_masks(&P, &p2, 4, &pm);
        assert_eq!(&m0.intra_positive[0..4], &[0.0, 1.0, 0.0, 0.0]);
        assert_eq!(&m0.intra_negative[0..4], &[0.0, 0.0, 1.0, 1.0]);
        // Row 1 of block 1 (anchor in modality 2): mined intra positive 3
        // (P2's nearest to 1), sample 2 pruned (c2 0.575), sample 0 kept.
        assert_eq!(&m1.intra_positive[4..8], &[0.0, 0.0, 0.0, 1.0]);
        assert_eq!(&m1.intra_negative[4..8], &[1.0, 0.0, 0.0, 0.0]);
        // Weighting: exp(scale * own connectivity).
        let w = CmkmOptions { weight_scale: Some(2.0), ..CmkmOptions::cmc(0.1) };
        let [w0, w1] = cmkm_masks(&P, &p2, 4, &w);
        assert!((w0.row_weight[0] - (2.0f32 * 0.55).exp()).abs() < 1e-5);
        assert!((w1.row_weight[2] - (2.0f32 * 0.575).exp()).abs() < 1e-5);
    }
}
