//! `cargo bench -p cmkm-kernels --bench slice_kernels`: the flex kernels on plain slices,
//! at the CMC step's shapes (batch 64), without burn around them.
//! Timings only. Each convolution's two lowerings run interleaved, 21
//! pairs after a warm-up, with both medians and the median of the paired
//! ratios, so a regression or a gain shows despite a noisy machine; the
//! other lines give the median and minimum of 15 runs after a warm-up.
//! `cargo bench -p cmkm-kernels --bench slice_kernels -- TEXT` runs only the lines whose
//! name contains TEXT.

use cmkm_kernels::conv::{self, ConvShape, Lowering};
use cmkm_kernels::mask::Mask;
use cmkm_kernels::{direct, feed_forward, norm, pool, sparse, winograd};
use std::time::Instant;

/// Whether the line `name` runs: every line, or those naming the first
/// argument that is not a flag (cargo passes `--bench`).
fn selected(name: &str) -> bool {
    std::env::args().skip(1).find(|a| !a.starts_with('-')).is_none_or(|only| name.contains(&only))
}

fn time(name: &str, mut f: impl FnMut()) {
    if !selected(name) {
        return;
    }
    f();
    let mut ms: Vec<f64> = (0..15)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    println!("{name:36} median {:7.2} ms   min {:7.2} ms", ms[7], ms[0]);
}

/// Times `a` and `b` alternately, 21 runs each after a warm-up, and prints
/// their medians and the median of the paired ratios `b / a`: the VM's
/// speed drifts by tens of percent within seconds, so only interleaved
/// runs compare two ways of doing the same work.
fn compare(name: &str, (a_name, mut a): (&str, impl FnMut()), (b_name, mut b): (&str, impl FnMut())) {
    if !selected(name) {
        return;
    }
    let once = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        f();
        start.elapsed().as_secs_f64() * 1e3
    };
    once(&mut a);
    once(&mut b);
    let runs: Vec<(f64, f64)> = (0..21).map(|_| (once(&mut a), once(&mut b))).collect();
    let median = |f: &dyn Fn(&(f64, f64)) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (a_ms, b_ms, ratio) = (median(&|r| r.0), median(&|r| r.1), median(&|r| r.1 / r.0));
    println!("{name:36} {a_name} {a_ms:7.2} ms   {b_name} {b_ms:7.2} ms   {b_name}/{a_name} {ratio:.3}");
}

/// `n` values in [-1, 1) that look random to a branch predictor (an
/// integer hash of the index): the pooling's window winners on `values`'
/// regular pattern were predictable, and its benchmark missed a 4x
/// slowdown that real activations showed.
fn noise(n: usize, seed: u64) -> Vec<f32> {
    (0..n as u64)
        .map(|i| {
            let mut z = (i ^ seed.rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            ((z >> 40) as f32 / (1u64 << 23) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| ((i.wrapping_mul(2654435761).wrapping_add(seed)) % 1000) as f32 / 500.0 - 1.0).collect()
}

/// The co-occurrence encoder's convolutions (one stream, then the fused
/// ones) and the CNN-Transformer's widest, all channels last.
const CONVS: [(&str, ConvShape); 9] = [
    ("point", ConvShape { batch: 64, height: 50, width: 20, c_in: 3, c_out: 64, kh: 1, kw: 1 }),
    ("temporal", ConvShape { batch: 64, height: 50, width: 20, c_in: 64, c_out: 32, kh: 3, kw: 1 }),
    ("cooccurrence 1", ConvShape { batch: 64, height: 48, width: 32, c_in: 20, c_out: 32, kh: 3, kw: 3 }),
    ("cooccurrence 2", ConvShape { batch: 64, height: 23, width: 15, c_in: 32, c_out: 64, kh: 3, kw: 3 }),
    ("fused 1", ConvShape { batch: 64, height: 10, width: 12, c_in: 64, c_out: 128, kh: 3, kw: 3 }),
    ("fused 2", ConvShape { batch: 64, height: 4, width: 5, c_in: 128, c_out: 256, kh: 3, kw: 3 }),
    ("inertial conv 3", ConvShape { batch: 64, height: 1, width: 48, c_in: 64, c_out: 128, kh: 1, kw: 5 }),
    ("feed-forward in (as 1x1)", ConvShape { batch: 64, height: 44, width: 1, c_in: 128, c_out: 2048, kh: 1, kw: 1 }),
    ("feed-forward out (as 1x1)", ConvShape { batch: 64, height: 44, width: 1, c_in: 2048, c_out: 128, kh: 1, kw: 1 }),
];

fn main() {
    for round in 1..=2 {
        println!("round {round}");
        for (name, s) in CONVS {
            let (x, w, b) = (values(s.batch * s.height * s.width * s.c_in, 1), values(s.c_out * s.c_in * s.kh * s.kw, 2), values(s.c_out, 3));
            let dy = values(s.output_len(), 4);
            if !direct::available(&s) {
                time(&format!("conv {name} forward"), || drop(std::hint::black_box(conv::forward_by(Lowering::Im2col, &x, &w, &b, &s))));
                time(&format!("conv {name} all grads"), || drop(std::hint::black_box(conv::backward_by(Lowering::Im2col, &x, &w, &dy, &s, true))));
                continue;
            }
            let (x, w, b, dy) = (&x, &w, &b, &dy);
            let forward = |l| move || drop(std::hint::black_box(conv::forward_by(l, x, w, b, &s)));
            let backward = |l, input_grad| move || drop(std::hint::black_box(conv::backward_by(l, x, w, dy, &s, input_grad)));
            compare(&format!("conv {name} forward"), ("im2col", forward(Lowering::Im2col)), ("direct", forward(Lowering::Direct)));
            compare(&format!("conv {name} weight grad"), ("im2col", backward(Lowering::Im2col, false)), ("direct", backward(Lowering::Direct, false)));
            compare(&format!("conv {name} all grads"), ("im2col", backward(Lowering::Im2col, true)), ("direct", backward(Lowering::Direct, true)));
            if winograd::available(&s) {
                compare(&format!("winograd {name} forward"), ("direct", forward(Lowering::Direct)), ("winograd", forward(Lowering::Winograd)));
                compare(
                    &format!("winograd {name} weight grad"),
                    ("direct", backward(Lowering::Direct, false)),
                    ("winograd", backward(Lowering::Winograd, false)),
                );
                compare(&format!("winograd {name} all grads"), ("direct", backward(Lowering::Direct, true)), ("winograd", backward(Lowering::Winograd, true)));
            }
        }
        let (rows, d, hidden) = (64 * 44, 128, 2048);
        let (x, w1, b1) = (values(rows * d, 9), values(d * hidden, 10), values(hidden, 11));
        time("feed-forward in, direct panel-outer", || drop(std::hint::black_box(direct::product(&x, d, (&w1, hidden, 1), hidden, &b1))));
        time("feed-forward in, direct blocked", || drop(std::hint::black_box(direct::product_blocked(&x, d, (&w1, hidden, 1), hidden, &b1, |_, _| ()))));
        let ff = feed_forward::FeedForwardShape { rows, d, hidden };
        let (w2, b2, mask) = (values(hidden * d, 12), values(d, 13), Mask::new(3, 0.9));
        let (h, y, pattern) = feed_forward::forward(&x, &w1, &b1, &w2, &b2, &ff, mask);
        time("feed-forward forward", || drop(std::hint::black_box(feed_forward::forward(&x, &w1, &b1, &w2, &b2, &ff, mask))));
        let (xr, hr, w1r, w2r, yr) = (&x, &h, &w1, &w2, &y);
        let backward = |pattern| move || drop(std::hint::black_box(feed_forward::backward(xr, (hr, pattern), (w1r, w2r), yr, &ff, mask.scale, true)));
        compare("feed-forward backward", ("dense", backward(None)), ("sparse", backward(pattern.as_ref())));
        if let Some(pattern) = &pattern {
            let out = || drop(std::hint::black_box(direct::product(&h, hidden, (&w2, d, 1), d, &b2)));
            compare("feed-forward out", ("dense", out), ("sparse", || drop(std::hint::black_box(sparse::rows_product(&h, pattern, &w2, &b2)))));
            println!("feed-forward hidden density {:.3} (non-zero share of h)", pattern.density());
            let columns = pattern.transposed();
            time("feed-forward h^T dy, sparse", || drop(std::hint::black_box(sparse::columns_product(&h, &columns, &y, d))));
            time("feed-forward pattern of h", || drop(std::hint::black_box(sparse::Pattern::of(&h, hidden))));
            time("feed-forward pattern transposed", || drop(std::hint::black_box(pattern.transposed())));
        }
        for (rows, c, relu) in [(64_000, 64, true), (61_440, 32, false), (88_320, 32, false)] {
            let (x, dy) = (values(rows * c, 5), values(rows * c, 6));
            let (gamma, beta) = (vec![1.0; c], vec![0.1; c]);
            let (mean, var) = norm::moments(&x, c);
            time(&format!("batch norm {rows}x{c} moments"), || drop(std::hint::black_box(norm::moments(&x, c))));
            time(&format!("batch norm {rows}x{c} forward"), || drop(std::hint::black_box(norm::forward(&x, (&mean, &var), &gamma, &beta, 1e-5, relu))));
            time(&format!("batch norm {rows}x{c} backward"), || drop(std::hint::black_box(norm::backward(&x, &dy, (&mean, &var), &gamma, &beta, 1e-5, relu))));
        }
        let mask = Mask::new(7, 0.9);
        let mut hidden = values(64 * 44 * 2048, 8);
        time("dropout mask 64x44x2048 (feed-forward)", || {
            mask.apply(0, &mut hidden, |_, v, kept| *v = if kept { v.max(0.0) * mask.scale } else { 0.0 });
            std::hint::black_box(&hidden);
        });
        let s = pool::PoolShape { batch: 64, height: 46, width: 30, channels: 32, kh: 2, kw: 2 };
        let x = noise(s.batch * s.height * s.width * s.channels, 7);
        time("max-pool 64x46x30x32 forward", || drop(std::hint::black_box(pool::forward(&x, &s))));
        let (y, winner) = pool::forward(&x, &s);
        time("max-pool 64x46x30x32 backward", || drop(std::hint::black_box(pool::backward(&y, &winner, &s))));
    }
}
