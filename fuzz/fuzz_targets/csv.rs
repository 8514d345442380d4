//! Numeric CSV reader: any text gives a table or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = cmkm::data::formats::table::parse_numeric_csv(text);
    }
});
