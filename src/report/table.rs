//! A plain table of strings and its three renderings: Markdown (README-style
//! reading), CSV (spreadsheets, other tools) and LaTeX (papers).

use anyhow::Result;
use std::path::Path;

/// Column headers and rows of already formatted cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Table { headers: headers.iter().map(|h| h.to_string()).collect(), rows: vec![] }
    }

    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.headers.len());
        self.rows.push(row);
    }

    /// A GitHub-flavoured Markdown table.
    pub fn markdown(&self) -> String {
        let line = |cells: &[String]| format!("| {} |\n", cells.iter().map(|c| c.replace('|', "\\|")).collect::<Vec<_>>().join(" | "));
        let mut out = line(&self.headers);
        out.push_str(&format!("|{}\n", " --- |".repeat(self.headers.len())));
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }

    /// RFC 4180 CSV (the `csv` crate quotes what needs quoting).
    pub fn csv(&self) -> Result<String> {
        let mut w = csv::Writer::from_writer(vec![]);
        w.write_record(&self.headers)?;
        for r in &self.rows {
            w.write_record(r)?;
        }
        Ok(String::from_utf8(w.into_inner()?)?)
    }

    /// A `booktabs` tabular; `±` becomes `$\pm$` and special characters are
    /// escaped.
    pub fn latex(&self) -> String {
        let row = |cells: &[String]| format!("{} \\\\\n", cells.iter().map(|c| latex_escape(c)).collect::<Vec<_>>().join(" & "));
        let mut out = format!("\\begin{{tabular}}{{l{}}}\n\\toprule\n", "r".repeat(self.headers.len().saturating_sub(1)));
        out.push_str(&row(&self.headers));
        out.push_str("\\midrule\n");
        for r in &self.rows {
            out.push_str(&row(r));
        }
        out.push_str("\\bottomrule\n\\end{tabular}\n");
        out
    }

    /// Writes `<stem>.md`, `<stem>.csv` and `<stem>.tex` under `dir`, each
    /// atomically; the Markdown gets `title` as a heading and `note` below.
    pub fn write_all(&self, dir: &Path, stem: &str, title: &str, note: &str) -> Result<()> {
        let md = format!("# {title}\n\n{}\n{note}\n", self.markdown());
        crate::fsutil::write_atomic(&dir.join(format!("{stem}.md")), md.as_bytes())?;
        crate::fsutil::write_atomic(&dir.join(format!("{stem}.csv")), self.csv()?.as_bytes())?;
        crate::fsutil::write_atomic(&dir.join(format!("{stem}.tex")), self.latex().as_bytes())
    }
}

fn latex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '±' => out.push_str("$\\pm$"),
            '→' => out.push_str("$\\rightarrow$"),
            '\\' => out.push_str("\\textbackslash{}"),
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_three_formats() {
        let mut t = Table::new(&["Approach", "Accuracy"]);
        t.push(vec!["CMC_CMKM".into(), "97.67 ± 0.50".into()]);
        assert_eq!(t.markdown(), "| Approach | Accuracy |\n| --- | --- |\n| CMC_CMKM | 97.67 ± 0.50 |\n");
        assert_eq!(t.csv().unwrap(), "Approach,Accuracy\nCMC_CMKM,97.67 ± 0.50\n");
        assert!(t.latex().contains("CMC\\_CMKM & 97.67 $\\pm$ 0.50 \\\\"), "{}", t.latex());
    }
}
