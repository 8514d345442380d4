//! `cmkm train`: one method on one dataset.

use anyhow::{bail, Context, Result};
use cmkm_lib::data::{Dataset, DatasetDecl};
use cmkm_lib::methods::config::MethodConfig;
use cmkm_lib::methods::{train, TrainOptions};
use std::path::PathBuf;

use crate as cmkm_lib;

/// Arguments of `cmkm train`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Method declaration (YAML), e.g. experiments/methods/cmc-cmkm.yaml.
    pub method: PathBuf,
    #[command(flatten)]
    pub data: super::DataArgs,
    /// Run folder [default: results/train/<method>-seed<seed>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override the method's number of epochs (quick checks).
    #[arg(long, value_parser = super::at_least_one)]
    pub epochs: Option<usize>,
    /// CMC-CMKM: SimCLR run folder of a modality, as MODALITY=DIR
    /// (overrides the method's `pretrained`; repeatable).
    #[arg(long, value_name = "MODALITY=DIR")]
    pub pretrained: Vec<String>,
    /// No per-epoch progress lines.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: TrainArgs) -> Result<i32> {
    let mut method = MethodConfig::from_file(&args.method)?;
    if let Some(e) = args.epochs {
        method.schedule.epochs = e;
    }
    for p in &args.pretrained {
        let Some((m, dir)) = p.split_once('=') else { bail!("--pretrained expects MODALITY=DIR, got '{p}'") };
        method.pretrained.insert(m.to_string(), PathBuf::from(dir));
    }
    let decl = DatasetDecl::from_file(&args.data.dataset)?;
    let ds = Dataset::load(&decl, &method.modalities)?;
    let out = args.out.unwrap_or_else(|| PathBuf::from(format!("results/train/{}-seed{}", method.name, args.data.seed)));
    let opts = TrainOptions { protocol: args.data.protocol, seed: args.data.seed, out: out.clone(), quiet: args.quiet, train_subset: None };
    let summary = train(&method, &ds, &opts).with_context(|| format!("training '{}'", method.name))?;
    eprintln!(
        "{}: {} epochs in {:.1} s, best epoch {}, train loss {:.4} -> {:.4}; wrote {}",
        summary.method,
        summary.epochs_run,
        summary.seconds,
        summary.best_epoch,
        summary.first_train_loss,
        summary.last_train_loss,
        out.display()
    );
    if let Some(t) = &summary.test {
        eprintln!("test: accuracy {:.2}%, macro F1 {:.2}%", 100.0 * t.accuracy, 100.0 * t.f1_macro);
    }
    outln!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(0)
}
