//! A recording's labels as one value per time step of a track: from a
//! column of codes, or from labelled intervals in files of their own
//! (HAPT's `labels.txt`: `experiment user activity start end`).

use crate::data::recordings::decl::{IntervalUnit, IntervalsDecl, LabelsDecl};
use crate::data::recordings::pattern::{Pattern, RecordingKey, PLACEHOLDERS};
use crate::data::recordings::read::Track;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The class of each time step of a track (`None`: unlabelled).
pub type Timeline = Vec<Option<usize>>;

/// The timeline of a column of codes.
pub fn from_codes(codes: &[i64], labels: &LabelsDecl, classes: usize) -> Result<Timeline> {
    codes.iter().enumerate().map(|(i, &c)| labels.class_of(c, classes).with_context(|| format!("row {}", i + 1))).collect()
}

/// One labelled interval, as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    pub start: f64,
    pub end: f64,
    pub class: Option<usize>,
    /// Where it was read, for messages: `file:line`.
    pub origin: String,
}

/// Every interval of every recording, read from the declared files.
#[derive(Debug, Default)]
pub struct Intervals {
    pub by_recording: BTreeMap<RecordingKey, Vec<Interval>>,
    /// The files read.
    pub files: Vec<PathBuf>,
}

/// Reads the interval files of `decl` under `root`; `known` are the
/// recordings found, whose placeholders an interval must name exactly.
pub fn read_intervals(
    root: &Path,
    decl: &IntervalsDecl,
    labels: &LabelsDecl,
    class_names: &[String],
    known: &[RecordingKey],
    placeholders: &[&str],
) -> Result<Intervals> {
    let pattern = Pattern::parse(&decl.file).context("labels.intervals.file")?;
    let mut named: Vec<&str> = pattern.placeholders();
    named.extend(decl.columns.iter().map(String::as_str).filter(|c| PLACEHOLDERS.contains(c)));
    named.sort_unstable();
    let mut want = placeholders.to_vec();
    want.sort_unstable();
    if named != want {
        bail!("labels.intervals: its file name and columns name {named:?}, but the recordings are identified by {want:?}");
    }
    let files: Vec<(RecordingKey, PathBuf)> = if pattern.placeholders().is_empty() {
        let path = root.join(&decl.file);
        if !path.is_file() {
            bail!("{}: interval file not found", path.display());
        }
        vec![(RecordingKey([None; 4]), path)]
    } else {
        pattern.find(root)?.into_iter().collect()
    };
    let mut out = Intervals::default();
    for (key, path) in files {
        let text = std::fs::read_to_string(&path).with_context(|| format!("{}: cannot read", path.display()))?;
        for (line, row) in rows(&text) {
            let origin = format!("{}:{line}", path.display());
            let (rec, interval) = parse_row(&row, key, decl, labels, class_names, origin.clone()).with_context(|| origin.clone())?;
            if !known.contains(&rec) {
                bail!("{origin}: labels recording {}, which has no files", rec.id());
            }
            out.by_recording.entry(rec).or_default().push(interval);
        }
        out.files.push(path);
    }
    Ok(out)
}

/// Non-empty rows of a comma or white-space separated file, with their line
/// numbers; a first row whose first cell is not a number is a header.
fn rows(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut out = vec![];
    for (i, line) in text.lines().enumerate() {
        let cells: Vec<String> =
            if line.contains(',') { line.split(',').map(|c| c.trim().to_string()).collect() } else { line.split_whitespace().map(str::to_string).collect() };
        if cells.iter().all(String::is_empty) {
            continue;
        }
        if out.is_empty() && i == 0 && cells.iter().all(|c| c.parse::<f64>().is_err()) {
            continue;
        }
        out.push((i + 1, cells));
    }
    out
}

fn parse_row(
    row: &[String],
    file_key: RecordingKey,
    decl: &IntervalsDecl,
    labels: &LabelsDecl,
    class_names: &[String],
    origin: String,
) -> Result<(RecordingKey, Interval)> {
    if row.len() != decl.columns.len() {
        bail!("{} columns, the declaration names {}", row.len(), decl.columns.len());
    }
    let cell = |name: &str| decl.column(name).map(|c| row[c].as_str());
    let number = |name: &str| -> Result<f64> {
        let v = cell(name).unwrap_or_default();
        v.parse::<f64>().ok().filter(|x| x.is_finite()).with_context(|| format!("{name} '{v}' is not a finite number"))
    };
    let mut key = file_key;
    for (i, p) in PLACEHOLDERS.iter().enumerate() {
        if let Some(v) = cell(p) {
            key.0[i] = Some(v.parse().with_context(|| format!("{p} '{v}' is not a non-negative integer"))?);
        }
    }
    let (start, end) = (number("start")?, number("end")?);
    if end < start {
        bail!("the interval ends ({end}) before it starts ({start})");
    }
    let label = cell("label").unwrap_or_default();
    let class = match label.parse::<i64>() {
        Ok(code) => labels.class_of(code, class_names.len())?,
        Err(_) => Some(class_names.iter().position(|c| c == label).with_context(|| format!("label '{label}' is not a declared class"))?),
    };
    Ok((key, Interval { start, end, class, origin }))
}

/// The timeline of intervals on `track` (the first modality's), checking
/// that they neither overlap nor leave the recording.
pub fn from_intervals(intervals: &[Interval], decl: &IntervalsDecl, track: &Track) -> Result<Timeline> {
    let n = track.len();
    let mut timeline = vec![None; n];
    // Each interval as a half-open range of sample indices.
    let mut ranges: Vec<(usize, usize, &Interval)> = vec![];
    for iv in intervals {
        let (a, b) = match decl.unit {
            IntervalUnit::Samples => {
                let first = decl.first_sample as f64;
                if iv.start.fract() != 0.0 || iv.end.fract() != 0.0 || iv.start < first {
                    bail!("{}: sample numbers must be whole and at least {first} (first_sample)", iv.origin);
                }
                let (a, b) = ((iv.start - first) as usize, (iv.end - first) as usize + 1);
                if b > n {
                    bail!("{}: the interval ends at sample {} but the recording has {n} samples", iv.origin, iv.end);
                }
                (a, b)
            }
            IntervalUnit::Seconds => {
                let (t0, step) = (track.times[0], 1.0 / track.rate);
                let t_end = track.times[n - 1] + step;
                if iv.start < t0 - 0.5 * step || iv.end > t_end + 0.5 * step {
                    bail!("{}: the interval [{}, {}) s leaves the recording ({t0} to {t_end} s)", iv.origin, iv.start, iv.end);
                }
                (track.times.partition_point(|&t| t < iv.start), track.times.partition_point(|&t| t < iv.end))
            }
        };
        ranges.push((a, b, iv));
    }
    ranges.sort_by_key(|r| (r.0, r.1));
    for w in ranges.windows(2) {
        if w[1].0 < w[0].1 {
            bail!("{} overlaps {}", w[1].2.origin, w[0].2.origin);
        }
    }
    for (a, b, iv) in ranges {
        timeline[a..b].fill(iv.class);
    }
    Ok(timeline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn labels(yaml: &str) -> LabelsDecl {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn track(n: usize) -> Track {
        Track { times: (0..n).map(|i| i as f64 / 50.0).collect(), values: Array2::zeros((n, 1)), codes: None, rate: 50.0, joints: 1, max_step: 0.03 }
    }

    fn iv(start: f64, end: f64, class: usize, line: usize) -> Interval {
        Interval { start, end, class: Some(class), origin: format!("labels.txt:{line}") }
    }

    #[test]
    fn codes_map_to_classes_or_to_unlabelled() {
        let l = labels("{column: 1, codes: [1, 2, 4], unlabelled: [0]}");
        assert_eq!(from_codes(&[0, 1, 4], &l, 3).unwrap(), vec![None, Some(0), Some(2)]);
        let e = format!("{:#}", from_codes(&[1, 3], &l, 3).unwrap_err());
        assert!(e.contains("row 2") && e.contains("code 3"), "{e}");
        let plain = labels("{column: 1}");
        assert!(from_codes(&[4], &plain, 3).is_err());
    }

    #[test]
    fn hapt_intervals_count_samples_from_one_inclusively() {
        let d: IntervalsDecl =
            serde_yaml::from_str("{file: labels.txt, columns: [session, subject, label, start, end], unit: samples, first_sample: 1}").unwrap();
        let t = from_intervals(&[iv(2.0, 3.0, 4, 1), iv(5.0, 5.0, 1, 2)], &d, &track(6)).unwrap();
        assert_eq!(t, vec![None, Some(4), Some(4), None, Some(1), None]);
        let e = from_intervals(&[iv(2.0, 3.0, 4, 1), iv(3.0, 4.0, 1, 2)], &d, &track(6)).unwrap_err().to_string();
        assert!(e.contains("labels.txt:2 overlaps labels.txt:1"), "{e}");
        let e = from_intervals(&[iv(5.0, 7.0, 4, 3)], &d, &track(6)).unwrap_err().to_string();
        assert!(e.contains("labels.txt:3") && e.contains("6 samples"), "{e}");
    }

    #[test]
    fn second_intervals_are_half_open() {
        let d: IntervalsDecl = serde_yaml::from_str("{file: l.csv, columns: [start, end, label], unit: seconds}").unwrap();
        let t = from_intervals(&[iv(0.02, 0.06, 0, 1), iv(0.06, 0.08, 1, 2)], &d, &track(5)).unwrap();
        assert_eq!(t, vec![None, Some(0), Some(0), Some(1), None]);
        assert!(from_intervals(&[iv(0.0, 0.5, 0, 1)], &d, &track(5)).is_err());
    }

    #[test]
    fn interval_rows_name_their_recording_and_class() {
        let d: IntervalsDecl = serde_yaml::from_str("{file: labels.txt, columns: [session, subject, label, start, end], unit: samples}").unwrap();
        let l = labels("{intervals: {file: labels.txt, columns: [start, end, label], unit: samples}}");
        let names = vec!["walk".to_string(), "sit".to_string()];
        let row = |cells: &[&str]| cells.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        let (key, i) = parse_row(&row(&["3", "2", "sit", "10", "20"]), RecordingKey([None; 4]), &d, &l, &names, "f:1".into()).unwrap();
        assert_eq!((key.subject(), key.get("session"), i.class), (2, Some(3), Some(1)));
        assert!(parse_row(&row(&["3", "2", "run", "10", "20"]), RecordingKey([None; 4]), &d, &l, &names, "f:1".into()).is_err());
        assert!(parse_row(&row(&["3", "2", "1", "20", "10"]), RecordingKey([None; 4]), &d, &l, &names, "f:1".into()).is_err());
        assert!(parse_row(&row(&["3", "2", "1", "20"]), RecordingKey([None; 4]), &d, &l, &names, "f:1".into()).is_err());
    }
}
