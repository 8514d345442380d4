//! Max-pooling of channels-last `(B, H, W, C)` images over non-overlapping
//! `KH x KW` windows (stride = kernel, no padding, floor mode), remembering
//! which input won each window so the backward pass is a scatter.

use rayon::prelude::*;

/// Sizes of one pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolShape {
    pub batch: usize,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub kh: usize,
    pub kw: usize,
}

impl PoolShape {
    pub fn h_out(&self) -> usize {
        self.height / self.kh
    }
    pub fn w_out(&self) -> usize {
        self.width / self.kw
    }
    fn image(&self) -> usize {
        self.height * self.width * self.channels
    }
    fn pooled(&self) -> usize {
        self.h_out() * self.w_out() * self.channels
    }
}

/// The pooled images and, for every output value, the index (within its
/// sample) of the input value it came from; the first maximum wins ties.
pub fn forward(x: &[f32], s: &PoolShape) -> (Vec<f32>, Vec<u32>) {
    let (mut y, mut winner) = (vec![0.0; s.batch * s.pooled()], vec![0u32; s.batch * s.pooled()]);
    let c = s.channels;
    y.par_chunks_mut(s.pooled()).zip(winner.par_chunks_mut(s.pooled())).zip(x.par_chunks(s.image())).for_each(|((y, winner), x)| {
        for oy in 0..s.h_out() {
            for ox in 0..s.w_out() {
                let out = (oy * s.w_out() + ox) * c;
                let (y, winner) = (&mut y[out..out + c], &mut winner[out..out + c]);
                let first = (oy * s.kh * s.width + ox * s.kw) * c;
                y.copy_from_slice(&x[first..first + c]);
                winner.iter_mut().enumerate().for_each(|(k, w)| *w = (first + k) as u32);
                for i in 0..s.kh {
                    for j in 0..s.kw {
                        let at = ((oy * s.kh + i) * s.width + ox * s.kw + j) * c;
                        // Branch-free, so the channel loop can vectorise.
                        for (k, ((y, w), v)) in y.iter_mut().zip(winner.iter_mut()).zip(&x[at..at + c]).enumerate() {
                            let better = *v > *y;
                            *y = if better { *v } else { *y };
                            *w = if better { (at + k) as u32 } else { *w };
                        }
                    }
                }
            }
        }
    });
    (y, winner)
}

/// The input gradient: each output gradient goes to its window's winner.
pub fn backward(dy: &[f32], winner: &[u32], s: &PoolShape) -> Vec<f32> {
    let mut dx = vec![0.0f32; s.batch * s.image()];
    dx.par_chunks_mut(s.image()).zip(dy.par_chunks(s.pooled())).zip(winner.par_chunks(s.pooled())).for_each(|((dx, dy), winner)| {
        for (g, &w) in dy.iter().zip(winner) {
            dx[w as usize] += g;
        }
    });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_windows_drops_the_remainder_and_routes_gradients_to_the_maxima() {
        // One sample, 3 x 5 x 2 channels, 2 x 2 windows: rows 0-1, columns 0-3.
        let s = PoolShape { batch: 1, height: 3, width: 5, channels: 2, kh: 2, kw: 2 };
        let x: Vec<f32> = (0..30).map(|i| ((i * 7) % 11) as f32).collect();
        let (y, winner) = forward(&x, &s);
        let at = |h: usize, w: usize, c: usize| x[(h * 5 + w) * 2 + c];
        let mut expected = Vec::new();
        for ox in 0..2 {
            for c in 0..2 {
                expected.push([at(0, 2 * ox, c), at(0, 2 * ox + 1, c), at(1, 2 * ox, c), at(1, 2 * ox + 1, c)].into_iter().fold(f32::MIN, f32::max));
            }
        }
        assert_eq!(y, expected);
        let dx = backward(&[1.0, 2.0, 3.0, 4.0], &winner, &s);
        assert_eq!(dx.iter().sum::<f32>(), 10.0);
        for (k, w) in winner.iter().enumerate() {
            assert_eq!(x[*w as usize], y[k]);
            assert_eq!(dx[*w as usize], (k + 1) as f32);
        }
    }
}
