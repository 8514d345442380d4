//! MAT reader: any bytes give a value or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for name in ["d_iner", "d_skel"] {
        let _ = cmkm::data::formats::mat::parse_mat_variable(data, name);
    }
});
