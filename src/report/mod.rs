//! Reports: a suite's finished runs aggregated into the paper's
//! table with the paper's numbers beside ours, retrieval and label-fraction
//! tables (Markdown, CSV, LaTeX), plots (PNG, SVG), and `compare` of the
//! same runs from two machines or versions.

pub mod aggregate;
pub mod claims;
pub mod collect;
pub mod compare;
pub mod frame;
pub mod page;
pub mod paper;
pub mod plots;
pub mod suite_tables;
pub mod sweeps;
pub mod table;

use crate::data::declaration::MainMetric;
use crate::harness::runner::Prepared;
use crate::protocols::fine_tuning::FrozenEncoders;
use anyhow::{Context, Result};
use frame::Frame;
use paper::PaperColumn;
use std::path::{Path, PathBuf};

/// What `cmkm report` wrote.
#[derive(Debug)]
pub struct ReportSummary {
    pub dir: PathBuf,
    pub files: Vec<String>,
    /// Planned runs not finished (failed ones are also listed by label).
    pub missing: usize,
    pub failed: Vec<String>,
}

/// Writes the report of a suite's finished runs to `<reports>/<suite>/`.
pub fn write_report(p: &Prepared, reports: &Path) -> Result<ReportSummary> {
    let collected = collect::collect(p)?;
    let chosen = sweeps::choose(&p.suite.sweeps, &collected.classification)?;
    let variants = collected.classification.clone();
    // Everything but the sweep tables sees a swept method as its chosen variant.
    let c = collect::Collected {
        classification: chosen.main_view(&collected.classification)?,
        retrieval: chosen.main_view(&collected.retrieval)?,
        fractions: chosen.main_view(&collected.fractions)?,
        curves: chosen.main_view(&collected.curves)?,
        ..collected
    };
    let name = &p.suite.decl.name;
    let dir = reports.join(name);
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create the report folder", dir.display()))?;
    crate::fsutil::remove_leftovers(&dir, crate::fsutil::PARTIAL_PREFIX)?; // of a report killed while writing
    let metric = match p.dataset.decl.main_metric {
        MainMetric::Accuracy => "Accuracy",
        MainMetric::F1Macro => "Macro F1",
    };
    let column = PaperColumn::for_suite(p.dataset.decl.format, &p.suite.decl.protocol);
    let mut files = vec![];
    let mut page_tables = vec![];
    let mut table = |t: table::Table, stem: &str, title: &str, note: &str| -> Result<()> {
        t.write_all(&dir, stem, title, note)?;
        files.extend(["md", "csv", "tex"].map(|e| format!("{stem}.{e}")));
        page_tables.push(page::PageTable { stem: stem.into(), title: title.into(), table: t, note: note.into() });
        Ok(())
    };
    let groups = suite_tables::main_groups(&c.classification)?;
    table(suite_tables::main_table(&groups, metric, column), "main_table", &format!("{name}: {metric} on the test split"), &main_note(p, column, &c, &chosen))?;
    let claim_rows = claims::claim_rows(p, column, &chosen)?;
    if !claim_rows.is_empty() {
        table(claims::claims_table(&claim_rows), "claims", &format!("{name}: do the paper's orderings hold? ({metric}, A minus B)"), claims::CLAIMS_NOTE)?;
    }
    if c.retrieval.height() > 0 {
        table(suite_tables::retrieval_table(&c.retrieval)?, "retrieval", &format!("{name}: activity retrieval"), RETRIEVAL_NOTE)?;
    }
    if c.fractions.height() > 0 {
        table(
            suite_tables::fractions_table(&c.fractions)?,
            "label_fractions",
            &format!("{name}: {metric} with a fraction of the train labels"),
            &fractions_note(&c.coinciding),
        )?;
    }
    let mut sweep_figures = vec![];
    for (method, sweep) in &p.suite.sweeps {
        let points = sweeps::sweep_points(p, sweep, &variants)?;
        let picked = chosen.by_method.get(method).map(String::as_str);
        let stem = format!("sweep_{}", file_stem(method));
        table(
            sweeps::sweep_table(sweep, &points, picked, metric),
            &stem,
            &format!("{name}: the sweep of {method}"),
            &sweeps::sweep_note(method, sweep, picked),
        )?;
        sweep_figures.extend(plots::sweep_figures(method, sweep, &points, picked, metric, &dir)?);
    }
    files.extend(sweep_figures);
    let timings = suite_tables::timings_table(&c.timings)?;
    crate::fsutil::write_atomic(&dir.join("timings.csv"), timings.csv()?.as_bytes())?;
    files.push("timings.csv".into());
    if !c.machines.is_empty() {
        let machines = HardwareFile { machines: &c.machines };
        crate::fsutil::write_atomic(&dir.join("hardware.json"), serde_json::to_string_pretty(&machines)?.as_bytes())?;
        files.push("hardware.json".into());
    }
    files.extend(write_plots(p, &c, &groups, metric, column, &dir)?);
    if !claim_rows.is_empty() {
        let title = format!("{name}: claims, A minus B with 95% bootstrap intervals (diamond: the paper)");
        plots::save(&claims::claim_panels(&claim_rows, title), &dir, "claims")?;
        files.extend(both("claims"));
    }
    let figures: Vec<String> = files.iter().filter(|f| f.ends_with(".svg")).cloned().collect();
    let hardware = if c.machines.is_empty() { "no finished runs".to_string() } else { machines_text(&c.machines) };
    page::write_page(&page::Page { suite: name, tables: &page_tables, figures: &figures, hardware: &hardware, timings: &timings }, &dir)?;
    files.push(page::PAGE_FILE.into());
    Ok(ReportSummary { dir, files, missing: c.missing, failed: c.failed })
}

/// The label-fraction table's note, saying which fractions drew the very
/// same subsets (and so share one training per repetition).
fn fractions_note(coinciding: &[(f64, f64)]) -> String {
    let mut note = "Mean ± sample standard deviation over seeds and repetitions; each subset keeps at least one sample per class.\n".to_string();
    if !coinciding.is_empty() {
        let pairs: Vec<String> =
            coinciding.iter().map(|(f, same)| format!("{}% = {}%", suite_tables::fraction_label(*f), suite_tables::fraction_label(*same))).collect();
        note.push_str(&format!(
            "\nOn this split these fractions keep the same number of samples per class, hence the same subsets at each repetition: {}. Each was trained once and its result stands for both.\n",
            pairs.join(", ")
        ));
    }
    note
}

const RETRIEVAL_NOTE: &str = "Queries: the test split; gallery: the train split; cosine similarity of frozen encoder features (cross-modal settings use the CMC projection space). Mean ± sample standard deviation over seeds. This protocol is ours: the paper does not state its variant.\n";

/// A method name as part of a file name: letters, digits, `-` and `_`.
pub(crate) fn file_stem(name: &str) -> String {
    name.chars().map(|ch| if ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' { ch } else { '_' }).collect()
}

fn main_note(p: &Prepared, column: Option<PaperColumn>, c: &collect::Collected, chosen: &sweeps::Chosen) -> String {
    let frozen = match p.suite.decl.evaluations.frozen {
        FrozenEncoders::Eval => "frozen encoders",
        FrozenEncoders::Training => "frozen encoders in training mode as the reference runs them (`frozen: training`: batch statistics, dropout)",
    };
    let mut note = format!(
        "Mean ± sample standard deviation over seeds {:?}; protocol `{}`. SSL rows: {frozen} + evaluation heads (fine-tuning); supervised rows: trained end to end.\n",
        p.suite.decl.seeds, p.suite.decl.protocol
    );
    if let Some(col) = column {
        note.push_str(&format!(
            "\"Paper\" is the reference's reported {} (docs/method.md section 9); \"Difference\" is ours minus the paper's, in points.\n",
            col.title()
        ));
    }
    match (&p.dataset.decl.synthetic, p.dataset.decl.format) {
        (None, _) => {}
        (Some(_), crate::data::declaration::Format::UtdMhad) => note.push_str("\nThis suite ran on the **synthetic** UTD-MHAD stand-in (the project's generator), not the real recordings: the paper column is a reference for scale only, not a target.\n"),
        (Some(_), format) => note.push_str(&format!(
            "\nThis suite ran on **synthetic** data: the project's motion generator written in the {format:?} format (`{}`), not real recordings.\n",
            p.dataset.decl.name
        )),
    }
    if let Some(e) = p.suite.decl.epochs {
        note.push_str(&format!("\nEvery method was trained for {e} epochs (suite override), not the paper's schedules.\n"));
    }
    for (method, variant) in &chosen.by_method {
        note.push_str(&format!(
            "\n`{method}` is swept: its rows here (and in the claims and the other tables) are the variant chosen on the validation split, `{variant}` (sweep_{}.md lists every variant).\n",
            file_stem(method)
        ));
    }
    if c.missing > 0 {
        note.push_str(&format!("\n{} planned run(s) have not finished", c.missing));
        if !c.failed.is_empty() {
            note.push_str(&format!("; failed: {}", c.failed.join(", ")));
        }
        note.push_str(".\n");
    }
    if !c.machines.is_empty() {
        note.push_str(&format!("\nHardware: {}.\n", machines_text(&c.machines)));
    }
    note
}

/// `hardware.json`: every machine the report's runs ran on.
#[derive(serde::Serialize)]
struct HardwareFile<'a> {
    machines: &'a [collect::MachineRuns],
}

/// The machines the runs ran on, each with its run count when there are several.
fn machines_text(machines: &[collect::MachineRuns]) -> String {
    let text: Vec<String> = machines
        .iter()
        .map(|m| {
            let runs = if machines.len() > 1 { format!(" for {} runs", m.runs) } else { String::new() };
            format!("{}{runs}", m.hardware.describe())
        })
        .collect();
    text.join("; ")
}

fn write_plots(
    p: &Prepared,
    c: &collect::Collected,
    groups: &[aggregate::Group],
    metric: &str,
    column: Option<PaperColumn>,
    dir: &Path,
) -> Result<Vec<String>> {
    let name = &p.suite.decl.name;
    let mut files = vec![];
    if !groups.is_empty() {
        let bars = groups
            .iter()
            .map(|g| {
                let paper = column.and_then(|col| paper::paper_value(col, &g.keys[0], &g.keys[1]));
                (format!("{} · {}", g.keys[0], g.keys[2]), 100.0 * g.stats[0].mean, 100.0 * g.stats[0].std, paper)
            })
            .collect();
        plots::save(
            &plots::MainBars { title: format!("{name}: {metric}, bars ours (mean ± std over seeds), diamonds the paper"), metric: metric.into(), bars },
            dir,
            "main_metric",
        )?;
        files.extend(both("main_metric"));
        if let Some(best) = groups.iter().max_by(|a, b| a.stats[0].mean.total_cmp(&b.stats[0].mean)) {
            let counts = summed_confusion(p, &c.classification, &best.keys[2], &best.keys[0])?;
            let title = format!("{name}: confusion of the best row, {} · {} (all seeds)", best.keys[0], best.keys[2]);
            plots::save(&plots::ConfusionMatrix { title, classes: p.dataset.decl.classes.clone(), counts }, dir, "confusion_best")?;
            files.extend(both("confusion_best"));
        }
    }
    if c.fractions.height() > 0 {
        plots::save(&plots::fraction_curves(&c.fractions, metric, name)?, dir, "label_fractions")?;
        files.extend(both("label_fractions"));
    }
    if c.retrieval.height() > 0 {
        plots::save(&plots::retrieval_curves(&c.retrieval, name)?, dir, "retrieval")?;
        files.extend(both("retrieval"));
    }
    if c.curves.height() > 0 {
        plots::save(&plots::loss_curves(&c.curves, name)?, dir, "ssl_loss")?;
        files.extend(both("ssl_loss"));
    }
    Ok(files)
}

fn both(stem: &str) -> [String; 2] {
    [format!("{stem}.png"), format!("{stem}.svg")]
}

/// The confusion matrices of one main-table row, summed over its seeds.
fn summed_confusion(p: &Prepared, classification: &Frame, method: &str, modality: &str) -> Result<Vec<Vec<f64>>> {
    let n = p.dataset.decl.classes.len();
    let mut total = vec![vec![0.0; n]; n];
    let (methods, modalities, runs) = (classification.text("method")?, classification.text("modality")?, classification.text("run")?);
    for i in 0..classification.height() {
        if methods[i] != method || modalities[i] != modality {
            continue;
        }
        let dir = p.store.dir(&runs[i]);
        let confusion = crate::protocols::read_metrics(&dir)?.confusion; // n x n: checked when collected
        for (t, row) in confusion.iter().enumerate() {
            for (q, &count) in row.iter().enumerate() {
                total[t][q] += count as f64;
            }
        }
    }
    Ok(total)
}
