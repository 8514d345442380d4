"""Writes a dataset of continuous recordings that cuts into about a million
windows, for the scale measurement in docs/performance.md (issue #33):
20 subjects x 5 sessions, each an accelerometer and a gyroscope recording of
250,025 samples at 50 Hz (83 min) as float32 NPY tables, the accelerometer
with a fourth column of activity codes (0 = unlabelled, 1-6 = classes) in
30 s blocks, and the declaration `scale.yaml`: windows of 50 samples every
25, majority label at 0.8, unlabelled windows kept for pre-training.

    python3 scripts/make_scale_recordings.py /tmp/scale
    /usr/bin/time -v cmkm data inspect /tmp/scale/scale.yaml
"""
import os
import sys
import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else "scale"
os.makedirs(os.path.join(out, "rec"), exist_ok=True)
rows = 250_025
rng = np.random.default_rng(0)
t = np.arange(rows, dtype=np.float64) / 50.0
for subject in range(1, 21):
    for session in range(1, 6):
        codes = (np.arange(rows) // 1500 + subject + session) % 7
        phase = rng.uniform(0, 2 * np.pi, size=6)
        signal = np.stack([np.sin(2 * np.pi * (0.5 + codes) * t + p) for p in phase], axis=1)
        signal += 0.1 * rng.standard_normal(signal.shape)
        acc = np.hstack([signal[:, :3], codes[:, None]]).astype(np.float32)
        np.save(os.path.join(out, f"rec/acc_s{subject}_ses{session}.npy"), acc)
        np.save(os.path.join(out, f"rec/gyro_s{subject}_ses{session}.npy"), signal[:, 3:].astype(np.float32))

series = """  - name: {name}
    kind: series
    channels: 3
    sample_rate: 50
    layout: TC
    recording: {{files: "rec/{prefix}_s{{subject}}_ses{{session}}.npy"{columns}}}
    standardize: channel
"""
with open(os.path.join(out, "scale.yaml"), "w") as f:
    f.write("name: scale\nformat: recordings\nroot: .\nmodalities:\n")
    f.write(series.format(name="accel", prefix="acc", columns=", columns: [0, 1, 2]"))
    f.write(series.format(name="gyro", prefix="gyro", columns=""))
    f.write("labels: {column: 3, modality: accel, unlabelled: [0]}\n")
    f.write("windows: {length: 50, stride: 25, unit: samples, label: majority, min_fraction: 0.8, unlabelled: pretrain}\n")
    f.write("classes: [c1, c2, c3, c4, c5, c6]\n")
    f.write("protocols:\n  by_subject:\n    train: {subjects: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}\n"
            "    val: {subjects: [13, 14, 15, 16]}\n    test: {subjects: [17, 18, 19, 20]}\n")
    f.write("main_metric: f1_macro\n")
