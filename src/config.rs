//! YAML loading shared by every declaration (datasets, transforms, methods,
//! suites): errors name the file, the line and the offending key, and a
//! misspelt key or variant comes with the closest allowed one.

use anyhow::{anyhow, Result};
use serde::de::DeserializeOwned;
use std::path::Path;

/// Reads and parses a YAML file into `T` (whose structs deny unknown keys).
pub fn read_yaml<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow!("{}: cannot read file: {e}", path.display()))?;
    serde_yaml::from_str(&text).map_err(|e| anyhow!("{}", describe(&e, Some(path))))
}

/// Parses YAML text into `T`; the error says where and what.
pub fn parse_yaml<T: DeserializeOwned>(text: &str) -> Result<T> {
    serde_yaml::from_str(text).map_err(|e| anyhow!("{}", describe(&e, None)))
}

fn describe(e: &serde_yaml::Error, path: Option<&Path>) -> String {
    let msg = e.to_string();
    let line = e.location().map(|l| l.line());
    if let Some(text) = unknown_name_message(&msg, path, line) {
        return text;
    }
    let msg = match e.location() {
        Some(loc) if !msg.contains("line") => format!("line {}, column {}: {msg}", loc.line(), loc.column()),
        _ => msg,
    };
    match path {
        Some(p) => format!("{}: {msg}", p.display()),
        None => msg,
    }
}

/// Rewrites serde's "unknown field `x`, expected one of `a`, `b`" (or
/// "unknown variant ...") into "unknown key `x` in FILE line N; did you mean
/// `a`?", keeping the allowed names.
fn unknown_name_message(msg: &str, path: Option<&Path>, line: Option<usize>) -> Option<String> {
    let (at, what, marker) =
        ["unknown field `", "unknown variant `"].iter().find_map(|m| msg.find(m).map(|i| (i, if m.contains("field") { "key" } else { "value" }, *m)))?;
    // serde_yaml prefixes nested errors with the key path: "schedule: unknown field ...".
    let parent = msg[..at].trim_end_matches(": ").trim();
    let (name, rest) = msg[at + marker.len()..].split_once('`')?;
    let expected_part = rest.split(" at line ").next().unwrap_or(rest);
    let allowed: Vec<&str> = expected_part.split('`').skip(1).step_by(2).collect();
    let mut out = format!("unknown {what} `{name}`");
    if !parent.is_empty() {
        out.push_str(&format!(" under `{parent}`"));
    }
    match (path, line) {
        (Some(p), Some(l)) => out.push_str(&format!(" in {} line {l}", p.display())),
        (Some(p), None) => out.push_str(&format!(" in {}", p.display())),
        (None, Some(l)) => out.push_str(&format!(" at line {l}")),
        (None, None) => {}
    }
    if let Some(best) = closest(name, &allowed) {
        out.push_str(&format!("; did you mean `{best}`?"));
    }
    if !allowed.is_empty() {
        let list: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
        out.push_str(&format!(" (allowed: {})", list.join(", ")));
    }
    Some(out)
}

/// The allowed name closest to `name` by edit distance, if close enough to
/// be a plausible typo (at most a third of the longer name's length, and at
/// least 2 edits are always allowed).
pub fn closest<'a>(name: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let (best, distance) = allowed.iter().map(|a| (*a, edit_distance(&name.to_lowercase(), &a.to_lowercase()))).min_by_key(|&(_, d)| d)?;
    let limit = (name.chars().count().max(best.chars().count()) / 3).max(2);
    (distance <= limit).then_some(best)
}

/// Levenshtein distance (insertions, deletions, substitutions) over chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != cb)).min(row[j] + 1).min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_and_closest() {
        assert_eq!(edit_distance("epochz", "epochs"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(closest("epochz", &["batch_size", "epochs", "lr"]), Some("epochs"));
        assert_eq!(closest("btach_size", &["batch_size", "epochs"]), Some("batch_size"));
        assert_eq!(closest("zzzzzzzz", &["lr", "epochs"]), None);
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct S {
        epochs: usize,
        batch_size: usize,
    }

    #[test]
    fn unknown_keys_get_a_suggestion_with_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.yaml");
        std::fs::write(&p, "batch_size: 2\n\nepochz: 3\n").unwrap();
        let e = read_yaml::<S>(&p).unwrap_err().to_string();
        assert!(e.starts_with("unknown key `epochz` in ") && e.contains("x.yaml line 3; did you mean `epochs`?"), "{e}");
        let e = parse_yaml::<S>("epochs: 1\nbatch_size: 2\nwhatever: 1\n").unwrap_err().to_string();
        assert!(e.contains("unknown key `whatever` at line 3") && !e.contains("did you mean"), "{e}");
    }
}
