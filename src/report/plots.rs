//! The report's plots (PNG and SVG, with plotters and an embedded font so
//! they render the same everywhere): main-metric bars with error bars,
//! label-fraction curves with std bands, retrieval precision@k, SSL
//! training-loss curves and the best method's confusion matrix.

use super::aggregate::{summarise, Group};
use super::frame::Frame;
use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// A figure that can be drawn on any plotters backend.
pub trait Figure {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
}

/// Plotters' errors carry their backend's error type; reports only need the text.
fn ok<T, E: std::fmt::Display>(r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| anyhow!("plotting: {e}"))
}

fn register_font() -> Result<()> {
    static FONT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let registered =
        FONT.get_or_init(|| plotters::style::register_font("sans-serif", FontStyle::Normal, include_bytes!("../../assets/fonts/DejaVuSans.ttf")).is_ok());
    if *registered {
        Ok(())
    } else {
        Err(anyhow!("the embedded plot font could not be read"))
    }
}

/// Writes `<stem>.png` and `<stem>.svg` under `dir`; each appears complete
/// or not at all (rendered to a hidden temporary name, then renamed).
pub fn save(figure: &impl Figure, dir: &Path, stem: &str) -> Result<()> {
    register_font()?;
    let png = dir.join(format!("{stem}.png"));
    let tmp = dir.join(format!(".{stem}.{}.png", std::process::id()));
    {
        let root = BitMapBackend::new(&tmp, figure.size()).into_drawing_area();
        figure.draw(&root)?;
        ok(root.present())?;
    }
    std::fs::rename(&tmp, &png).map_err(|e| anyhow!("{}: cannot write: {e}", png.display()))?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, figure.size()).into_drawing_area();
        figure.draw(&root)?;
        ok(root.present())?;
    }
    crate::fsutil::write_atomic(&dir.join(format!("{stem}.svg")), svg.as_bytes())
}

fn colour(i: usize) -> RGBColor {
    let c = Palette99::pick(i).to_rgba();
    RGBColor(c.0, c.1, c.2)
}

/// Horizontal bars: one per main-table row, mean ± std in percent, with
/// the paper's number for the row as a black diamond where it has one.
pub struct MainBars {
    pub title: String,
    pub metric: String,
    /// (label, mean %, std %, the paper's %).
    pub bars: Vec<(String, f64, f64, Option<f64>)>,
}

impl Figure for MainBars {
    fn size(&self) -> (u32, u32) {
        (900, 120 + 36 * self.bars.len() as u32)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        ok(root.fill(&WHITE))?;
        let n = self.bars.len().max(1);
        let mut chart = ok(ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(300)
            .build_cartesian_2d(0.0..100.0, (0..n).into_segmented()))?;
        // The first bar at the top.
        let names: Vec<String> = self.bars.iter().rev().map(|b| b.0.clone()).collect();
        let label = move |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        };
        ok(chart.configure_mesh().disable_y_mesh().x_desc(format!("{} (%)", self.metric)).y_label_formatter(&label).y_labels(n).draw())?;
        for (k, (_, mean, std, paper)) in self.bars.iter().enumerate() {
            let c = colour(k);
            let i = n - 1 - k;
            let bar = Rectangle::new([(0.0, SegmentValue::Exact(i)), (*mean, SegmentValue::Exact(i + 1))], c.mix(0.6).filled());
            ok(chart.draw_series(std::iter::once(bar)))?;
            let (lo, hi) = ((mean - std).max(0.0), (mean + std).min(100.0));
            let whisker = PathElement::new(vec![(lo, SegmentValue::CenterOf(i)), (hi, SegmentValue::CenterOf(i))], BLACK.stroke_width(2));
            ok(chart.draw_series(std::iter::once(whisker)))?;
            if let Some(p) = paper {
                let diamond = EmptyElement::at((*p, SegmentValue::CenterOf(i))) + Polygon::new(vec![(0, -7), (7, 0), (0, 7), (-7, 0)], BLACK.filled());
                ok(chart.draw_series(std::iter::once(diamond)))?;
            }
        }
        Ok(())
    }
}

/// One curve: its legend and its points (x, mean, std).
pub type Line = (String, Vec<(f64, f64, f64)>);

/// Lines with a shaded ±std band: label-fraction curves.
pub struct Curves {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    /// (legend, points (x, mean, std)).
    pub lines: Vec<Line>,
    /// Where the legend goes (the corner the curves leave empty).
    pub legend: SeriesLabelPosition,
}

impl Curves {
    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let pts = self.lines.iter().flat_map(|l| l.1.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, m, s) in pts {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(m - s);
            y1 = y1.max(m + s);
        }
        if x0 > x1 {
            return ((1.0, 2.0), (0.0, 1.0));
        }
        let pad = ((y1 - y0) * 0.05).max(1e-3);
        let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
        ((x0, x1), (y0 - pad, y1 + pad))
    }
}

impl Figure for Curves {
    fn size(&self) -> (u32, u32) {
        (900, 600)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        ok(root.fill(&WHITE))?;
        let ((x0, x1), (y0, y1)) = self.ranges();
        let mut chart = ok(ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1))?;
        ok(chart.configure_mesh().x_desc(&self.x_desc).y_desc(&self.y_desc).draw())?;
        for (i, (name, pts)) in self.lines.iter().enumerate() {
            let c = colour(i);
            let mut band: Vec<(f64, f64)> = pts.iter().map(|&(x, m, s)| (x, m + s)).collect();
            band.extend(pts.iter().rev().map(|&(x, m, s)| (x, m - s)));
            ok(chart.draw_series(std::iter::once(Polygon::new(band, c.mix(0.15).filled()))))?;
            let line = ok(chart.draw_series(LineSeries::new(pts.iter().map(|&(x, m, _)| (x, m)), c.stroke_width(2))))?;
            line.label(name.clone()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
            ok(chart.draw_series(pts.iter().map(|&(x, m, _)| Circle::new((x, m), 3, c.filled()))))?;
        }
        ok(chart
            .configure_series_labels()
            .position(self.legend.clone())
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw())?;
        Ok(())
    }
}

/// A confusion matrix, each row normalised by its class count.
pub struct ConfusionMatrix {
    pub title: String,
    pub classes: Vec<String>,
    pub counts: Vec<Vec<f64>>,
}

impl Figure for ConfusionMatrix {
    fn size(&self) -> (u32, u32) {
        (1000, 1000)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        ok(root.fill(&WHITE))?;
        let n = self.classes.len().max(1);
        let mut chart = ok(ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(170)
            .build_cartesian_2d((0..n).into_segmented(), (0..n).into_segmented()))?;
        let names = self.classes.clone();
        let names2 = self.classes.clone();
        // Predicted classes by number, true classes by number and name, row 1 at the top.
        let fx = move |v: &SegmentValue<usize>| {
            if let SegmentValue::CenterOf(i) = v {
                if *i < names.len() {
                    format!("{}", i + 1)
                } else {
                    String::new()
                }
            } else {
                String::new()
            }
        };
        let fy = move |v: &SegmentValue<usize>| {
            if let SegmentValue::CenterOf(i) = v {
                names2.get(n - 1 - *i).map(|s| format!("{s} ({})", n - i)).unwrap_or_default()
            } else {
                String::new()
            }
        };
        ok(chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(n)
            .y_labels(n)
            .x_label_formatter(&fx)
            .y_label_formatter(&fy)
            .x_label_style(("sans-serif", 11))
            .y_label_style(("sans-serif", 11))
            .x_desc("predicted class")
            .y_desc("true")
            .draw())?;
        let cells = self.counts.iter().enumerate().flat_map(|(t, row)| {
            let total: f64 = row.iter().sum::<f64>().max(1.0);
            row.iter().enumerate().map(move |(p, v)| {
                let shade = 1.0 - (v / total).clamp(0.0, 1.0);
                let c = RGBColor((255.0 * shade) as u8, (255.0 * shade) as u8, 255);
                let y = n - 1 - t;
                Rectangle::new([(SegmentValue::Exact(p), SegmentValue::Exact(y)), (SegmentValue::Exact(p + 1), SegmentValue::Exact(y + 1))], c.filled())
            })
        });
        ok(chart.draw_series(cells))?;
        Ok(())
    }
}

/// Label-fraction curves, one panel per modality on a log fraction axis
/// (1, 5 and 10% would pile up at the left of a linear one): one line per
/// method, mean ± std over seeds and repetitions; the supervised baseline
/// black and dashed, the random-encoder baseline grey and dashed.
pub struct FractionPanels {
    pub title: String,
    pub y_desc: String,
    pub panels: Vec<FractionPanel>,
}

/// One line of a label-fraction panel: legend, approach, points (x %, mean, std).
pub type FractionLine = (String, String, Vec<(f64, f64, f64)>);

/// One panel: its modality and lines.
pub type FractionPanel = (String, Vec<FractionLine>);

impl Figure for FractionPanels {
    fn size(&self) -> (u32, u32) {
        (560 * self.panels.len().max(1) as u32, 620)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        ok(root.fill(&WHITE))?;
        let root = ok(root.titled(&self.title, ("sans-serif", 20)))?;
        let areas = root.split_evenly((1, self.panels.len().max(1)));
        let all = self.panels.iter().flat_map(|p| p.1.iter()).flat_map(|l| l.2.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, m, s) in all {
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(m - s), y1.max(m + s));
        }
        if x0 > x1 {
            (x0, x1, y0, y1) = (1.0, 50.0, 0.0, 100.0);
        }
        let (x0, x1) = (x0 / 1.3, x1 * 1.3);
        let (y0, y1) = ((y0 - 2.0).max(0.0), (y1 + 2.0).min(100.0));
        for (area, (modality, lines)) in areas.iter().zip(&self.panels) {
            let mut chart = ok(ChartBuilder::on(area)
                .caption(modality, ("sans-serif", 17))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(55)
                .build_cartesian_2d((x0..x1).log_scale(), y0..y1))?;
            // Labels at the usual fractions only (a log axis's key points
            // crowd between them), no minor grid.
            let tick = |x: &f64| if [1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0].iter().any(|t| (x - t).abs() < 1e-6 * t) { format!("{x}") } else { String::new() };
            ok(chart
                .configure_mesh()
                .light_line_style(TRANSPARENT)
                .x_desc("labelled train samples (%, log scale)")
                .y_desc(&self.y_desc)
                .x_label_formatter(&tick)
                .draw())?;
            for (i, (legend, approach, pts)) in lines.iter().enumerate() {
                let (c, dashed) = match approach.as_str() {
                    "Supervised" => (BLACK, true),
                    a if a.starts_with("Random") => (RGBColor(130, 130, 130), true),
                    _ => (colour(i), false),
                };
                let mut band: Vec<(f64, f64)> = pts.iter().map(|&(x, m, s)| (x, m + s)).collect();
                band.extend(pts.iter().rev().map(|&(x, m, s)| (x, m - s)));
                ok(chart.draw_series(std::iter::once(Polygon::new(band, c.mix(0.12).filled()))))?;
                let style = c.stroke_width(if dashed { 2 } else { 3 });
                let line: Vec<(f64, f64)> = pts.iter().map(|&(x, m, _)| (x, m)).collect();
                let series = if dashed {
                    ok(chart.draw_series(DashedLineSeries::new(line, 8, 5, style)))?
                } else {
                    ok(chart.draw_series(LineSeries::new(line, style)))?
                };
                series.label(legend.clone()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
                ok(chart.draw_series(pts.iter().map(|&(x, m, _)| Circle::new((x, m), 3, c.filled()))))?;
            }
            ok(chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 12))
                .draw())?;
        }
        Ok(())
    }
}

/// The label-fraction panels of a suite's fractions frame.
pub fn fraction_curves(fractions: &Frame, metric: &str, suite: &str) -> Result<FractionPanels> {
    let groups = summarise(fractions, &["modality", "approach", "method"], &["fraction"], &["main"])?;
    let mut panels: Vec<FractionPanel> = vec![];
    for g in &groups {
        let (modality, approach, method) = (&g.keys[0], &g.keys[1], &g.keys[2]);
        let legend = if approach.starts_with("Random") { format!("{method}, {approach}") } else { format!("{method} ({approach})") };
        let point = (100.0 * g.numeric_keys[0], 100.0 * g.stats[0].mean, 100.0 * g.stats[0].std);
        let panel = match panels.iter().position(|p| &p.0 == modality) {
            Some(i) => &mut panels[i].1,
            None => {
                panels.push((modality.clone(), vec![]));
                &mut panels.last_mut().expect("just pushed").1
            }
        };
        match panel.iter_mut().find(|l| l.0 == legend) {
            Some(l) => l.2.push(point),
            None => panel.push((legend, approach.clone(), vec![point])),
        }
    }
    for line in panels.iter_mut().flat_map(|p| p.1.iter_mut()) {
        line.2.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    panels.sort_by_key(|p| super::paper::modality_order(&p.0));
    Ok(FractionPanels { title: format!("{suite}: {metric} with a fraction of the train labels (mean ± std)"), y_desc: format!("{metric} (%)"), panels })
}

/// One claim's points: for each modality row, (label setting index,
/// difference, low, high, the paper's difference), in points.
pub type ClaimPoints = Vec<(String, Vec<(usize, f64, f64, f64, Option<f64>)>)>;

/// The claims, one panel per compared pair ("A > B"): the label settings
/// (all labels, then each fraction) along the axis, A minus B with its 95%
/// bootstrap interval per modality row, the paper's gap as a black diamond,
/// zero as a line. Green where the interval lies above zero, red below,
/// grey across it.
pub struct ClaimPanels {
    pub title: String,
    /// The label settings along every panel's axis.
    pub settings: Vec<String>,
    /// (claim, its points).
    pub panels: Vec<(String, ClaimPoints)>,
}

impl ClaimPanels {
    const COLUMNS: usize = 3;
    fn rows(&self) -> usize {
        self.panels.len().div_ceil(Self::COLUMNS).max(1)
    }
}

impl Figure for ClaimPanels {
    fn size(&self) -> (u32, u32) {
        let width = 460 * Self::COLUMNS.min(self.panels.len().max(1)) as u32;
        (width.max(700), 60 + 330 * self.rows() as u32)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        ok(root.fill(&WHITE))?;
        let body = ok(root.titled(&self.title, ("sans-serif", 18)))?;
        let columns = Self::COLUMNS.min(self.panels.len().max(1));
        let areas = body.split_evenly((self.rows(), columns));
        let n = self.settings.len().max(1);
        for ((claim, rows), area) in self.panels.iter().zip(areas) {
            let values = rows.iter().flat_map(|r| r.1.iter()).flat_map(|p| [p.1, p.2, p.3, p.4.unwrap_or(0.0)]);
            let reach = values.map(f64::abs).fold(1.0f64, f64::max) * 1.15;
            let mut chart = ok(ChartBuilder::on(&area)
                .caption(claim, ("sans-serif", 15))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(45)
                .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), -reach..reach))?;
            let settings = self.settings.clone();
            let label = move |x: &f64| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    settings.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            };
            ok(chart.configure_mesh().disable_x_mesh().x_labels(n).x_label_formatter(&label).y_desc("A minus B (points)").draw())?;
            ok(chart.draw_series(std::iter::once(PathElement::new(vec![(-0.5, 0.0), (n as f64 - 0.5, 0.0)], BLACK.stroke_width(1)))))?;
            let rows_here = rows.len().max(1) as f64;
            for (k, (modality, points)) in rows.iter().enumerate() {
                // Modality rows side by side within each label setting.
                let offset = (k as f64 - (rows_here - 1.0) / 2.0) * 0.22;
                // One colour per modality row in every panel.
                let shape = [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(148, 103, 189), RGBColor(60, 60, 60)]
                    [super::paper::modality_order(modality).min(3)];
                let mut first = true;
                for &(x, d, lo, hi, paper) in points {
                    let x = x as f64 + offset;
                    let c = if lo > 0.0 {
                        RGBColor(40, 140, 70)
                    } else if hi < 0.0 {
                        RGBColor(200, 60, 50)
                    } else {
                        RGBColor(120, 120, 120)
                    };
                    ok(chart.draw_series(std::iter::once(PathElement::new(vec![(x, lo), (x, hi)], c.stroke_width(2)))))?;
                    let dot = ok(chart.draw_series(std::iter::once(Circle::new((x, d), 4, shape.filled()))))?;
                    if first {
                        dot.label(modality.clone()).legend(move |(x, y)| Circle::new((x, y), 4, shape.filled()));
                        first = false;
                    }
                    if let Some(p) = paper {
                        let diamond = EmptyElement::at((x, p)) + Polygon::new(vec![(0, -5), (5, 0), (0, 5), (-5, 0)], BLACK.filled());
                        ok(chart.draw_series(std::iter::once(diamond)))?;
                    }
                }
            }
            ok(chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 11))
                .draw())?;
        }
        Ok(())
    }
}

/// Retrieval precision@k for each method's headline setting (fused when
/// the method has several modalities, else its one modality).
pub fn retrieval_curves(retrieval: &Frame, suite: &str) -> Result<Curves> {
    let groups = summarise(retrieval, &["method", "setting"], &[], &["p_at_1", "p_at_5", "p_at_10"])?;
    let mut out: Vec<Line> = vec![];
    let methods: Vec<String> = groups.iter().map(|g| g.keys[0].clone()).fold(vec![], |mut v, m| {
        if !v.contains(&m) {
            v.push(m);
        }
        v
    });
    for m in methods {
        let mine: Vec<&Group> = groups.iter().filter(|g| g.keys[0] == m).collect();
        let headline = mine.iter().find(|g| g.keys[1] == "fused").or_else(|| mine.iter().find(|g| !g.keys[1].contains("->"))).copied();
        if let Some(g) = headline {
            let pts = [1.0, 5.0, 10.0].iter().zip(&g.stats).map(|(k, s)| (*k, 100.0 * s.mean, 100.0 * s.std)).collect();
            out.push((format!("{m} ({})", g.keys[1]), pts));
        }
    }
    Ok(Curves {
        title: format!("{suite}: activity retrieval"),
        x_desc: "k".into(),
        y_desc: "precision@k (%)".into(),
        lines: out,
        legend: SeriesLabelPosition::UpperRight,
    })
}

/// SSL training loss per epoch, mean over seeds, one line per method.
pub fn loss_curves(curves: &Frame, suite: &str) -> Result<Curves> {
    let groups = summarise(curves, &["method"], &["epoch"], &["train_loss"])?;
    Ok(Curves {
        title: format!("{suite}: self-supervised training loss"),
        x_desc: "epoch".into(),
        y_desc: "training loss".into(),
        legend: SeriesLabelPosition::UpperRight,
        lines: lines(&groups, |g| g.keys[0].clone(), |g| g.numeric_keys[0], 1.0),
    })
}

/// Groups -> lines keyed by `name`, points (x, mean·scale, std·scale) sorted by x.
fn lines(groups: &[Group], name: impl Fn(&Group) -> String, x: impl Fn(&Group) -> f64, scale: f64) -> Vec<Line> {
    let mut out: Vec<Line> = vec![];
    for g in groups {
        let key = name(g);
        let point = (x(g), scale * g.stats[0].mean, scale * g.stats[0].std);
        match out.iter_mut().find(|l| l.0 == key) {
            Some(l) => l.1.push(point),
            None => out.push((key, vec![point])),
        }
    }
    for l in &mut out {
        l.1.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// Points with intervals, one per row (a sweep along one key): the mean as
/// a dot, the 95% interval as a whisker; highlighted rows (the chosen
/// variant) drawn in red.
pub struct IntervalDots {
    pub title: String,
    pub x_desc: String,
    /// (label, mean, low, high, highlighted), first at the top.
    pub rows: Vec<(String, f64, f64, f64, bool)>,
}

impl Figure for IntervalDots {
    fn size(&self) -> (u32, u32) {
        (900, 120 + 32 * self.rows.len() as u32)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        ok(root.fill(&WHITE))?;
        let n = self.rows.len().max(1);
        let lo = self.rows.iter().map(|r| r.2).fold(f64::MAX, f64::min);
        let hi = self.rows.iter().map(|r| r.3).fold(f64::MIN, f64::max);
        let (lo, hi) = if lo < hi { (lo, hi) } else { (lo.min(hi) - 1.0, lo.max(hi) + 1.0) };
        let pad = (hi - lo) * 0.08;
        let mut chart = ok(ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(320)
            .build_cartesian_2d((lo - pad)..(hi + pad), (0..n - 1).into_segmented()))?;
        let names: Vec<String> = self.rows.iter().rev().map(|r| r.0.clone()).collect();
        let label = move |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        };
        ok(chart.configure_mesh().disable_y_mesh().x_desc(&self.x_desc).y_label_formatter(&label).y_labels(n).draw())?;
        for (k, (_, mean, low, high, highlighted)) in self.rows.iter().enumerate() {
            let i = n - 1 - k;
            let c = if *highlighted { RGBColor(200, 40, 40) } else { RGBColor(40, 70, 160) };
            ok(chart.draw_series(std::iter::once(PathElement::new(
                vec![(*low, SegmentValue::CenterOf(i)), (*high, SegmentValue::CenterOf(i))],
                c.stroke_width(2),
            ))))?;
            ok(chart.draw_series(std::iter::once(Circle::new((*mean, SegmentValue::CenterOf(i)), 5, c.filled()))))?;
        }
        Ok(())
    }
}

/// A heat map of one number over two swept keys, each cell written out.
pub struct HeatMap {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub x_labels: Vec<String>,
    pub y_labels: Vec<String>,
    /// `cells[y][x]`, `None` where no run finished.
    pub cells: Vec<Vec<Option<f64>>>,
}

impl Figure for HeatMap {
    fn size(&self) -> (u32, u32) {
        (260 + 110 * self.x_labels.len() as u32, 160 + 70 * self.y_labels.len() as u32)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        ok(root.fill(&WHITE))?;
        let (nx, ny) = (self.x_labels.len().max(1), self.y_labels.len().max(1));
        let mut chart = ok(ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(120)
            .build_cartesian_2d((0..nx - 1).into_segmented(), (0..ny - 1).into_segmented()))?;
        let (xs, ys) = (self.x_labels.clone(), self.y_labels.clone());
        let fx = move |v: &SegmentValue<usize>| if let SegmentValue::CenterOf(i) = v { xs.get(*i).cloned().unwrap_or_default() } else { String::new() };
        let fy =
            move |v: &SegmentValue<usize>| if let SegmentValue::CenterOf(i) = v { ys.get(ny - 1 - *i).cloned().unwrap_or_default() } else { String::new() };
        ok(chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(nx)
            .y_labels(ny)
            .x_label_formatter(&fx)
            .y_label_formatter(&fy)
            .x_desc(&self.x_desc)
            .y_desc(&self.y_desc)
            .draw())?;
        let known: Vec<f64> = self.cells.iter().flatten().flatten().copied().collect();
        let (lo, hi) = (known.iter().copied().fold(f64::MAX, f64::min), known.iter().copied().fold(f64::MIN, f64::max));
        for (y, row) in self.cells.iter().enumerate() {
            for (x, cell) in row.iter().enumerate() {
                let yy = ny - 1 - y;
                let corners = [(SegmentValue::Exact(x), SegmentValue::Exact(yy)), (SegmentValue::Exact(x + 1), SegmentValue::Exact(yy + 1))];
                let Some(v) = cell else {
                    ok(chart.draw_series(std::iter::once(Rectangle::new(corners, RGBColor(230, 230, 230).filled()))))?;
                    continue;
                };
                let shade = if hi > lo { 1.0 - (v - lo) / (hi - lo) } else { 0.5 };
                let c = RGBColor((60.0 + 190.0 * shade) as u8, (110.0 + 140.0 * shade) as u8, 250);
                ok(chart.draw_series(std::iter::once(Rectangle::new(corners, c.filled()))))?;
                let text = Text::new(
                    format!("{v:.2}"),
                    (SegmentValue::CenterOf(x), SegmentValue::CenterOf(yy)),
                    ("sans-serif", 16)
                        .into_font()
                        .color(&BLACK)
                        .pos(plotters::style::text_anchor::Pos::new(plotters::style::text_anchor::HPos::Center, plotters::style::text_anchor::VPos::Center)),
                );
                ok(chart.draw_series(std::iter::once(text)))?;
            }
        }
        Ok(())
    }
}

/// The figures of one sweep: for each key, the test metric of the variants
/// along it (others at the reference point: the chosen variant, or the
/// method file as written for a one-at-a-time sweep), per modality row;
/// for a grid of two keys, a heat map of the test metric averaged over
/// modality rows. Returns the files written.
pub fn sweep_figures(
    method: &str,
    sweep: &crate::harness::sweep::Sweep,
    points: &[super::sweeps::SweepPoint],
    chosen: Option<&str>,
    metric: &str,
    dir: &Path,
) -> Result<Vec<String>> {
    let mut files = vec![];
    let stem = |rest: &str| format!("sweep_{}_{rest}", super::file_stem(method));
    let Some(reference) = super::sweeps::reference(method, sweep, chosen) else { return Ok(files) };
    for (k, label) in sweep.labels().iter().enumerate() {
        let mut rows = vec![];
        for (value, variant) in super::sweeps::along_key(sweep, k, reference) {
            for pt in points.iter().filter(|p| p.variant == variant) {
                rows.push((format!("{label}={value} · {}", pt.modality), 100.0 * pt.test, 100.0 * pt.low, 100.0 * pt.high, chosen == Some(variant)));
            }
        }
        if rows.is_empty() {
            continue;
        }
        let title = format!("{method}: test {metric} along {label} (95% bootstrap intervals; red: chosen on validation)");
        let name = stem(&label.replace('.', "_"));
        save(&IntervalDots { title, x_desc: format!("{metric} (%)"), rows }, dir, &name)?;
        files.extend([format!("{name}.png"), format!("{name}.svg")]);
    }
    if sweep.keys.len() == 2 && sweep.search != crate::harness::sweep::Search::OneAtATime {
        let labels = sweep.labels();
        let values = |k: usize| {
            let mut v: Vec<String> = vec![];
            for variant in &sweep.variants {
                let s = crate::harness::sweep::show(&variant.values[k].1);
                if !v.contains(&s) {
                    v.push(s);
                }
            }
            v
        };
        let (ys, xs) = (values(0), values(1));
        let cell = |y: &str, x: &str| {
            let variant =
                sweep.variants.iter().find(|v| crate::harness::sweep::show(&v.values[0].1) == y && crate::harness::sweep::show(&v.values[1].1) == x)?;
            let mine: Vec<f64> = points.iter().filter(|p| p.variant == variant.name).map(|p| 100.0 * p.test).collect();
            (!mine.is_empty()).then(|| mine.iter().sum::<f64>() / mine.len() as f64)
        };
        let cells = ys.iter().map(|y| xs.iter().map(|x| cell(y, x)).collect()).collect();
        let title = format!("{method}: test {metric} (%), mean over seeds and modality rows");
        let name = stem("heatmap");
        save(&HeatMap { title, x_desc: labels[1].clone(), y_desc: labels[0].clone(), x_labels: xs, y_labels: ys, cells }, dir, &name)?;
        files.extend([format!("{name}.png"), format!("{name}.svg")]);
    }
    Ok(files)
}
