//! Inputs that crashed or hung a fuzz target (`fuzz/`), kept as regression
//! tests: each must now give an error, quickly and without a panic.
//! The files live in `tests/fixtures/fuzz-regressions/`, named
//! `<target>-<what>.<ext>`.

use std::path::Path;
use std::time::{Duration, Instant};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz-regressions").join(name)).unwrap()
}

/// Runs `f` and returns its error message, failing on a panic, a success or
/// a slow answer.
fn error_of<T>(what: &str, f: impl FnOnce() -> anyhow::Result<T> + std::panic::UnwindSafe) -> String {
    let start = Instant::now();
    let result = std::panic::catch_unwind(f).unwrap_or_else(|_| panic!("{what}: the parser panicked"));
    assert!(start.elapsed() < Duration::from_secs(2), "{what}: took {:?}", start.elapsed());
    match result {
        Ok(_) => panic!("{what}: accepted"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn mat_dimensions_whose_product_overflows() {
    // matfile multiplies the dimensions as i32: a panic with overflow checks,
    // a wrapped element count without.
    let bytes = fixture("mat-dims-product-overflow.mat");
    let e = error_of("mat", || cmkm::data::formats::mat::parse_mat_variable(&bytes, "d_iner"));
    assert!(e.contains("[131073, 65281]") && e.contains("more elements"), "{e}");
}

#[test]
fn npy_header_with_nested_braces() {
    // npyz's header parser backtracks exponentially on nested brackets.
    let bytes = fixture("npy-nested-header-timeout.npy");
    let e = error_of("npy", || cmkm::data::formats::npy::parse_npy(&bytes));
    assert!(e.contains("unsupported .npy header"), "{e}");
}

#[test]
fn mat_sub_element_size_near_4_gib() {
    // matfile rounds a sub-element's size up to 8 in u32: overflow.
    let bytes = fixture("mat-subelement-size-overflow.mat");
    let e = error_of("mat", || cmkm::data::formats::mat::parse_mat_variable(&bytes, "d_iner"));
    assert!(e.contains("sub-element"), "{e}");
}
