//! `index.html`: a report on one self-contained page (no network, figures
//! inlined as SVG), the tables in the order the report wrote them, each
//! with its note and links to its CSV and LaTeX files, then the figures,
//! the hardware and the run timings.

use super::table::Table;
use anyhow::{Context, Result};
use std::path::Path;

/// One table of the page: its file stem, heading, cells and note.
pub struct PageTable {
    pub stem: String,
    pub title: String,
    pub table: Table,
    pub note: String,
}

/// What the page shows.
pub struct Page<'a> {
    pub suite: &'a str,
    pub tables: &'a [PageTable],
    /// SVG file names under the report folder, in the order written.
    pub figures: &'a [String],
    pub hardware: &'a str,
    pub timings: &'a Table,
}

/// The name of the page in a report folder.
pub const PAGE_FILE: &str = "index.html";

const STYLE: &str = "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}\
th{background:#f2f2f2}figure{margin:2em 0}figure svg{max-width:100%;height:auto}nav a{margin-right:1em}\
p.note{font-size:13px;color:#444;white-space:pre-line}code{background:#f4f4f4;padding:0 3px}";

/// Writes `index.html` into `dir`, reading the SVG figures from there.
pub fn write_page(page: &Page, dir: &Path) -> Result<()> {
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{0}: cmkm report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{0}</h1>\n<nav>",
        escape(page.suite)
    );
    for t in page.tables {
        html.push_str(&format!("<a href=\"#{}\">{}</a>", t.stem, escape(&t.stem.replace('_', " "))));
    }
    html.push_str("<a href=\"#figures\">figures</a><a href=\"#hardware\">hardware</a><a href=\"#timings\">timings</a></nav>\n");
    for t in page.tables {
        html.push_str(&format!("<section id=\"{}\">\n<h2>{}</h2>\n", t.stem, escape(&t.title)));
        html.push_str(&table_html(&t.table));
        html.push_str(&format!("<p class=\"note\">{}</p>\n", note_html(&t.note)));
        html.push_str(&format!(
            "<p>Files: <a href=\"{0}.csv\">{0}.csv</a> · <a href=\"{0}.tex\">{0}.tex</a> · <a href=\"{0}.md\">{0}.md</a></p>\n</section>\n",
            t.stem
        ));
    }
    html.push_str("<section id=\"figures\">\n<h2>Figures</h2>\n");
    for f in page.figures {
        let path = dir.join(f);
        let svg = std::fs::read_to_string(&path).with_context(|| format!("{}: cannot read the figure", path.display()))?;
        let svg = svg.find("<svg").map_or(svg.as_str(), |at| &svg[at..]);
        let png = f.trim_end_matches(".svg");
        html.push_str(&format!("<figure>\n{svg}\n<figcaption>{f} (<a href=\"{png}.png\">PNG</a>)</figcaption>\n</figure>\n"));
    }
    html.push_str("</section>\n");
    html.push_str(&format!("<section id=\"hardware\">\n<h2>Hardware</h2>\n<p>{}</p>\n</section>\n", escape(page.hardware)));
    html.push_str("<section id=\"timings\">\n<h2>Timings</h2>\n<details><summary>Every finished run's time (timings.csv)</summary>\n");
    html.push_str(&table_html(page.timings));
    html.push_str("</details>\n</section>\n</body>\n</html>\n");
    crate::fsutil::write_atomic(&dir.join(PAGE_FILE), html.as_bytes())
}

fn table_html(t: &Table) -> String {
    let row = |cells: &[String], tag: &str| format!("<tr>{}</tr>\n", cells.iter().map(|c| format!("<{tag}>{}</{tag}>", escape(c))).collect::<String>());
    let mut out = format!("<table>\n<thead>{}</thead>\n<tbody>\n", row(&t.headers, "th"));
    for r in &t.rows {
        out.push_str(&row(r, "td"));
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// A Markdown note as HTML: escaped, `code` spans and **bold** kept.
fn note_html(note: &str) -> String {
    let mut out = String::new();
    for (i, part) in escape(note.trim()).split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("<code>{part}</code>"));
        } else {
            for (j, b) in part.split("**").enumerate() {
                if j % 2 == 1 {
                    out.push_str(&format!("<strong>{b}</strong>"));
                } else {
                    out.push_str(b);
                }
            }
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_notes_are_escaped_html() {
        let mut t = Table::new(&["Method", "Accuracy"]);
        t.push(vec!["a<b".into(), "97.67 ± 0.50".into()]);
        assert_eq!(
            table_html(&t),
            "<table>\n<thead><tr><th>Method</th><th>Accuracy</th></tr>\n</thead>\n<tbody>\n<tr><td>a&lt;b</td><td>97.67 ± 0.50</td></tr>\n</tbody>\n</table>\n"
        );
        assert_eq!(note_html("the `x` is **bold** & fine\n"), "the <code>x</code> is <strong>bold</strong> &amp; fine");
    }
}
