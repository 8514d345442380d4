"""PyTorch reference timings for the cmkm harness (CPU, training-step cost).

An independent PyTorch 2.x implementation of the paper's reference
architectures, written from docs/method.md (sections 4 encoders,
5 heads, 6 losses, 7 schedules) and used ONLY to time training steps and
forward passes on the same CPU as the Rust code. It loads no data and trains
nothing meaningful: inputs are torch.randn, so it measures arithmetic only.

Figures (after 2 warm-up steps; median/min/max over --steps):
  cmc_step_ms               batch 64: CNN-Transformer + co-occurrence encoders,
                            both projections, CMC loss (tau 0.1), backward, Adam
  simclr_inertial_step_ms   batch 64, two inertial views, NT-Xent (tau 0.05)
  simclr_skeleton_step_ms   batch 64, two skeleton views, NT-Xent (tau 0.5)
  cnn_transformer_forward_ms  eval mode, no_grad, batch 256 (+ samples/s)
  co_occurrence_forward_ms    eval mode, no_grad, batch 256 (+ samples/s)

Run (full measurement, from the repository root):
  python3 scripts/pytorch_reference.py --threads 2 --steps 10 --json
"""

import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

INERTIAL_SHAPE = (6, 50)  # (channels, steps)
SKELETON_SHAPE = (3, 50, 20)  # (C, T, J)


# --------------------------------------------------------------------------
# Encoders (docs/method.md section 4)
# --------------------------------------------------------------------------
class SinusoidalPositionalEncoding(nn.Module):
    def __init__(self, d_model, max_len=512, dropout=0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        pos = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)
        self.register_buffer("pe", pe)

    def forward(self, x):  # (B, L, D)
        return self.dropout(x + self.pe[: x.size(1)].unsqueeze(0))


class CNNTransformer(nn.Module):
    """(B, 6, 50) -> (B, 128 * 44 = 5632)."""

    def __init__(self, in_channels=6, channels=(32, 64, 128), kernel=5, padding=1,
                 heads=2, ff=2048, layers=2, dropout=0.1):
        super().__init__()
        blocks, c_in = [], in_channels
        for c_out in channels:
            blocks += [nn.Conv1d(c_in, c_out, kernel, padding=padding), nn.BatchNorm1d(c_out), nn.ReLU()]
            c_in = c_out
        self.cnn = nn.Sequential(*blocks)
        self.pos = SinusoidalPositionalEncoding(c_in, dropout=dropout)
        layer = nn.TransformerEncoderLayer(d_model=c_in, nhead=heads, dim_feedforward=ff, dropout=dropout,
                                           activation="relu", batch_first=True, norm_first=False)
        # enable_nested_tensor only matters for padding masks; there are none.
        self.transformer = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)

    def forward(self, x):
        x = self.cnn(x)  # (B, 128, 44)
        x = x.transpose(1, 2)  # (B, 44, 128)
        x = self.transformer(self.pos(x))
        return x.flatten(1)


class CoOccurrenceStream(nn.Module):
    def __init__(self, in_channels=3, joints=20, point=64, temporal=32, temporal_kernel=3,
                 cooc=(32, 64), kernel=3, pool=2):
        super().__init__()
        self.point = nn.Sequential(nn.Conv2d(in_channels, point, 1), nn.BatchNorm2d(point), nn.ReLU())
        self.temporal = nn.Sequential(nn.Conv2d(point, temporal, (temporal_kernel, 1)), nn.BatchNorm2d(temporal))
        blocks, c_in = [], joints
        for c_out in cooc:  # Conv 3x3 + BN + MaxPool (no ReLU, per docs/method.md)
            blocks += [nn.Conv2d(c_in, c_out, kernel), nn.BatchNorm2d(c_out), nn.MaxPool2d(pool)]
            c_in = c_out
        self.cooc = nn.Sequential(*blocks)

    def forward(self, x):  # (B, C, T, J)
        x = self.temporal(self.point(x))  # (B, 32, T-2, J)
        x = x.permute(0, 3, 2, 1)  # (B, J, T-2, 32): joints become channels
        return self.cooc(x)


class CoOccurrence(nn.Module):
    """(B, 3, 50, 20) -> (B, 256)."""

    def __init__(self, in_channels=3, joints=20, cooc=(32, 64), fused=(128, 256), kernel=3, pool=2):
        super().__init__()
        self.joints = CoOccurrenceStream(in_channels, joints, cooc=cooc, kernel=kernel, pool=pool)
        self.motions = CoOccurrenceStream(in_channels, joints, cooc=cooc, kernel=kernel, pool=pool)
        blocks, c_in = [], cooc[-1]
        for c_out in fused:
            blocks += [nn.Conv2d(c_in, c_out, kernel), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(pool)]
            c_in = c_out
        self.fused = nn.Sequential(*blocks)

    @staticmethod
    def motion(x):
        # Frame differences along time, the first frame zero.
        return torch.cat([torch.zeros_like(x[:, :, :1]), x[:, :, 1:] - x[:, :, :-1]], dim=2)

    def forward(self, x, trace=None):
        j = self.joints(x)
        m = self.motions(self.motion(x))
        # Concatenate along the last (feature) axis; see the note in main().
        x = torch.cat([j, m], dim=3)
        if trace is not None:
            trace.append(("stream", tuple(j.shape)))
            trace.append(("concat", tuple(x.shape)))
        x = self.fused(x)
        if trace is not None:
            trace.append(("fused", tuple(x.shape)))
        return x.flatten(1)


# --------------------------------------------------------------------------
# Heads (docs/method.md section 5) and losses (docs/method.md section 6)
# --------------------------------------------------------------------------
def projection(in_features, hidden=256, out=128):
    return nn.Sequential(nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, out))


def cmc_loss(z1, z2, tau):
    """2N rows: z1_i vs all z2_j, and z2_i vs all z1_j; positives on the diagonal."""
    z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    s = z1 @ z2.t() / tau
    target = torch.arange(s.size(0), device=s.device)
    logits = torch.cat([s, s.t()], dim=0)
    return F.cross_entropy(logits, torch.cat([target, target]))


def nt_xent(za, zb, tau):
    """SimCLR NT-Xent over 2N views; each view's positive is its twin."""
    n = za.size(0)
    z = F.normalize(torch.cat([za, zb], dim=0), dim=1)
    s = z @ z.t() / tau
    s = s.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=s.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(s.device)
    return F.cross_entropy(s, target)


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------
def time_it(fn, steps, warmup=2):
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000.0)
    return {"median": statistics.median(out), "min": min(out), "max": max(out)}


def train_step(modules, loss_fn, optimizer):
    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        optimizer.step()
    for m in modules:
        m.train()
    return step


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64, help="training batch (all three SSL steps)")
    ap.add_argument("--eval-batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=28)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)
    b, eb = args.batch, args.eval_batch

    # Shape check (printed unless --json, where it goes into the object).
    inertial, skeleton = CNNTransformer().eval(), CoOccurrence().eval()
    trace = []
    with torch.no_grad():
        ci = inertial(torch.randn(2, *INERTIAL_SHAPE)).shape[1]
        cs = skeleton(torch.randn(2, *SKELETON_SHAPE), trace=trace).shape[1]
    shapes = {"cnn_transformer_features": ci, "co_occurrence_features": cs,
              "co_occurrence_trace": {k: list(v) for k, v in trace}}
    assert ci == 5632, ci
    assert cs == 256, cs
    if not args.json:
        print(f"torch {torch.__version__}, threads {args.threads}, cpu: {cpu_model()}")
        print(f"CNN-Transformer output features: {ci}")
        print(f"co-occurrence output features: {cs}  " + ", ".join(f"{k} {v}" for k, v in trace))

    spread = {}

    # CMC: both encoders + projections, tau 0.1 (docs/method.md section 7).
    enc_i, enc_s = CNNTransformer(), CoOccurrence()
    proj_i, proj_s = projection(5632), projection(256)
    mods = [enc_i, enc_s, proj_i, proj_s]
    opt = torch.optim.Adam([p for m in mods for p in m.parameters()], lr=args.lr)
    xi, xs = torch.randn(b, *INERTIAL_SHAPE), torch.randn(b, *SKELETON_SHAPE)
    spread["cmc_step_ms"] = time_it(train_step(
        mods, lambda: cmc_loss(proj_i(enc_i(xi)), proj_s(enc_s(xs)), 0.1), opt), args.steps)

    # SimCLR inertial: two views, tau 0.05 (docs/method.md section 7).
    enc, proj = CNNTransformer(), projection(5632)
    opt = torch.optim.Adam(list(enc.parameters()) + list(proj.parameters()), lr=args.lr)
    va, vb = torch.randn(b, *INERTIAL_SHAPE), torch.randn(b, *INERTIAL_SHAPE)
    spread["simclr_inertial_step_ms"] = time_it(train_step(
        [enc, proj], lambda: nt_xent(proj(enc(va)), proj(enc(vb)), 0.05), opt), args.steps)

    # SimCLR skeleton: two views, tau 0.5 (docs/method.md section 7).
    enc, proj = CoOccurrence(), projection(256)
    opt = torch.optim.Adam(list(enc.parameters()) + list(proj.parameters()), lr=args.lr)
    va, vb = torch.randn(b, *SKELETON_SHAPE), torch.randn(b, *SKELETON_SHAPE)
    spread["simclr_skeleton_step_ms"] = time_it(train_step(
        [enc, proj], lambda: nt_xent(proj(enc(va)), proj(enc(vb)), 0.5), opt), args.steps)

    # Inference forwards, eval mode, no_grad.
    def forward(model, x):
        def f():
            with torch.no_grad():
                model(x)
        return f
    spread["cnn_transformer_forward_ms"] = time_it(
        forward(inertial, torch.randn(eb, *INERTIAL_SHAPE)), args.steps)
    spread["co_occurrence_forward_ms"] = time_it(
        forward(skeleton, torch.randn(eb, *SKELETON_SHAPE)), args.steps)

    result = {k: v["median"] for k, v in spread.items()}
    result["cnn_transformer_forward_samples_per_s"] = eb / (result["cnn_transformer_forward_ms"] / 1000.0)
    result["co_occurrence_forward_samples_per_s"] = eb / (result["co_occurrence_forward_ms"] / 1000.0)
    result.update({
        "spread_ms": spread,
        "torch_version": torch.__version__,
        "threads": args.threads,
        "cpu": cpu_model(),
        "steps": args.steps,
        "batch": b,
        "eval_batch": eb,
        "shapes": shapes,
    })
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in spread.items():
            print(f"{k:28s} median {v['median']:9.2f}  min {v['min']:9.2f}  max {v['max']:9.2f}")
        print(f"cnn_transformer_forward: {result['cnn_transformer_forward_samples_per_s']:.0f} samples/s")
        print(f"co_occurrence_forward:   {result['co_occurrence_forward_samples_per_s']:.0f} samples/s")


if __name__ == "__main__":
    main()
