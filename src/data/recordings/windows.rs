//! Cutting one recording into windows on one time grid for all its
//! modalities, and labelling each window by the declared rule.
//!
//! Window `k` covers `[t0, t0 + length)` with `t0 = start + k * stride`,
//! `start` the latest first time stamp over the modalities. Each modality
//! contributes the samples whose time stamps fall in it (a quarter period
//! of tolerance absorbs rounding); a window that a modality does not cover
//! without a gap, or that runs past any modality's end, is not cut.

use crate::data::clip::Clip;
use crate::data::recordings::decl::{LabelRule, UnlabelledUse, WindowUnit, WindowsDecl};
use crate::data::recordings::labels::Timeline;
use crate::data::recordings::read::Track;
use ndarray::Array3;
use serde::Serialize;
use std::ops::Range;

/// One window: its place on the grid, a clip per modality, its label.
#[derive(Debug)]
pub struct Window {
    /// `k`: the window starts `k` strides after the recording's start.
    pub index: usize,
    pub clips: Vec<Clip>,
    /// `None`: an unlabelled window (kept for pre-training only).
    pub label: Option<usize>,
}

/// Windows not cut or not kept, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Dropped {
    /// The window's time steps carry different labels (`pure`), or no
    /// label reaches `min_fraction` (`majority`).
    pub mixed_labels: usize,
    /// Some modality has a gap in its time stamps inside the window.
    pub gap: usize,
    /// No label (and unlabelled windows are not used).
    pub unlabelled: usize,
}

impl Dropped {
    /// Adds another count.
    pub fn add(&mut self, o: &Dropped) {
        self.mixed_labels += o.mixed_labels;
        self.gap += o.gap;
        self.unlabelled += o.unlabelled;
    }

    /// All dropped windows.
    pub fn total(&self) -> usize {
        self.mixed_labels + self.gap + self.unlabelled
    }
}

/// What cutting one recording gave.
#[derive(Debug, Default)]
pub struct Cut {
    pub windows: Vec<Window>,
    pub dropped: Dropped,
    /// The recording is shorter than one window.
    pub too_short: bool,
}

/// Which track holds the labels (an index into the tracks), and their
/// timeline on that track's samples.
pub struct LabelSource<'a> {
    pub modality: usize,
    pub timeline: &'a Timeline,
}

/// Cuts the tracks of one recording (all declared modalities, in order;
/// `keep` says whose clips to return) into windows.
pub fn cut(tracks: &[&Track], keep: &[usize], labels: &LabelSource, decl: &WindowsDecl) -> Cut {
    let first = tracks[0];
    let (length, stride) = match decl.unit {
        WindowUnit::Seconds => (decl.length, decl.stride),
        WindowUnit::Samples => (decl.length / first.rate, decl.stride / first.rate),
    };
    let start = tracks.iter().map(|t| t.times[0]).fold(f64::MIN, f64::max);
    let end = tracks.iter().map(|t| t.times[t.len() - 1] + 1.0 / t.rate).fold(f64::MAX, f64::min);
    let slack = 0.25 / tracks.iter().map(|t| t.rate).fold(0.0, f64::max);
    let mut out = Cut::default();
    if start + length > end + slack {
        out.too_short = true;
        return out;
    }
    let mut k = 0;
    loop {
        let t0 = start + k as f64 * stride;
        if t0 + length > end + slack {
            break;
        }
        let ranges: Option<Vec<Range<usize>>> = tracks.iter().map(|t| covered(t, t0, length)).collect();
        match ranges {
            None => out.dropped.gap += 1,
            Some(ranges) => match window_label(&labels.timeline[ranges[labels.modality].clone()], decl) {
                Err(()) => out.dropped.mixed_labels += 1,
                Ok(None) if decl.unlabelled == UnlabelledUse::Drop => out.dropped.unlabelled += 1,
                Ok(label) => {
                    let clips = keep.iter().map(|&m| clip_of(tracks[m], ranges[m].clone())).collect();
                    out.windows.push(Window { index: k, clips, label });
                }
            },
        }
        k += 1;
    }
    out
}

/// The samples of `track` inside `[t0, t0 + length)` (at least two), unless
/// a gap (a step longer than the track's `max_step`, or missing samples at
/// either end) breaks them.
fn covered(track: &Track, t0: f64, length: f64) -> Option<Range<usize>> {
    let max_step = track.max_step;
    let r = samples_in(track, t0, length);
    if r.len() < 2 {
        return None;
    }
    let t = &track.times;
    let (first, last) = (t[r.start], t[r.end - 1]);
    if first - t0 > max_step || (t0 + length) - last > max_step {
        return None;
    }
    t[r.clone()].windows(2).all(|w| w[1] - w[0] <= max_step).then_some(r)
}

/// Indices of the samples whose time lies in `[t0, t0 + length)`, with a
/// quarter period of tolerance.
fn samples_in(track: &Track, t0: f64, length: f64) -> Range<usize> {
    let slack = 0.25 / track.rate;
    let a = track.times.partition_point(|&t| t < t0 - slack);
    let b = track.times.partition_point(|&t| t < t0 + length - slack);
    a..b.max(a)
}

/// The label of a window whose time steps carry `steps` (at least one), by
/// the declared rule; `Err` for mixed labels.
fn window_label(steps: &[Option<usize>], decl: &WindowsDecl) -> Result<Option<usize>, ()> {
    match decl.label {
        LabelRule::Center => Ok(steps[steps.len() / 2]),
        LabelRule::Pure => {
            if steps.iter().all(|l| *l == steps[0]) {
                Ok(steps[0])
            } else {
                Err(())
            }
        }
        LabelRule::Majority => {
            let (label, count) = majority(steps);
            if count as f64 >= decl.min_fraction() * steps.len() as f64 {
                Ok(label)
            } else {
                Err(())
            }
        }
    }
}

/// The most frequent value and its count; ties go to the smaller class,
/// and a class before no label.
fn majority(steps: &[Option<usize>]) -> (Option<usize>, usize) {
    let mut counts: std::collections::BTreeMap<(bool, usize), usize> = Default::default();
    for l in steps {
        *counts.entry((l.is_none(), l.unwrap_or(0))).or_default() += 1;
    }
    let (&(none, class), &count) = counts
        .iter()
        .fold(None, |best: Option<(&(bool, usize), &usize)>, cur| match best {
            Some(b) if b.1 >= cur.1 => Some(b),
            _ => Some(cur),
        })
        .expect("a window has time steps");
    ((!none).then_some(class), count)
}

/// The canonical `(T, J, C)` clip of rows `r` of a track.
fn clip_of(track: &Track, r: Range<usize>) -> Clip {
    let rows = track.values.slice(ndarray::s![r, ..]);
    let (t, width) = rows.dim();
    let values: Vec<f32> = rows.iter().copied().collect();
    let joints = track.joints;
    Array3::from_shape_vec((t, joints, width / joints), values).expect("a row holds joints x channels values")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// `n` samples at `rate`, gaps beyond 1.5 periods (the default `max_gap`).
    fn track(n: usize, rate: f64) -> Track {
        let values = Array2::from_shape_fn((n, 2), |(i, c)| (i * 2 + c) as f32);
        Track { times: (0..n).map(|i| i as f64 / rate).collect(), values, codes: None, rate, joints: 1, max_step: 1.5 / rate }
    }

    fn decl(yaml: &str) -> WindowsDecl {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn labelled(timeline: &Timeline) -> LabelSource<'_> {
        LabelSource { modality: 0, timeline }
    }

    #[test]
    fn windows_tile_a_recording_by_stride_and_never_pass_its_end() {
        let a = track(10, 50.0);
        let tl: Timeline = vec![Some(0); 10];
        let c = cut(&[&a], &[0], &labelled(&tl), &decl("{length: 4, stride: 2, unit: samples, label: pure}"));
        assert_eq!(c.windows.iter().map(|w| w.index).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        assert_eq!(c.windows[1].clips[0].dim(), (4, 1, 2));
        assert_eq!(c.windows[1].clips[0][[0, 0, 0]], 4.0); // row 2, channel 0
        let short = cut(&[&a], &[0], &labelled(&tl), &decl("{length: 11, stride: 2, unit: samples, label: pure}"));
        assert!(short.too_short && short.windows.is_empty());
    }

    #[test]
    fn label_rules() {
        let a = track(8, 50.0);
        let tl: Timeline = vec![Some(1), Some(1), Some(1), Some(2), None, None, None, Some(0)];
        let run = |yaml: &str| {
            let c = cut(&[&a], &[0], &labelled(&tl), &decl(yaml));
            (c.windows.iter().map(|w| (w.index, w.label)).collect::<Vec<_>>(), c.dropped)
        };
        let (w, d) = run("{length: 4, stride: 4, unit: samples, label: pure}");
        assert_eq!((w, d.mixed_labels), (vec![], 2));
        let (w, _) = run("{length: 4, stride: 4, unit: samples, label: majority, min_fraction: 0.75, unlabelled: pretrain}");
        assert_eq!(w, vec![(0, Some(1)), (1, None)]);
        let (w, d) = run("{length: 4, stride: 4, unit: samples, label: center}");
        assert_eq!((w, d.unlabelled), (vec![(0, Some(1))], 1));
    }

    #[test]
    fn two_rates_share_one_grid_and_gaps_drop_windows() {
        let fast = track(100, 50.0); // 2 s
        let mut slow = track(30, 15.0); // 2 s, with a gap after 1 s
        for t in slow.times.iter_mut().skip(15) {
            *t += 0.5;
        }
        let tl: Timeline = vec![Some(0); 100];
        let c = cut(&[&fast, &slow], &[0, 1], &labelled(&tl), &decl("{length: 0.5, stride: 0.5, unit: seconds, label: pure}"));
        // The common span is 0..2 s; window 2 (1.0-1.5 s) falls in the slow track's gap.
        assert_eq!(c.windows.iter().map(|w| w.index).collect::<Vec<_>>(), vec![0, 1, 3]);
        assert_eq!(c.dropped.gap, 1);
        for w in &c.windows {
            // 0.5 s is 25 samples at 50 Hz and 7.5 at 15 Hz: 7 or 8 by the
            // window's phase (a resample step makes them one length).
            assert_eq!(w.clips[0].dim().0, 25);
            assert!(matches!(w.clips[1].dim().0, 7 | 8), "{:?}", w.clips[1].dim());
        }
    }
}
