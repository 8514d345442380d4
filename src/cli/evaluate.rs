//! `cmkm evaluate ...`: the three evaluation protocols on a run's encoders.

use crate as cmkm_lib;
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use cmkm_lib::data::{Dataset, DatasetDecl};
use cmkm_lib::methods::config::MethodConfig;
use cmkm_lib::methods::{devices, read_record};
use cmkm_lib::protocols::fine_tuning::{fine_tune_encoders, fine_tune_frozen, FrozenEncoders};
use cmkm_lib::protocols::label_fractions::{frozen_label_fractions, random_encoders, supervised_label_fractions, FractionSummary, PAPER_FRACTIONS};
use cmkm_lib::protocols::retrieval::{retrieval_settings, write_retrieval};
use cmkm_lib::protocols::EncoderSet;
use cmkm_lib::protocols::{HeadTraining, LabelSubsets};
use cmkm_lib::training::{Progress, TrainData};
use std::path::{Path, PathBuf};

/// Options shared by every protocol.
#[derive(Args, Debug)]
pub struct Common {
    #[command(flatten)]
    pub data: super::DataArgs,
    /// Output folder [default: <run>/eval/<protocol>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Use only these modalities of the encoders (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub modalities: Vec<String>,
    /// Override the head's number of epochs (quick checks).
    #[arg(long, value_parser = super::at_least_one)]
    pub epochs: Option<usize>,
    /// The head on one modality's frozen encoder (fine-tuning and label
    /// fractions; several modalities get the fusion classifier).
    #[arg(long, value_enum, default_value = "linear")]
    pub head: cmkm_lib::models::EvaluationHead,
    /// How the frozen encoders run while the head trains (fine-tuning
    /// without --full, label fractions of a run or of random encoders):
    /// `eval` (cmkm's: evaluation mode, features computed once) or
    /// `training` (the reference's: batch statistics and dropout, running
    /// statistics moving; the encoders run every step, much slower).
    #[arg(long, value_enum, default_value = "eval")]
    pub frozen: FrozenEncoders,
    /// No per-epoch progress lines.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Subcommand, Debug)]
pub enum EvaluateCommand {
    /// Fine-tuning: frozen encoders + evaluation heads trained on the train
    /// split, selected on validation, tested once; writes metrics.json and
    /// predictions.csv.
    FineTune {
        /// Run folder whose encoders are evaluated.
        #[arg(long)]
        run: PathBuf,
        #[command(flatten)]
        common: Common,
        /// Also train the encoders (full fine-tuning).
        #[arg(long)]
        full: bool,
        /// Run the frozen encoders every step instead of caching their
        /// features (same result, slower).
        #[arg(long)]
        uncached: bool,
    },
    /// Activity retrieval: test queries against the train gallery by cosine
    /// similarity, per modality, fused and cross-modal; precision@1/5/10, mAP.
    Retrieval {
        #[arg(long)]
        run: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Label fractions: fine-tuning on 1-50% of the train labels per class,
    /// repeated; mean and standard deviation per fraction. Encoders from a
    /// run, random encoders of a method, or a supervised method trained on
    /// each subset.
    LabelFractions {
        /// Run folder whose frozen encoders are evaluated.
        #[arg(long, conflicts_with_all = ["random", "supervised"])]
        run: Option<PathBuf>,
        /// Randomly initialised encoders of this method (baseline).
        #[arg(long, conflicts_with = "supervised")]
        random: Option<PathBuf>,
        /// Train this supervised method on each subset (baseline).
        #[arg(long)]
        supervised: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
        /// Fractions of the train labels.
        #[arg(long, value_delimiter = ',', default_values_t = PAPER_FRACTIONS, value_parser = super::label_fraction)]
        fractions: Vec<f64>,
        /// Repetitions per fraction (paper: 10).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
        repetitions: u64,
    },
}

fn load_data(c: &Common, modalities: &[String]) -> Result<TrainData> {
    let decl = DatasetDecl::from_file(&c.data.dataset)?;
    let ds = Dataset::load(&decl, modalities)?;
    TrainData::new(&ds, modalities, &c.data.protocol)
}

fn encoders(run: &Path, c: &Common) -> Result<(EncoderSet, TrainData)> {
    let record = read_record(run)?;
    let decl = DatasetDecl::from_file(&c.data.dataset)?;
    let (_, device) = devices();
    let mut set = EncoderSet::from_run(run, decl.classes.len(), &device)?;
    if !c.modalities.is_empty() {
        set = set.restrict(&c.modalities)?;
    }
    if record.dataset != decl.name {
        eprintln!("note: {} was trained on '{}', evaluated on '{}'", run.display(), record.dataset, decl.name);
    }
    let data = load_data(c, &set.modalities)?;
    set.check(&data)?;
    Ok((set, data))
}

/// How the heads train on `modalities` encoders: the paper's schedule with
/// `--epochs`, `--head`, `--frozen` and `--seed`.
fn head_training(c: &Common, modalities: usize) -> HeadTraining {
    HeadTraining::paper(modalities, c.epochs, c.head, c.frozen, c.data.seed)
}

/// `<base>/eval/<name>`, or `<name>-frozen-training` with `--frozen training`.
fn out_dir(c: &Common, base: &Path, name: &str) -> PathBuf {
    let name = match c.frozen {
        FrozenEncoders::Eval => name.to_string(),
        FrozenEncoders::Training => format!("{name}-frozen-training"),
    };
    c.out.clone().unwrap_or_else(|| base.join("eval").join(name))
}

/// Errors when `--frozen training` was given where no frozen encoder
/// trains a head (`why`), rather than ignoring it.
fn not_frozen(c: &Common, why: &str) -> Result<()> {
    if c.frozen != FrozenEncoders::Eval {
        bail!("--frozen applies to frozen encoders under a training head; {why}");
    }
    Ok(())
}

/// Label fractions on frozen encoders, in the mode `--frozen` picks.
fn label_fractions_on(set: &EncoderSet, data: &TrainData, common: &Common, fractions: &[f64], repetitions: u64, out: &Path) -> Result<Vec<FractionSummary>> {
    let (_, device) = devices();
    let training = head_training(common, set.modalities.len());
    Ok(frozen_label_fractions(set, data, &LabelSubsets { fractions, repetitions }, &training, &device, out)?.1)
}

pub fn run(cmd: EvaluateCommand) -> Result<i32> {
    match cmd {
        EvaluateCommand::FineTune { run, common, full, uncached } => {
            if full {
                not_frozen(&common, "--full trains the encoders")?;
            }
            let (set, data) = encoders(&run, &common)?;
            let training = head_training(&common, set.modalities.len());
            let progress = Progress { label: "fine-tune".into(), quiet: common.quiet };
            let result = if full || uncached {
                fine_tune_encoders(&set, &data, &data.split.train, &training, full, &progress)?
            } else {
                let (_, device) = devices();
                fine_tune_frozen(&set, &data, &data.split.train, &training, &device, &progress)?
            };
            let out = out_dir(&common, &run, if full { "fine-tune-full" } else { "fine-tune" });
            result.write(&out, serde_json::json!({ "encoders": set.source, "modalities": set.modalities, "full": full, "frozen": common.frozen }))?;
            eprintln!("test accuracy {:.2}%, macro F1 {:.2}%; wrote {}", 100.0 * result.metrics.accuracy, 100.0 * result.metrics.f1_macro, out.display());
            Ok(0)
        }
        EvaluateCommand::Retrieval { run, common } => {
            not_frozen(&common, "retrieval trains no head")?;
            let (set, data) = encoders(&run, &common)?;
            let (_, device) = devices();
            let settings = retrieval_settings(&set, &data, &device)?;
            let out = out_dir(&common, &run, "retrieval");
            write_retrieval(&out, &settings, &data)?;
            for s in &settings {
                let m = &s.metrics;
                outln!(
                    "{:<20} P@1 {:.3}  P@5 {:.3}  P@10 {:.3}  mAP {:.3}",
                    s.name,
                    m.precision_at_1,
                    m.precision_at_5,
                    m.precision_at_10,
                    m.mean_average_precision
                );
            }
            Ok(0)
        }
        EvaluateCommand::LabelFractions { run, random, supervised, common, fractions, repetitions } => {
            let (summary, out) = match (run, random, supervised) {
                (Some(run), None, None) => {
                    let (set, data) = encoders(&run, &common)?;
                    let out = out_dir(&common, &run, "label-fractions");
                    (label_fractions_on(&set, &data, &common, &fractions, repetitions, &out)?, out)
                }
                (None, Some(method), None) => {
                    let mut m = MethodConfig::from_file(&method)?;
                    if !common.modalities.is_empty() {
                        m.modalities = common.modalities.clone();
                    }
                    let data = load_data(&common, &m.modalities)?;
                    let (_, device) = devices();
                    let set = random_encoders(&m, &data, common.data.seed, &device)?;
                    let out = out_dir(&common, &PathBuf::from(format!("results/eval/random-{}", m.name)), "label-fractions");
                    (label_fractions_on(&set, &data, &common, &fractions, repetitions, &out)?, out)
                }
                (None, None, Some(method)) => {
                    not_frozen(&common, "--supervised trains its encoders")?;
                    let mut m = MethodConfig::from_file(&method)?;
                    if let Some(e) = common.epochs {
                        m.schedule.epochs = e;
                    }
                    let decl = DatasetDecl::from_file(&common.data.dataset)?;
                    let ds = Dataset::load(&decl, &m.modalities)?;
                    let data = TrainData::new(&ds, &m.modalities, &common.data.protocol)?;
                    let out = common.out.clone().unwrap_or_else(|| PathBuf::from(format!("results/eval/{}/label-fractions", m.name)));
                    let subsets = LabelSubsets { fractions: &fractions, repetitions };
                    let (_, summary) = supervised_label_fractions(&m, &ds, &data, &common.data.protocol, &subsets, common.data.seed, &out)?;
                    (summary, out)
                }
                _ => bail!("give one of --run DIR, --random METHOD.yaml or --supervised METHOD.yaml"),
            };
            for s in &summary {
                outln!(
                    "{:>5.1}%  main metric {:.2} +- {:.2} ({} repetitions)",
                    100.0 * s.fraction,
                    100.0 * s.main_metric_mean,
                    100.0 * s.main_metric_std,
                    s.repetitions
                );
            }
            eprintln!("wrote {}", out.join("label_fractions.json").display());
            Ok(0)
        }
    }
}
