//! YAML loading shared by every declaration (datasets, transforms, methods,
//! suites): errors name the file, the line and the offending key, and a
//! misspelt key or variant comes with the closest allowed one.

use anyhow::{anyhow, Result};
use serde::de::DeserializeOwned;
use std::path::Path;

/// Reads and parses a YAML file into `T` (whose structs deny unknown keys).
pub fn read_yaml<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow!("{}: cannot read file: {e}", path.display()))?;
    parse_yaml_of(&text, path)
}

/// Parses `text`, read from `path`, into `T`; the error names the file as
/// [`read_yaml`]'s does.
pub fn parse_yaml_of<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T> {
    serde_yaml::from_str(text).map_err(|e| anyhow!("{}", describe(&e, Some(path))))
}

/// [`read_yaml`], also returning the file's text, so that checks made after
/// parsing can point at a key's line ([`setting_error`]).
pub fn read_yaml_text<T: DeserializeOwned>(path: &Path) -> Result<(T, String)> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow!("{}: cannot read file: {e}", path.display()))?;
    let value = serde_yaml::from_str(&text).map_err(|e| anyhow!("{}", describe(&e, Some(path))))?;
    Ok((value, text))
}

/// The 1-based line of the key at `keys` (e.g. `["evaluations",
/// "fine_tuning", "epochs"]`) in YAML `text`, block or flow style: each key
/// is looked for, as a whole word followed by `:`, after the previous one;
/// the first at the start of a line (a top-level key of a block mapping).
/// `None` when a key is not written (a default).
pub fn key_line(text: &str, keys: &[&str]) -> Option<usize> {
    key_offset(text, keys).map(|at| line_of(text, at))
}

/// The byte offset of the last of `keys`, found as [`key_line`] says.
fn key_offset(text: &str, keys: &[&str]) -> Option<usize> {
    let (mut from, mut at) = (0, 0);
    for (k, key) in keys.iter().enumerate() {
        at = from + find_key(&text[from..], key, k == 0)?;
        from = at + key.len();
    }
    Some(at)
}

/// The 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at].matches('\n').count() + 1
}

/// The 1-based line where `value` is first written, as a whole word, after
/// the key at `keys` (e.g. the second claim's `b: nope` under `claims`).
pub fn value_line(text: &str, keys: &[&str], value: &str) -> Option<usize> {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-');
    let mut start = key_offset(text, keys)?;
    while let Some(i) = text[start..].find(value).map(|i| i + start) {
        let end = i + value.len();
        if !word(text[..i].chars().next_back()) && !word(text[end..].chars().next()) {
            return Some(line_of(text, i));
        }
        start = end;
    }
    None
}

/// Byte offset of `key` used as a mapping key in `text` (at a line's start
/// when `top`).
fn find_key(text: &str, key: &str, top: bool) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut start = 0;
    while let Some(i) = text[start..].find(key).map(|i| i + start) {
        let before = if i == 0 { b' ' } else { bytes[i - 1] };
        let after = text[i + key.len()..].trim_start_matches([' ', '"', '\'']);
        let quoted_or_bare = if top { before == b'\n' || i == 0 } else { matches!(before, b' ' | b'\n' | b'\t' | b'{' | b',' | b'"' | b'\'' | b'-') };
        if quoted_or_bare && after.starts_with(':') {
            return Some(i);
        }
        start = i + key.len();
    }
    None
}

/// An error about a setting found wrong after parsing: "FILE line N: `a.b`:
/// MESSAGE", the line that of the setting's key where the file writes it.
pub fn setting_error(path: &Path, text: &str, keys: &[&str], message: impl std::fmt::Display) -> anyhow::Error {
    located_error(path, key_line(text, keys), keys, message)
}

/// "FILE line N: `a.b`: MESSAGE" with a known line (or none).
pub fn located_error(path: &Path, line: Option<usize>, keys: &[&str], message: impl std::fmt::Display) -> anyhow::Error {
    let line = line.map(|l| format!(" line {l}")).unwrap_or_default();
    anyhow!("{}{line}: `{}`: {message}", path.display(), keys.join("."))
}

/// Parses YAML text into `T`; the error says where and what.
pub fn parse_yaml<T: DeserializeOwned>(text: &str) -> Result<T> {
    serde_yaml::from_str(text).map_err(|e| anyhow!("{}", describe(&e, None)))
}

/// A parse error as the other YAML errors read: the unknown key with the
/// closest allowed one, or the line and column.
pub fn describe(e: &serde_yaml::Error, path: Option<&Path>) -> String {
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

/// The first value of `values` that an earlier one equals (a seed, a
/// fraction or a swept value listed twice).
pub fn first_repeated<T: PartialEq>(values: &[T]) -> Option<&T> {
    values.iter().enumerate().find_map(|(i, v)| values[..i].contains(v).then_some(v))
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

    #[test]
    fn keys_are_found_on_their_line_in_block_and_flow_style() {
        let text = "name: x\nevaluations:\n  retrieval: true\n  fine_tuning:\n    epochs: 0\nepochs: 3\n";
        assert_eq!(key_line(text, &["evaluations", "fine_tuning", "epochs"]), Some(5));
        assert_eq!(key_line(text, &["epochs"]), Some(6), "the first key is a top-level one");
        assert_eq!(key_line(text, &["name"]), Some(1));
        let flow = "seeds: [1]\nevaluations: {fine_tuning: {epochs: 0}}\nclaims:\n  - {a: cmc, b: nope}\n";
        assert_eq!(key_line(flow, &["evaluations", "fine_tuning", "epochs"]), Some(2));
        assert_eq!(key_line(flow, &["claims", "b"]), Some(4));
        assert_eq!(key_line(flow, &["label_fractions"]), None);
        let claims = "claims:\n  - {a: cmc-cmkm, b: cmc}\n  - {a: cmc, b: nope}\n";
        assert_eq!(value_line(claims, &["claims"], "cmc"), Some(2), "whole words: not inside cmc-cmkm");
        assert_eq!(value_line(claims, &["claims"], "nope"), Some(3));
        assert_eq!(key_line("my_epochs: 1\nepochs: 2\n", &["epochs"]), Some(2), "whole words only");
        let e = setting_error(Path::new("s.yaml"), flow, &["claims", "b"], "no method `nope`").to_string();
        assert_eq!(e, "s.yaml line 4: `claims.b`: no method `nope`");
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
