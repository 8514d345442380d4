//! The evaluation protocols end to end on the synthetic data (release mode,
//! tiny models and epochs): fine-tuning on cached features equals running
//! the frozen encoders every epoch, each protocol runs for each kind of
//! encoder, and repeats with the same seed are identical. Each test holds
//! the generator lock (`exclusive`), as it draws from burn's process-wide
//! generator beside the other modules' tests.

use crate::common;

use cmkm::methods::config::ScheduleConfig;
use cmkm::methods::devices;
use cmkm::models::EvaluationHead;
use cmkm::protocols::fine_tuning::{fine_tune_cached, fine_tune_encoders, FrozenEncoders};
use cmkm::protocols::label_fractions::run_label_fractions;
use cmkm::protocols::retrieval::retrieval_settings;
use cmkm::protocols::{EncoderSet, HeadTraining, LabelSubsets};
use cmkm::training::{exclusive, Progress, TrainData};
use common::{cmkm, dataset, method, run};
use std::path::Path;

fn schedule(epochs: usize) -> ScheduleConfig {
    ScheduleConfig { epochs, batch_size: 32, lr: 3e-3, plateau_factor: 0.5, plateau_patience: 10, early_stopping_patience: Some(50), grad_clip_norm: None }
}

fn training(epochs: usize, head: EvaluationHead, frozen: FrozenEncoders, seed: u64) -> HeadTraining {
    HeadTraining { schedule: schedule(epochs), head, frozen, seed }
}

fn quiet() -> Progress {
    Progress { label: "test".into(), quiet: true }
}

fn data(modalities: &[&str]) -> TrainData {
    let names: Vec<String> = modalities.iter().map(|s| s.to_string()).collect();
    TrainData::new(dataset(), &names, "cross_subject").unwrap()
}

/// Randomly initialised encoders, seeded (the calling test holds the
/// generator lock).
fn random_set(modalities: &[&str], data: &TrainData) -> EncoderSet {
    let m = method(&format!("name: random\nkind: supervised\nmodalities: {modalities:?}"), modalities);
    let (_, device) = devices();
    device.seed(11);
    EncoderSet::random(&m, &data.shapes, &device).unwrap()
}

#[test]
fn cached_features_give_the_same_fine_tuning_as_running_the_encoders() {
    let _rng = exclusive();
    for (modalities, head) in
        [(&["skeleton"][..], EvaluationHead::Linear), (&["skeleton"][..], EvaluationHead::Mlp), (&["inertial", "skeleton"][..], EvaluationHead::Linear)]
    {
        let data = data(modalities);
        let set = random_set(modalities, &data);
        let (_, device) = devices();
        let features = set.features(&data, &device).unwrap();
        let cached = fine_tune_cached(&features, &data, &data.split.train, &training(4, head, FrozenEncoders::Eval, 3), &quiet()).unwrap();
        let live = fine_tune_encoders(&set, &data, &data.split.train, &training(4, head, FrozenEncoders::Eval, 3), false, &quiet()).unwrap();
        // The same up to float rounding: matrix products over different batch
        // groupings (128 samples when caching, 32 per step when live) round
        // differently in the last bits, which training can amplify slightly.
        let agree = cached.predictions.iter().zip(&live.predictions).filter(|(a, b)| a == b).count();
        assert!(agree as f64 >= 0.95 * cached.predictions.len() as f64, "{modalities:?}: {agree} of {} agree", cached.predictions.len());
        assert!((cached.metrics.accuracy - live.metrics.accuracy).abs() <= 0.02, "{modalities:?}");
        if modalities == ["skeleton"] {
            assert_eq!(cached.predictions, live.predictions, "the co-occurrence encoder is batch-invariant here: exactly equal");
        }
        // Full fine-tuning trains the encoders too, which changes the outcome.
        let full = fine_tune_encoders(&set, &data, &data.split.train, &training(4, head, FrozenEncoders::Eval, 3), true, &quiet()).unwrap();
        assert_eq!(full.predictions.len(), cached.predictions.len());
    }
}

/// The reference's frozen encoders (training mode, gradients stopped):
/// batch statistics and moving running statistics change what the head
/// learns from, the same run repeats exactly, and no gradient reaches an
/// encoder weight.
#[test]
fn frozen_encoders_in_training_mode_normalise_by_batch_and_take_no_gradient() {
    let _rng = exclusive();
    use burn::module::Module;
    let data = data(&["skeleton"]);
    let set = random_set(&["skeleton"], &data);
    let tune = |frozen| fine_tune_encoders(&set, &data, &data.split.train, &training(4, EvaluationHead::Linear, frozen, 3), false, &quiet()).unwrap();
    let (eval, training) = (tune(FrozenEncoders::Eval), tune(FrozenEncoders::Training));
    assert_ne!(eval.predictions, training.predictions, "training mode must change what the head sees");
    assert_eq!(training.predictions, tune(FrozenEncoders::Training).predictions, "and repeat exactly");

    let (train_device, eval_device) = devices();
    let encoder = set.encoders[0].clone().train().no_grad();
    let batch: Vec<usize> = data.split.train.iter().copied().take(8).collect();
    let x = cmkm::training::batches::batch_tensor(&data.clips[0], &batch, &[], None, &train_device);
    let features = encoder.forward(x.clone());
    let head = burn::nn::LinearConfig::new(features.dims()[1], 3).init(&train_device);
    let grads = head.forward(features).sum().backward();
    assert_eq!(burn::optim::GradientsParams::from_grads(grads, &encoder).len(), 0, "no encoder weight gets a gradient");
    // The running statistics moved: in evaluation mode the encoder now
    // computes other features than before that batch.
    let before = set.encoders[0].forward(x.clone().to_device(&eval_device)).into_data();
    let after = encoder.valid().forward(x.to_device(&eval_device)).into_data();
    assert_ne!(before, after);
}

#[test]
fn every_protocol_runs_for_every_kind_of_encoder_and_repeats_exactly() {
    let _rng = exclusive();
    let root = tempfile::tempdir().unwrap();
    let both = ["inertial", "skeleton"];
    let mut runs = vec![];
    for (head, mods) in [
        ("name: sup\nkind: supervised\nmodalities: [skeleton]", &["skeleton"][..]),
        ("name: simclr\nkind: simclr\nmodalities: [inertial]\nloss: {temperature: 0.1}", &["inertial"][..]),
        ("name: cmc\nkind: cmc\nmodalities: [inertial, skeleton]\nloss: {temperature: 0.1}", &both[..]),
    ] {
        let mut m = method(head, mods);
        m.schedule.epochs = 2;
        let dir = root.path().join(&m.name);
        run(&m, &dir);
        runs.push(dir);
    }
    let (_, device) = devices();
    for dir in &runs {
        let set = EncoderSet::from_run(dir, 27, &device).unwrap();
        let names: Vec<&str> = set.modalities.iter().map(String::as_str).collect();
        let data = data(&names);
        let features = set.features(&data, &device).unwrap();
        let a = fine_tune_cached(&features, &data, &data.split.train, &training(3, EvaluationHead::Linear, FrozenEncoders::Eval, 7), &quiet()).unwrap();
        let b = fine_tune_cached(
            &set.features(&data, &device).unwrap(),
            &data,
            &data.split.train,
            &training(3, EvaluationHead::Linear, FrozenEncoders::Eval, 7),
            &quiet(),
        )
        .unwrap();
        assert_eq!(a.metrics, b.metrics, "{}", dir.display());
        if set.kind == "supervised" {
            assert!(a.metrics.accuracy > 2.0 / 27.0, "a head on trained encoders beats chance: {}", a.metrics.accuracy);
        }
        let r1 = retrieval_settings(&set, &data, &device).unwrap();
        let r2 = retrieval_settings(&set, &data, &device).unwrap();
        let names: Vec<&str> = r1.iter().map(|s| s.name.as_str()).collect();
        match set.modalities.len() {
            1 => assert_eq!(names.len(), 1),
            _ => assert_eq!(names, ["inertial", "skeleton", "fused", "inertial->skeleton", "skeleton->inertial"]),
        }
        for (x, y) in r1.iter().zip(&r2) {
            assert_eq!(x.metrics, y.metrics);
            assert!(x.metrics.mean_average_precision > 0.0 && x.metrics.precision_at_1 <= 1.0);
        }
        let fractions = |seed| {
            run_label_fractions(
                &data,
                &LabelSubsets { fractions: &[0.1, 0.5], repetitions: 2 },
                seed,
                |subset, _, _| {
                    Ok(fine_tune_cached(&features, &data, subset, &training(2, EvaluationHead::Linear, FrozenEncoders::Eval, seed), &quiet())?.metrics)
                },
                no_reuse,
            )
            .unwrap()
        };
        let (runs_a, summary_a) = fractions(1);
        let (runs_b, _) = fractions(1);
        assert_eq!(runs_a.len(), 4);
        assert_eq!(format!("{runs_a:?}"), format!("{runs_b:?}"));
        assert!(runs_a[0].train_samples < runs_a[2].train_samples);
        assert_eq!(summary_a[0].repetitions, 2);
    }
}

#[test]
fn supervised_and_random_baselines_run_on_label_fractions() {
    let _rng = exclusive();
    let data = data(&["skeleton"]);
    let set = random_set(&["skeleton"], &data);
    let (_, device) = devices();
    let features = set.features(&data, &device).unwrap();
    let (runs, summary) = run_label_fractions(
        &data,
        &LabelSubsets { fractions: &[0.25], repetitions: 2 },
        3,
        |subset, _, _| Ok(fine_tune_cached(&features, &data, subset, &training(2, EvaluationHead::Linear, FrozenEncoders::Eval, 3), &quiet())?.metrics),
        no_reuse,
    )
    .unwrap();
    assert_eq!((runs.len(), summary.len()), (2, 1));
    let root = tempfile::tempdir().unwrap();
    let mut m = method("name: sup\nkind: supervised\nmodalities: [skeleton]", &["skeleton"]);
    m.schedule.epochs = 2;
    let (runs, _) = run_label_fractions(
        &data,
        &LabelSubsets { fractions: &[0.25], repetitions: 2 },
        3,
        |subset, f, r| {
            let opts = cmkm::methods::TrainOptions {
                protocol: "cross_subject".into(),
                seed: 3,
                out: root.path().join(format!("f{f}-r{r}")),
                quiet: true,
                train_subset: Some(subset.to_vec()),
            };
            Ok(cmkm::methods::train(&m, dataset(), &opts)?.test.unwrap())
        },
        no_reuse,
    )
    .unwrap();
    assert_eq!(runs[0].train_samples, 27 * 3); // 25% of 12 per class
}

/// For fractions whose subsets never coincide.
fn no_reuse(from: f64, to: f64, r: u64) -> anyhow::Result<()> {
    panic!("no subset should repeat here: {from} -> {to} at repetition {r}")
}

/// On 12 train samples per class, 1%, 5% and 10% all keep one sample per
/// class: the same subset at each repetition, trained once and reused, with
/// exactly the result a fresh training on it gives.
#[test]
fn identical_label_subsets_are_trained_once() {
    let _rng = exclusive();
    let data = data(&["skeleton"]);
    let set = random_set(&["skeleton"], &data);
    let (_, device) = devices();
    let features = set.features(&data, &device).unwrap();
    let trained = std::cell::RefCell::new(vec![]);
    let reused = std::cell::RefCell::new(vec![]);
    let fine_tune =
        |subset: &[usize]| fine_tune_cached(&features, &data, subset, &training(2, EvaluationHead::Linear, FrozenEncoders::Eval, 5), &quiet()).unwrap().metrics;
    let (runs, summary) = run_label_fractions(
        &data,
        &LabelSubsets { fractions: &[0.01, 0.05, 0.1, 0.5], repetitions: 2 },
        5,
        |subset, f, r| {
            trained.borrow_mut().push((f, r));
            Ok(fine_tune(subset))
        },
        |from, to, r| {
            reused.borrow_mut().push((from, to, r));
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(*trained.borrow(), [(0.01, 0), (0.01, 1), (0.5, 0), (0.5, 1)]);
    assert_eq!(*reused.borrow(), [(0.01, 0.05, 0), (0.01, 0.05, 1), (0.01, 0.1, 0), (0.01, 0.1, 1)]);
    assert_eq!(runs.iter().map(|r| r.same_subset_as).collect::<Vec<_>>(), [None, None, Some(0.01), Some(0.01), Some(0.01), Some(0.01), None, None]);
    assert!(runs.iter().take(6).all(|r| r.train_samples == 27));
    // A fresh training on the 10% subset gives exactly the reused result.
    let subset = cmkm::data::splits::label_fraction_split(&data.labels, &data.split.train, 0.1, 5, 1).unwrap();
    assert_eq!(fine_tune(&subset).main(data.main_metric), runs[5].main_metric);
    assert_eq!(summary[0].main_metric_mean, summary[2].main_metric_mean);
}

#[test]
fn evaluate_commands_write_recomputable_outputs() {
    let _rng = exclusive();
    let root = tempfile::tempdir().unwrap();
    let mut m = method("name: cmc\nkind: cmc\nmodalities: [inertial, skeleton]\nloss: {temperature: 0.1}", &["inertial", "skeleton"]);
    m.schedule.epochs = 1;
    let dir = root.path().join("cmc");
    run(&m, &dir);
    let decl = root.path().join("synthetic.yaml");
    let yaml = std::fs::read_to_string(common::declaration("utd-mhad.yaml")).unwrap();
    std::fs::write(&decl, yaml.replace("root: /data/UTD-MHAD", &format!("root: {}", dataset().decl.root.display()))).unwrap();
    let eval = |args: &[&str]| {
        let out = cmkm().args(["evaluate"]).args(args).arg("--run").arg(&dir).arg("--dataset").arg(&decl).args(["--epochs", "2", "--quiet"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    eval(&["fine-tune", "--modalities", "skeleton"]);
    let ft = dir.join("eval/fine-tune");
    let metrics: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(ft.join("metrics.json")).unwrap()).unwrap();
    for k in ["accuracy", "f1_macro", "precision_macro", "recall_macro"] {
        let v = metrics[k].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{k} = {v}");
    }
    // The accuracy can be recomputed from predictions.csv.
    let preds = std::fs::read_to_string(ft.join("predictions.csv")).unwrap();
    let rows: Vec<Vec<&str>> = preds.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let acc = rows.iter().filter(|r| r[1] == r[2]).count() as f64 / rows.len() as f64;
    assert!((acc - metrics["accuracy"].as_f64().unwrap()).abs() < 1e-12);
    eval(&["retrieval"]);
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("eval/retrieval/retrieval.json")).unwrap()).unwrap();
    assert!(r["inertial->skeleton"]["mean_average_precision"].is_number());
    assert!(Path::new(&dir.join("eval/retrieval/ranking_fused.csv")).is_file());
}

/// A feature that is not finite (diverged weights, a NaN that reached the
/// data) is an error naming the encoders and the sample, never ranked or
/// fitted as a number.
#[test]
fn non_finite_encoder_features_are_an_error_naming_the_sample() {
    let _rng = exclusive();
    let mut data = data(&["skeleton"]);
    let set = random_set(&["skeleton"], &data);
    let (_, device) = devices();
    let bad = 5;
    data.clips[0][bad][[0, 0, 0]] = f32::NAN;
    let e = set.features(&data, &device).unwrap_err().to_string();
    assert!(e.contains("random:random") && e.contains("non-finite") && e.contains(&data.sample_ids[bad]), "{e}");
    let e = cmkm::protocols::retrieval::retrieval_settings(&set, &data, &device).err().expect("retrieval refuses NaN features").to_string();
    assert!(e.contains("non-finite"), "{e}");
}
