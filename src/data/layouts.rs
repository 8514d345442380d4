//! Finding a dataset's samples on disk: which files belong to which sample,
//! for each [`Format`]. Nothing is read here but directory listings and the
//! manifest; arrays are loaded by [`crate::data::dataset`].

use crate::data::declaration::{DatasetDecl, Format, ModalityDecl};
use crate::data::sample::SampleMeta;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The files of one sample, one per requested modality.
#[derive(Debug, Clone)]
pub struct Entry {
    pub meta: SampleMeta,
    pub files: Vec<PathBuf>,
}

/// A sample missing from some requested modality, which is therefore unused.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Dropped {
    pub id: String,
    pub missing: Vec<String>,
}

/// A file that could not be used, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    pub file: PathBuf,
    pub reason: String,
}

impl Failure {
    /// The failure of `file` by `error`, whose chain loses the file name it
    /// already carries.
    pub fn from_error(file: &Path, error: &anyhow::Error) -> Self {
        Failure { file: file.to_path_buf(), reason: format!("{error:#}").replace(&format!("{}: ", file.display()), "") }
    }
}

/// Everything discovery found.
#[derive(Debug, Default)]
pub struct Discovery {
    pub entries: Vec<Entry>,
    pub dropped: Vec<Dropped>,
    /// Files whose names are not in the format's grammar, or name bad labels.
    pub failed: Vec<Failure>,
    /// Files in a modality folder without the modality's suffix (not data).
    pub ignored: Vec<PathBuf>,
}

/// Lists the samples of `decl` present in every modality of `modalities`.
pub fn discover(decl: &DatasetDecl, modalities: &[&ModalityDecl]) -> Result<Discovery> {
    match decl.format {
        Format::UtdMhad | Format::Mmact | Format::CzuMhad => discover_by_name(decl, modalities),
        Format::Manifest => discover_manifest(decl, modalities),
        Format::Recordings => bail!("dataset '{}': recordings are cut into windows by data::recordings, not discovered as samples", decl.name),
    }
}

/// Parses a UTD-MHAD (`a1_s2_t3`), MMAct (`a1_s2_t3_ses4_sc5`) or CZU-MHAD
/// (`x2_a1_t3`: subject first) sample id.
pub fn parse_sample_id(format: Format, id: &str, classes: usize) -> Result<SampleMeta> {
    if format == Format::CzuMhad {
        // The same fields as UTD-MHAD's, subject first and called x.
        let parts: Vec<&str> = id.split('_').collect();
        let [subject, action, trial] = parts.as_slice() else { bail!("name '{id}' does not match the CzuMhad pattern xS_aA_tT") };
        let subject = subject.strip_prefix('x').with_context(|| format!("name '{id}' does not match the CzuMhad pattern xS_aA_tT"))?;
        return parse_sample_id(Format::UtdMhad, &format!("{action}_s{subject}_{trial}"), classes).map(|m| SampleMeta { id: id.to_string(), ..m });
    }
    let parts: Vec<&str> = id.split('_').collect();
    let field = |i: usize, prefix: &str| -> Result<u32> {
        parts
            .get(i)
            .and_then(|p| p.strip_prefix(prefix))
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("name '{id}' does not match the {format:?} pattern"))
    };
    let expected = if format == Format::Mmact { 5 } else { 3 };
    if parts.len() != expected {
        bail!("name '{id}' does not match the {format:?} pattern");
    }
    let action = field(0, "a")? as usize;
    if action == 0 || action > classes {
        bail!("'{id}': action {action} is outside the {classes} declared classes");
    }
    let (session, scene) = if format == Format::Mmact { (Some(field(3, "ses")?), Some(field(4, "sc")?)) } else { (None, None) };
    Ok(SampleMeta { id: id.to_string(), label: action - 1, subject: field(1, "s")?, trial: Some(field(2, "t")?), scene, session })
}

/// What makes a sample one sample: label, subject, trial, session, scene.
type SampleKey = (usize, u32, Option<u32>, Option<u32>, Option<u32>);

fn discover_by_name(decl: &DatasetDecl, modalities: &[&ModalityDecl]) -> Result<Discovery> {
    let mut found: BTreeMap<String, (Option<SampleMeta>, Vec<Option<PathBuf>>)> = BTreeMap::new();
    let mut out = Discovery::default();
    for (k, m) in modalities.iter().enumerate() {
        let dir = decl.root.join(m.dir.as_deref().unwrap_or_default());
        let suffix = m.suffix.as_deref().unwrap_or_default();
        let listing = std::fs::read_dir(&dir).with_context(|| format!("{}: cannot list modality '{}' folder", dir.display(), m.name))?;
        for entry in listing {
            let path = entry.with_context(|| format!("{}: cannot list", dir.display()))?.path();
            let Some(id) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(suffix)) else {
                out.ignored.push(path);
                continue;
            };
            let slot = found.entry(id.to_string()).or_insert_with(|| (None, vec![None; modalities.len()]));
            match parse_sample_id(decl.format, id, decl.classes.len()) {
                Ok(meta) => slot.0 = Some(meta),
                Err(e) => out.failed.push(Failure { file: path.clone(), reason: e.to_string() }),
            }
            slot.1[k] = Some(path);
        }
    }
    // Two names can denote one sample (`a1_s1_t1` and `a01_s1_t1`): keep the
    // first, report the other's files, so no sample is counted twice.
    let mut seen: BTreeMap<SampleKey, String> = BTreeMap::new();
    for (id, (meta, files)) in found {
        let Some(meta) = meta else { continue };
        let key = (meta.label, meta.subject, meta.trial, meta.session, meta.scene);
        if let Some(first) = seen.get(&key) {
            let reason = format!("duplicate sample: '{id}' names the same action, subject and trial as '{first}'");
            out.failed.extend(files.into_iter().flatten().map(|file| Failure { file, reason: reason.clone() }));
            continue;
        }
        seen.insert(key, id.clone());
        collect(&mut out, meta, files, modalities, &id);
    }
    sort_entries(&mut out.entries);
    Ok(out)
}

fn collect(out: &mut Discovery, meta: SampleMeta, files: Vec<Option<PathBuf>>, modalities: &[&ModalityDecl], id: &str) {
    let missing: Vec<String> = files.iter().zip(modalities).filter(|(f, _)| f.is_none()).map(|(_, m)| m.name.clone()).collect();
    if missing.is_empty() {
        out.entries.push(Entry { meta, files: files.into_iter().flatten().collect() });
    } else {
        out.dropped.push(Dropped { id: id.to_string(), missing });
    }
}

/// Orders samples by [`SampleMeta::order`]: a stable, file-system
/// independent order.
fn sort_entries(entries: &mut [Entry]) {
    entries.sort_by(|a, b| a.meta.order(&b.meta));
}

fn discover_manifest(decl: &DatasetDecl, modalities: &[&ModalityDecl]) -> Result<Discovery> {
    let path = decl.manifest_path();
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_path(&path).with_context(|| format!("{}: cannot open manifest", path.display()))?;
    let header: Vec<String> = reader.headers().with_context(|| format!("{}: bad header", path.display()))?.iter().map(str::to_string).collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let required = |name: &str| col(name).with_context(|| format!("{}: manifest has no '{name}' column (columns: {header:?})", path.display()));
    let (c_id, c_label, c_subject) = (required("sample_id")?, required("label")?, required("subject")?);
    let optional = [col("trial"), col("scene"), col("session")];
    let c_mod: Vec<usize> = modalities.iter().map(|m| required(&m.name)).collect::<Result<_>>()?;
    let mut out = Discovery::default();
    let mut seen = std::collections::BTreeSet::new();
    for (line, record) in reader.records().enumerate() {
        let line = line + 2;
        let record = record.with_context(|| format!("{}: line {line}: malformed CSV", path.display()))?;
        let cell = |c: usize| record.get(c).unwrap_or("").to_string();
        let id = cell(c_id);
        if !seen.insert(id.clone()) {
            bail!("{}: line {line}: duplicate sample_id '{id}'", path.display());
        }
        let meta = manifest_meta(decl, &id, &cell(c_label), &cell(c_subject), optional.map(|c| c.map(cell)))
            .with_context(|| format!("{}: line {line}", path.display()))?;
        let files = c_mod.iter().map(|&c| Some(cell(c)).filter(|p| !p.is_empty()).map(|p| base.join(p))).collect();
        collect(&mut out, meta, files, modalities, &id);
    }
    sort_entries(&mut out.entries);
    Ok(out)
}

fn manifest_meta(decl: &DatasetDecl, id: &str, label: &str, subject: &str, optional: [Option<String>; 3]) -> Result<SampleMeta> {
    let label = match label.parse::<usize>() {
        Ok(l) if l >= 1 && l <= decl.classes.len() => l - 1,
        Ok(l) => bail!("label {l} is outside 1..={}", decl.classes.len()),
        Err(_) => decl.classes.iter().position(|c| c == label).with_context(|| format!("label '{label}' is not a declared class"))?,
    };
    let number = |what: &str, v: &str| v.parse::<u32>().with_context(|| format!("{what} '{v}' is not a non-negative integer"));
    let opt = |what: &str, v: &Option<String>| -> Result<Option<u32>> {
        match v.as_deref() {
            None | Some("") => Ok(None),
            Some(v) => number(what, v).map(Some),
        }
    };
    Ok(SampleMeta {
        id: id.to_string(),
        label,
        subject: number("subject", subject)?,
        trial: opt("trial", &optional[0])?,
        scene: opt("scene", &optional[1])?,
        session: opt("session", &optional[2])?,
    })
}
