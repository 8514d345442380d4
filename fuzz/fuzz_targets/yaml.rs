//! YAML declarations (dataset, method, suite): any text parses and validates
//! to a value or an error, never a panic.
#![no_main]
use cmkm::data::DatasetDecl;
use cmkm::harness::suite::SuiteDecl;
use cmkm::methods::config::MethodConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let dataset = cmkm::config::parse_yaml::<DatasetDecl>(text);
    if let Ok(d) = &dataset {
        let _ = d.validate();
    }
    if let Ok(m) = cmkm::config::parse_yaml::<MethodConfig>(text) {
        if let Ok(d) = &dataset {
            let _ = m.validate(d);
        }
        if let Ok(d) = DatasetDecl::builtin(cmkm::data::declaration::Format::UtdMhad, std::path::Path::new("/nonexistent")) {
            let _ = m.validate(&d);
        }
    }
    let _ = cmkm::config::parse_yaml::<SuiteDecl>(text);
});
