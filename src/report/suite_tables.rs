//! The report's tables: the paper's main table with the paper's numbers
//! beside ours, retrieval, label fractions and run timings.

use super::aggregate::{percent, summarise, Group};
use super::frame::Frame;
use super::paper::{paper_value, row_order, PaperColumn};
use super::table::Table;
use anyhow::{Context, Result};

/// Main-table groups (modality, approach, method) sorted as in the paper:
/// by modality, then the paper's row order, then method name.
pub fn main_groups(classification: &Frame) -> Result<Vec<Group>> {
    let mut groups = summarise(classification, &["modality", "approach", "method"], &[], &["main", "accuracy", "f1_macro"])?;
    groups.sort_by(|a, b| {
        let key = |g: &Group| row_order(&g.keys[0], &g.keys[1], &g.keys[2]);
        key(a).cmp(&key(b))
    });
    Ok(groups)
}

/// The paper's table: our main metric (mean ± std over seeds) beside the
/// paper's number and the difference in points.
pub fn main_table(groups: &[Group], metric: &str, column: Option<PaperColumn>) -> Table {
    let ours = format!("{metric} (%)");
    let mut t = Table::new(&["Modality", "Approach", "Method", &ours, "Seeds", "Paper (%)", "Difference"]);
    for g in groups {
        let stat = g.stats[0];
        let paper = column.and_then(|c| paper_value(c, &g.keys[0], &g.keys[1]));
        let (paper_cell, diff) = match paper {
            Some(p) => (format!("{p:.2}"), format!("{:+.2}", 100.0 * stat.mean - p)),
            None => ("—".to_string(), "—".to_string()),
        };
        t.push(vec![g.keys[0].clone(), g.keys[1].clone(), g.keys[2].clone(), percent(stat), stat.n.to_string(), paper_cell, diff]);
    }
    t
}

/// Retrieval per method and setting (modality, fused, cross-modal).
pub fn retrieval_table(retrieval: &Frame) -> Result<Table> {
    let groups = summarise(retrieval, &["method", "approach", "setting"], &[], &["p_at_1", "p_at_5", "p_at_10", "map"])?;
    let mut t = Table::new(&["Method", "Approach", "Setting", "P@1 (%)", "P@5 (%)", "P@10 (%)", "mAP (%)"]);
    for g in groups {
        let mut row = g.keys.clone();
        row[2] = g.keys[2].replace("->", " → ");
        row.extend(g.stats.iter().map(|s| percent(*s)));
        t.push(row);
    }
    Ok(t)
}

/// Label fractions: one row per method and modality set, one column per
/// fraction, mean ± std over seeds and repetitions.
pub fn fractions_table(fractions: &Frame) -> Result<Table> {
    let groups = summarise(fractions, &["modality", "approach", "method"], &["fraction"], &["main"])?;
    let mut levels: Vec<f64> = groups.iter().map(|g| g.numeric_keys[0]).collect();
    levels.sort_by(f64::total_cmp);
    levels.dedup();
    let mut headers = vec!["Modality".to_string(), "Approach".to_string(), "Method".to_string()];
    headers.extend(levels.iter().map(|f| format!("{}% labels", fraction_label(*f))));
    let mut t = Table { headers, rows: vec![] };
    let mut rows: Vec<(Vec<String>, Vec<String>)> = vec![];
    for g in &groups {
        let i = match rows.iter().position(|r| r.0 == g.keys) {
            Some(i) => i,
            None => {
                rows.push((g.keys.clone(), vec!["—".to_string(); levels.len()]));
                rows.len() - 1
            }
        };
        let j = levels.iter().position(|l| *l == g.numeric_keys[0]).context("a fraction missing from the table's columns")?;
        rows[i].1[j] = percent(g.stats[0]);
    }
    rows.sort_by(|a, b| {
        let key = |k: &Vec<String>| row_order(&k[0], &k[1], &k[2]);
        key(&a.0).cmp(&key(&b.0))
    });
    for (mut keys, cells) in rows {
        keys.extend(cells);
        t.push(keys);
    }
    Ok(t)
}

/// `0.05` -> `5`, `0.125` -> `12.5`.
pub fn fraction_label(f: f64) -> String {
    let p = 100.0 * f;
    if (p - p.round()).abs() < 1e-9 {
        format!("{}", p.round() as i64)
    } else {
        format!("{p}")
    }
}

/// Every finished run with its wall time and per-epoch time: what `cmkm
/// plan` uses to estimate suites that have not run yet.
pub fn timings_table(timings: &Frame) -> Result<Table> {
    let mut t = Table::new(&["run", "label", "step", "method", "epochs", "seconds", "seconds_per_epoch", "threads", "cpu"]);
    let (run, label, step, method, cpu) = (timings.text("run")?, timings.text("label")?, timings.text("step")?, timings.text("method")?, timings.text("cpu")?);
    let (seconds, epochs, threads) = (timings.numbers("seconds")?, timings.numbers("epochs")?, timings.numbers("threads")?);
    for i in 0..timings.height() {
        let per_epoch = if epochs[i] > 0.0 { format!("{:.3}", seconds[i] / epochs[i]) } else { String::new() };
        t.push(vec![
            run[i].clone(),
            label[i].clone(),
            step[i].clone(),
            method[i].clone(),
            format!("{}", epochs[i]),
            format!("{:.3}", seconds[i]),
            per_epoch,
            format!("{}", threads[i]),
            cpu[i].clone(),
        ]);
    }
    Ok(t)
}
