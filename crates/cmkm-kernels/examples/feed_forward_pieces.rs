//! `cargo run --release -p cmkm-kernels --example feed_forward_pieces`:
//! the Transformer feed-forward block's kernels one by one at the CMC
//! step's shapes (64 x 44 tokens of 128, hidden 2048, dropout 0.1), each
//! the median of 11 runs. Run with `RAYON_NUM_THREADS` to fix the threads
//! and glibc's `MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1073741824`, as
//! training sets them (`src/training/allocator.rs`), so that the buffers
//! are not faulted in anew each run. Compare two builds by running their
//! binaries alternately (docs/performance.md, issue #34).

use cmkm_kernels::feed_forward::{self, FeedForwardShape};
use cmkm_kernels::mask::Mask;
use cmkm_kernels::{direct, sparse};
use std::time::Instant;

/// Median of 11 timed runs after a warm-up, in milliseconds.
fn ms(f: &mut dyn FnMut()) -> f64 {
    f();
    let mut v: Vec<f64> = (0..11)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[5]
}

/// Deterministic values in [-1, 1).
fn vals(n: usize, seed: u32) -> Vec<f32> {
    (0..n).map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 1000) as f32 / 500.0 - 1.0).collect()
}

fn main() {
    let s = FeedForwardShape { rows: 2816, d: 128, hidden: 2048 };
    let (x, w1, b1, w2, b2, dy) =
        (vals(s.rows * s.d, 1), vals(s.d * s.hidden, 2), vals(s.hidden, 3), vals(s.hidden * s.d, 4), vals(s.d, 5), vals(s.rows * s.d, 6));
    let w1: Vec<f32> = w1.iter().map(|v| v * 0.1).collect();
    let mask = Mask::new(7, 0.9);
    let (h, _y, pattern) = feed_forward::forward(&x, &w1, &b1, &w2, &b2, &s, mask);
    let p = pattern.unwrap();
    println!("density {:.3}", p.density());
    println!("forward total          {:6.2} ms", ms(&mut || drop(std::hint::black_box(feed_forward::forward(&x, &w1, &b1, &w2, &b2, &s, mask)))));
    println!(
        "  in product bare      {:6.2} ms",
        ms(&mut || drop(std::hint::black_box(direct::product_blocked(&x, s.d, (&w1, s.hidden, 1), s.hidden, &b1, |_, _| ()))))
    );
    println!("  mask alone           {:6.2} ms", ms(&mut || drop(std::hint::black_box(cmkm_kernels::mask::keep_mask(s.rows * s.hidden, mask)))));
    println!("  out rows_product     {:6.2} ms", ms(&mut || drop(std::hint::black_box(sparse::rows_product(&h, &p, &w2, &b2)))));
    {
        let dense: Vec<f32> = x.iter().cycle().take(s.rows * s.hidden).map(|v| v + 3.0).collect();
        let pd = sparse::Pattern::of(&dense, s.hidden);
        println!(
            "  rows_product density {:.2}: {:6.2} ms (times 0.449, the sparse density)",
            pd.density(),
            ms(&mut || drop(std::hint::black_box(sparse::rows_product(&dense, &pd, &w2, &b2)))) * 0.449
        );
    }
    println!(
        "backward total         {:6.2} ms",
        ms(&mut || drop(std::hint::black_box(feed_forward::backward(&x, (&h, Some(&p)), (&w1, &w2), &dy, &s, 1.0 / 0.9, true))))
    );
    println!("  transposed pattern   {:6.2} ms", ms(&mut || drop(std::hint::black_box(p.transposed()))));
    let cols = p.transposed();
    println!("  dw2 columns_product  {:6.2} ms", ms(&mut || drop(std::hint::black_box(sparse::columns_product(&h, &cols, &dy, s.d)))));
    println!(
        "  dz dense blocked     {:6.2} ms",
        ms(&mut || drop(std::hint::black_box(direct::product_blocked(&dy, s.d, (&w2, 1, s.d), s.hidden, &vec![0.0; s.hidden], |_, _| ()))))
    );
    let dz = h.clone();
    println!("  dw1 columns_product  {:6.2} ms", ms(&mut || drop(std::hint::black_box(sparse::columns_product(&dz, &cols, &x, s.d)))));
    let t = sparse::columns_product(&dz, &cols, &x, s.d);
    println!("  dw1 transpose        {:6.2} ms", ms(&mut || drop(std::hint::black_box(sparse::transpose(&t, s.hidden, s.d)))));
    println!("  w1 transpose         {:6.2} ms", ms(&mut || drop(std::hint::black_box(sparse::transpose(&w1, s.d, s.hidden)))));
    let w1t = sparse::transpose(&w1, s.d, s.hidden);
    println!("  dx rows_product      {:6.2} ms", ms(&mut || drop(std::hint::black_box(sparse::rows_product(&dz, &p, &w1t, &vec![0.0; s.d])))));
}
