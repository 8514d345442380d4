//! Reading one modality's recording file into time stamps, channel values
//! and (where it holds them) label codes, with the checks a recording needs:
//! finite values, sorted and distinct time stamps, the declared channels.

use crate::data::declaration::ModalityDecl;
use crate::data::formats;
use crate::data::recordings::decl::RecordingDecl;
use anyhow::{bail, Context, Result};
use ndarray::{Array2, Axis};
use std::path::Path;

/// One modality of one recording.
#[derive(Debug)]
pub struct Track {
    /// Time of each sample, in seconds.
    pub times: Vec<f64>,
    /// `rows x (joints * channels)`, joint-major.
    pub values: Array2<f32>,
    /// The label column's codes, where this file holds the labels.
    pub codes: Option<Vec<i64>>,
    /// The declared sampling rate, Hz.
    pub rate: f64,
    /// Joints per row (1 for series).
    pub joints: usize,
    /// The longest step between time stamps that is not a gap, in seconds
    /// (`max_gap` sample periods).
    pub max_step: f64,
}

impl Track {
    /// Sample count.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// True without samples.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }
}

/// Reads `file` as a recording of modality `m`; `label_column` is the
/// column of label codes when this modality's files hold them.
pub fn read_track(file: &Path, m: &ModalityDecl, rec: &RecordingDecl, label_column: Option<usize>) -> Result<Track> {
    let table = read_table(file)?;
    track_from_table(table, m, rec, label_column).with_context(|| format!("{}", file.display()))
}

fn read_table(file: &Path) -> Result<Array2<f64>> {
    let array = formats::read_array(file, None)?;
    let shape = array.shape().to_vec();
    array.into_dimensionality().with_context(|| format!("{}: a recording is a table (time x columns); this array has shape {shape:?}", file.display()))
}

fn track_from_table(table: Array2<f64>, m: &ModalityDecl, rec: &RecordingDecl, label_column: Option<usize>) -> Result<Track> {
    let (rows, cols) = table.dim();
    let check = |c: usize, what: &str| -> Result<()> {
        if c >= cols {
            bail!("{what} column {c} does not exist: the file has {cols} columns");
        }
        Ok(())
    };
    if let Some(c) = rec.time_column {
        check(c, "time")?;
    }
    if let Some(c) = label_column {
        check(c, "label")?;
    }
    let channels: Vec<usize> = match &rec.columns {
        Some(list) => list.clone(),
        None => (0..cols).filter(|c| Some(*c) != rec.time_column && Some(*c) != label_column).collect(),
    };
    for &c in &channels {
        check(c, "channel")?;
    }
    let want = m.channels * m.joint_count();
    if channels.len() != want {
        bail!(
            "modality '{}' declares {want} values per time step ({} joints x {} channels) but the file gives {} channel columns{}",
            m.name,
            m.joint_count(),
            m.channels,
            channels.len(),
            if rec.columns.is_none() { format!(" (of {cols}; list them in 'columns')") } else { String::new() }
        );
    }
    if rows < 2 {
        bail!("{rows} time step(s): a recording needs at least 2");
    }
    let values = table.select(Axis(1), &channels);
    if let Some(((r, c), v)) = values.indexed_iter().find(|(_, v)| !v.is_finite()) {
        let count = values.iter().filter(|v| !v.is_finite()).count();
        bail!("{count} non-finite value(s); the first is {v} at row {} column {}", r + 1, channels[c]);
    }
    let times = match rec.time_column {
        Some(c) => checked_times(table.column(c).iter().map(|t| t * rec.time_unit.seconds()))?,
        None => (0..rows).map(|i| i as f64 / m.sample_rate).collect(),
    };
    let codes = label_column.map(|c| label_codes(table.column(c).iter().copied())).transpose()?;
    Ok(Track { times, values: values.mapv(|v| v as f32), codes, rate: m.sample_rate, joints: m.joint_count(), max_step: rec.max_gap / m.sample_rate })
}

/// Time stamps, which must be finite, strictly increasing.
fn checked_times(times: impl Iterator<Item = f64>) -> Result<Vec<f64>> {
    let times: Vec<f64> = times.collect();
    for (i, w) in times.windows(2).enumerate() {
        if !w[0].is_finite() || !w[1].is_finite() {
            bail!("time stamp at row {} is not finite", if w[0].is_finite() { i + 2 } else { i + 1 });
        }
        if w[1] == w[0] {
            bail!("rows {} and {} have the same time stamp {}", i + 1, i + 2, w[0]);
        }
        if w[1] < w[0] {
            bail!("time stamps are not sorted: row {} ({}) comes before row {} ({})", i + 1, w[0], i + 2, w[1]);
        }
    }
    Ok(times)
}

/// Label codes, which must be whole numbers.
fn label_codes(values: impl Iterator<Item = f64>) -> Result<Vec<i64>> {
    values
        .enumerate()
        .map(|(i, v)| if v.fract() == 0.0 && v.abs() < 1e15 { Ok(v as i64) } else { bail!("label at row {} is {v}, not a whole-number code", i + 1) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::declaration::ModalityKind;
    use ndarray::array;

    fn modality(channels: usize) -> ModalityDecl {
        let yaml = format!("{{name: acc, kind: series, channels: {channels}, sample_rate: 50, layout: TC}}");
        let mut m: ModalityDecl = serde_yaml::from_str(&yaml).unwrap();
        m.kind = ModalityKind::Series;
        m
    }

    fn rec(yaml: &str) -> RecordingDecl {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn columns_time_and_labels_are_separated() {
        let t = array![[0.0, 1.0, 2.0, 3.0], [20.0, 4.0, 5.0, 3.0], [40.0, 6.0, 7.0, 0.0]];
        let r = rec("{files: 'a{subject}.csv', time_column: 0, time_unit: ms}");
        let track = track_from_table(t, &modality(2), &r, Some(3)).unwrap();
        assert_eq!(track.times, vec![0.0, 0.02, 0.04]);
        assert_eq!(track.values, array![[1.0f32, 2.0], [4.0, 5.0], [6.0, 7.0]]);
        assert_eq!(track.codes, Some(vec![3, 3, 0]));
    }

    #[test]
    fn bad_recordings_say_what_and_where() {
        let r = rec("{files: 'a{subject}.csv', time_column: 0}");
        let err = |t: Array2<f64>, ch: usize| format!("{:#}", track_from_table(t, &modality(ch), &r, None).unwrap_err());
        assert!(err(array![[0.0, 1.0], [1.0, f64::NAN], [2.0, 1.0]], 1).contains("at row 2 column 1"));
        assert!(err(array![[0.0, 1.0], [0.0, 1.0]], 1).contains("rows 1 and 2 have the same time stamp"));
        assert!(err(array![[1.0, 1.0], [0.5, 1.0]], 1).contains("not sorted"));
        assert!(err(array![[0.0, 1.0, 2.0], [1.0, 1.0, 2.0]], 3).contains("gives 2 channel columns"));
        let e = format!("{:#}", track_from_table(array![[0.0, 1.0, 1.0], [1.0, 1.0, 1.5]], &modality(1), &r, Some(2)).unwrap_err());
        assert!(e.contains("label at row 2 is 1.5"), "{e}");
    }
}
