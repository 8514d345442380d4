//! Fault injection for the reliability tests (docs/reliability.md): the
//! environment variable `CMKM_FAULT` names one fault, which the process
//! meets at a named point of its work. Unset (always, outside tests),
//! every point is a no-op read of a value parsed once.
//!
//! Forms:
//! - `panic@run:TEXT`, `error@run:TEXT`: a run whose label contains TEXT
//!   panics, or fails with an error, as it starts;
//! - `kill@POINT:N`: the process sends itself SIGKILL on reaching POINT for
//!   the N-th time (1-based). Points: `write` (each atomic file write, after
//!   the bytes and before the rename), `epoch` (the end of each training
//!   epoch), `commit` (a finished run, before its folder moves into place).
//!
//! A malformed `CMKM_FAULT` is an error at the first point, not a silent
//! no-op, so a test cannot pass by misspelling its fault.

use anyhow::{bail, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// One parsed `CMKM_FAULT`.
#[derive(Debug, Clone, PartialEq)]
enum Fault {
    Panic(String),
    Error(String),
    Kill { point: String, at: u64 },
}

const POINTS: [&str; 3] = ["write", "epoch", "commit"];

fn parse(spec: &str) -> Result<Fault> {
    let (what, rest) = spec.split_once('@').unwrap_or((spec, ""));
    let (point, arg) = rest.split_once(':').unwrap_or((rest, ""));
    match (what, point) {
        ("panic", "run") if !arg.is_empty() => Ok(Fault::Panic(arg.to_string())),
        ("error", "run") if !arg.is_empty() => Ok(Fault::Error(arg.to_string())),
        ("kill", p) if POINTS.contains(&p) => match arg.parse::<u64>() {
            Ok(at) if at >= 1 => Ok(Fault::Kill { point: p.to_string(), at }),
            _ => bail!("CMKM_FAULT={spec}: expected kill@{p}:N with N >= 1"),
        },
        _ => bail!("CMKM_FAULT={spec}: expected panic@run:TEXT, error@run:TEXT or kill@POINT:N with POINT one of {POINTS:?}"),
    }
}

fn fault() -> &'static Result<Option<Fault>, String> {
    static FAULT: OnceLock<Result<Option<Fault>, String>> = OnceLock::new();
    FAULT.get_or_init(|| match std::env::var("CMKM_FAULT") {
        Ok(spec) if !spec.is_empty() => parse(&spec).map(Some).map_err(|e| e.to_string()),
        _ => Ok(None),
    })
}

/// The fault planned for the run labelled `label`, met as it starts: an
/// injected panic panics here, an injected error is returned.
pub fn at_run_start(label: &str) -> Result<()> {
    match fault() {
        Err(e) => bail!("{e}"),
        Ok(Some(Fault::Panic(text))) if label.contains(text.as_str()) => panic!("injected panic (CMKM_FAULT) in run '{label}'"),
        Ok(Some(Fault::Error(text))) if label.contains(text.as_str()) => bail!("injected error (CMKM_FAULT) in run '{label}'"),
        _ => Ok(()),
    }
}

/// Counts one pass through `point` ("write", "epoch", "commit") and kills
/// the process with SIGKILL when it is the planned one.
pub fn at(point: &str) {
    static COUNTS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
    let Ok(Some(Fault::Kill { point: planned, at })) = fault() else { return };
    if planned != point {
        return;
    }
    let index = POINTS.iter().position(|p| *p == point).expect("a known point");
    if COUNTS[index].fetch_add(1, Ordering::SeqCst) + 1 == *at {
        kill_self();
    }
}

/// SIGKILL to this process: no destructor, no flush, as from outside.
fn kill_self() -> ! {
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("kill").args(["-KILL", &pid]).status();
    // `kill` is missing or failed: abort is the nearest thing (no unwinding).
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_specifications_parse_or_are_rejected() {
        assert_eq!(parse("panic@run:train cmc").unwrap(), Fault::Panic("train cmc".into()));
        assert_eq!(parse("error@run:x").unwrap(), Fault::Error("x".into()));
        assert_eq!(parse("kill@write:3").unwrap(), Fault::Kill { point: "write".into(), at: 3 });
        for bad in ["kill@write:0", "kill@nowhere:1", "panic@run:", "boom", "kill@epoch:x"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
