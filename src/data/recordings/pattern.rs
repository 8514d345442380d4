//! File patterns with placeholders (`acc_exp{session}_user{subject}.txt`):
//! finding the files under a root that match one, and what each names.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The placeholders a pattern may hold, each matching a decimal number.
pub const PLACEHOLDERS: [&str; 4] = ["subject", "session", "trial", "scene"];

/// What identifies a recording: the placeholders' values, in
/// [`PLACEHOLDERS`] order (`None` where the pattern has no such placeholder).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordingKey(pub [Option<u32>; 4]);

impl RecordingKey {
    /// The subject (patterns must name one).
    pub fn subject(&self) -> u32 {
        self.0[0].unwrap_or(0)
    }

    /// The value of a named placeholder.
    pub fn get(&self, name: &str) -> Option<u32> {
        PLACEHOLDERS.iter().position(|p| *p == name).and_then(|i| self.0[i])
    }

    /// What protocols select a recording's windows by.
    pub fn attributes(&self) -> crate::data::sample::Attributes {
        crate::data::sample::Attributes { subject: self.subject(), trial: self.get("trial"), scene: self.get("scene"), session: self.get("session") }
    }

    /// A readable id: `s3_ses2` (subject, then session, trial, scene as present).
    pub fn id(&self) -> String {
        let prefixes = ["s", "ses", "t", "sc"];
        let parts: Vec<String> = self.0.iter().zip(prefixes).filter_map(|(v, p)| v.map(|v| format!("{p}{v}"))).collect();
        parts.join("_")
    }
}

/// One piece of a pattern's path component.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Literal(String),
    Placeholder(usize),
}

/// A parsed pattern: one list of pieces per path component.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    components: Vec<Vec<Piece>>,
}

impl Pattern {
    /// Parses `text`; unknown or unclosed placeholders are errors.
    pub fn parse(text: &str) -> Result<Self> {
        let components = text.split('/').filter(|c| !c.is_empty() && *c != ".").map(|c| parse_component(c, text)).collect::<Result<Vec<_>>>()?;
        if components.is_empty() {
            bail!("file pattern '{text}' is empty");
        }
        Ok(Pattern { text: text.to_string(), components })
    }

    /// The placeholders the pattern uses.
    pub fn placeholders(&self) -> Vec<&'static str> {
        let mut used: Vec<usize> = self.components.iter().flatten().filter_map(|p| if let Piece::Placeholder(i) = p { Some(*i) } else { None }).collect();
        used.sort_unstable();
        used.dedup();
        used.into_iter().map(|i| PLACEHOLDERS[i]).collect()
    }

    /// Every file under `root` matching the pattern, with its key, sorted by
    /// path. A placeholder used twice must have one value; two files naming
    /// the same key (`user1` and `user01`) are an error.
    pub fn find(&self, root: &Path) -> Result<BTreeMap<RecordingKey, PathBuf>> {
        let mut hits = vec![];
        self.walk(root, 0, [None; 4], &mut hits)?;
        hits.sort();
        let mut out: BTreeMap<RecordingKey, PathBuf> = BTreeMap::new();
        for (path, key) in hits {
            if let Some(first) = out.get(&key) {
                bail!("{} and {} name the same recording ({}) under the pattern '{}'", first.display(), path.display(), key.id(), self.text);
            }
            out.insert(key, path);
        }
        Ok(out)
    }

    /// The key a path (relative to the root) has under the pattern, if it matches.
    pub fn match_path(&self, relative: &str) -> Option<RecordingKey> {
        let parts: Vec<&str> = relative.split('/').filter(|c| !c.is_empty()).collect();
        if parts.len() != self.components.len() {
            return None;
        }
        let mut key = [None; 4];
        for (part, pieces) in parts.iter().zip(&self.components) {
            key = match_component(pieces, part, key)?;
        }
        Some(RecordingKey(key))
    }

    /// The path the pattern gives for `key` (every placeholder it uses must
    /// be set), relative to the root: for interval files named per recording.
    pub fn path_for(&self, key: &RecordingKey) -> Option<PathBuf> {
        let mut path = PathBuf::new();
        for pieces in &self.components {
            let mut s = String::new();
            for p in pieces {
                match p {
                    Piece::Literal(l) => s.push_str(l),
                    Piece::Placeholder(i) => s.push_str(&key.0[*i]?.to_string()),
                }
            }
            path.push(s);
        }
        Some(path)
    }

    fn walk(&self, dir: &Path, depth: usize, key: [Option<u32>; 4], hits: &mut Vec<(PathBuf, RecordingKey)>) -> Result<()> {
        let pieces = &self.components[depth];
        let last = depth + 1 == self.components.len();
        if let [Piece::Literal(name)] = pieces.as_slice() {
            let path = dir.join(name);
            return self.visit(path, depth, last, key, hits);
        }
        let listing = std::fs::read_dir(dir).with_context(|| format!("{}: cannot list (pattern '{}')", dir.display(), self.text))?;
        for entry in listing {
            let path = entry.with_context(|| format!("{}: cannot list", dir.display()))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            if let Some(k) = match_component(pieces, name, key) {
                self.visit(path, depth, last, k, hits)?;
            }
        }
        Ok(())
    }

    fn visit(&self, path: PathBuf, depth: usize, last: bool, key: [Option<u32>; 4], hits: &mut Vec<(PathBuf, RecordingKey)>) -> Result<()> {
        if last && path.is_file() {
            hits.push((path, RecordingKey(key)));
        } else if !last && path.is_dir() {
            self.walk(&path, depth + 1, key, hits)?;
        }
        Ok(())
    }
}

fn parse_component(c: &str, whole: &str) -> Result<Vec<Piece>> {
    let mut pieces = vec![];
    let mut rest = c;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            pieces.push(Piece::Literal(rest[..open].to_string()));
        }
        let close = rest[open..].find('}').with_context(|| format!("file pattern '{whole}': unclosed '{{'"))? + open;
        let name = &rest[open + 1..close];
        let index = PLACEHOLDERS
            .iter()
            .position(|p| *p == name)
            .with_context(|| format!("file pattern '{whole}': unknown placeholder {{{name}}} (expected one of {PLACEHOLDERS:?})"))?;
        if matches!(pieces.last(), Some(Piece::Placeholder(_))) {
            bail!("file pattern '{whole}': two placeholders need text between them");
        }
        pieces.push(Piece::Placeholder(index));
        rest = &rest[close + 1..];
    }
    if rest.contains('}') {
        bail!("file pattern '{whole}': '}}' without '{{'");
    }
    if !rest.is_empty() {
        pieces.push(Piece::Literal(rest.to_string()));
    }
    Ok(pieces)
}

/// Matches one path component; placeholders take one or more digits (as
/// many as there are: a placeholder is never followed by a digit literal
/// that could be ambiguous, since digits end where the next literal starts).
fn match_component(pieces: &[Piece], name: &str, mut key: [Option<u32>; 4]) -> Option<[Option<u32>; 4]> {
    let mut rest = name;
    for piece in pieces {
        match piece {
            Piece::Literal(l) => rest = rest.strip_prefix(l.as_str())?,
            Piece::Placeholder(i) => {
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                let value: u32 = rest[..digits].parse().ok()?;
                if key[*i].is_some_and(|v| v != value) {
                    return None;
                }
                key[*i] = Some(value);
                rest = &rest[digits..];
            }
        }
    }
    rest.is_empty().then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hapt_names_match() {
        let p = Pattern::parse("RawData/acc_exp{session}_user{subject}.txt").unwrap();
        assert_eq!(p.placeholders(), vec!["subject", "session"]);
        let k = p.match_path("RawData/acc_exp07_user04.txt").unwrap();
        assert_eq!((k.subject(), k.get("session")), (4, Some(7)));
        assert_eq!(k.id(), "s4_ses7");
        assert!(p.match_path("RawData/gyro_exp07_user04.txt").is_none());
        assert!(p.match_path("RawData/acc_expXX_user04.txt").is_none());
        assert!(p.match_path("acc_exp07_user04.txt").is_none());
    }

    #[test]
    fn a_repeated_placeholder_must_agree_and_paths_round_trip() {
        let p = Pattern::parse("s{subject}/rec_{subject}_{trial}.csv").unwrap();
        assert!(p.match_path("s3/rec_3_1.csv").is_some());
        assert!(p.match_path("s3/rec_4_1.csv").is_none());
        let k = p.match_path("s3/rec_3_12.csv").unwrap();
        assert_eq!(p.path_for(&k).unwrap(), PathBuf::from("s3/rec_3_12.csv"));
    }

    #[test]
    fn bad_patterns_are_errors() {
        for bad in ["acc_{user}.txt", "acc_{subject.txt", "acc_{subject}{session}.txt", "a}b"] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn find_walks_folders_and_rejects_two_names_for_one_key() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["u1/a_1.txt", "u2/a_1.txt", "u2/b_1.txt", "u2/a_x.txt"] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "1\n").unwrap();
        }
        let p = Pattern::parse("u{subject}/a_{trial}.txt").unwrap();
        let found = p.find(dir.path()).unwrap();
        assert_eq!(found.len(), 2);
        std::fs::write(dir.path().join("u2/a_01.txt"), "1\n").unwrap();
        let e = p.find(dir.path()).unwrap_err().to_string();
        assert!(e.contains("a_01.txt") && e.contains("a_1.txt") && e.contains("s2_t1"), "{e}");
    }
}
