//! YAML loading shared by every declaration (datasets, transforms, later
//! methods and suites): errors name the file, the line and the offending key.

use anyhow::{anyhow, Result};
use serde::de::DeserializeOwned;
use std::path::Path;

/// Reads and parses a YAML file into `T` (whose structs deny unknown keys).
pub fn read_yaml<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow!("{}: cannot read file: {e}", path.display()))?;
    parse_yaml(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Parses YAML text into `T`; the error says where and what.
pub fn parse_yaml<T: DeserializeOwned>(text: &str) -> Result<T> {
    serde_yaml::from_str(text).map_err(|e| anyhow!("{}", describe(&e)))
}

fn describe(e: &serde_yaml::Error) -> String {
    let msg = e.to_string();
    match e.location() {
        Some(loc) if !msg.contains("line") => format!("line {}, column {}: {msg}", loc.line(), loc.column()),
        _ => msg,
    }
}
