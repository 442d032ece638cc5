"""nnU-Net's ResidualEncoderUNet, blocks' twin of it and a pre-activation variant, side by side on a real volume.

    python benchmarks/nnunet.py            # writes benchmarks/nnunet.json (about 10 minutes on 2 cores)
    python benchmarks/nnunet.py --quick    # a few steps: checks that everything runs
    python benchmarks/nnunet.py --pair     # re-time only the twin against the original (updates the JSON)

The volume is the MNI152 template (2 mm, 99 x 117 x 95) that ``nilearn`` ships with its grey- and
white-matter probability maps (no download); each voxel is labelled by the argmax of background
(``1 - GM - WM``, clipped at 0), GM and WM. The axial slab ``z in [40, 64)`` is held out; training
draws random 32^3 crops from the rest. Each model trains for the same steps on the same crops (one
sequence per seed, three seeds) with nnU-Net's optimizer (SGD, momentum 0.99, Nesterov, poly
learning rate from 1e-2) and loss (cross-entropy + soft Dice), then is scored by the Dice of GM and
WM on the held-out slab (96 x 112 x 24, divisible by the stride product, as nnU-Net's original
needs). Peak memory: the growth of the peak resident set over one training step, in a fresh process
per model. Then a training step of the twin against the original, interleaved (``benchmarks/run.py``'s
timer), at 2 x 1 x 64^3, with the FLOPs of both counted.

Needs the ``nnunet`` and ``bench`` extras and ``nilearn``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import blocks
from blocks.nnunet import ResidualEncoderUNet

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("benchmarks_run", HERE / "run.py")
runner = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runner)

GEOMETRY = dict(
    input_channels=1, n_stages=4, features_per_stage=(8, 16, 32, 32), conv_op=nn.Conv3d, kernel_sizes=3,
    strides=(1, 2, 2, 2), n_blocks_per_stage=(1, 2, 2, 2), num_classes=3, n_conv_per_stage_decoder=1,
    conv_bias=True, norm_op=nn.InstanceNorm3d, norm_op_kwargs={"eps": 1e-5, "affine": True}, nonlin=nn.LeakyReLU,
    nonlin_kwargs={"inplace": True},
)
"""A small ResEnc plan for two cores (features <= 32): nnU-Net's defaults of norm, activation and bias."""

HELD_OUT = slice(40, 64)
"""The axial slab held out for validation."""

CROP = 32


def nnunet_original() -> nn.Module:
    """nnU-Net's own ``ResidualEncoderUNet`` (dynamic-network-architectures), initialized as nnU-Net does."""
    from dynamic_network_architectures.architectures.unet import ResidualEncoderUNet as Original

    model = Original(**GEOMETRY)
    model.apply(model.initialize)
    return model


def blocks_twin() -> nn.Module:
    """blocks' twin, initialized by its nnU-Net ``initialize``."""
    model = ResidualEncoderUNet(**GEOMETRY)
    model.apply(model.initialize)
    return model


def blocks_preactivation() -> nn.Module:
    """The same geometry in pre-activation order (norm -> act -> conv), He-initialized like the others."""
    model = blocks.UNet3d(
        1, 3, channels=(8, 16, 32, 32), layers=(1, 2, 2, 2), block="plain", normalizer="pinst",
        activator="leaky", layer_order="new", strides=(1, 2, 2, 2), decoder_layers=1, decoder_block="conv",
        upsample="transpose", hidden_planes="output", shortcut="pool", bias=True,
    )
    model.apply(ResidualEncoderUNet.__mro__[1].initialize)
    return model


MODELS: dict[str, Callable[[], nn.Module]] = {
    "nnU-Net ResidualEncoderUNet": nnunet_original,
    "blocks twin (blocks.nnunet)": blocks_twin,
    "blocks pre-activation": blocks_preactivation,
}


def volume() -> tuple[np.ndarray, np.ndarray]:
    """The MNI152 template (z-scored inside the brain) and its labels 0 background, 1 GM, 2 WM."""
    from nilearn import datasets

    image = datasets.load_mni152_template(resolution=2).get_fdata().astype(np.float32)
    gm = datasets.load_mni152_gm_template(resolution=2).get_fdata().astype(np.float32)
    wm = datasets.load_mni152_wm_template(resolution=2).get_fdata().astype(np.float32)
    background = np.clip(1 - gm - wm, 0, None)
    labels = np.argmax(np.stack([background, gm, wm]), axis=0).astype(np.int64)
    brain = image[labels > 0]
    return (image - brain.mean()) / brain.std(), labels


def crops(image: np.ndarray, labels: np.ndarray, steps: int, seed: int, batch: int = 2):
    """``steps`` batches of random crops that never touch the held-out slab."""
    rng = np.random.default_rng(seed)
    starts_z = [z for z in range(image.shape[2] - CROP + 1) if z + CROP <= HELD_OUT.start or z >= HELD_OUT.stop]
    for _ in range(steps):
        xs, ys = [], []
        for _ in range(batch):
            i = rng.integers(0, image.shape[0] - CROP + 1)
            j = rng.integers(0, image.shape[1] - CROP + 1)
            k = starts_z[rng.integers(len(starts_z))]
            xs.append(image[i:i + CROP, j:j + CROP, k:k + CROP])
            ys.append(labels[i:i + CROP, j:j + CROP, k:k + CROP])
        yield torch.from_numpy(np.stack(xs))[:, None], torch.from_numpy(np.stack(ys))


def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy + soft Dice of the foreground classes (nnU-Net's loss, without deep supervision)."""
    probs = logits.softmax(1)
    onehot = F.one_hot(target, logits.shape[1]).movedim(-1, 1).float()
    dims = (0, 2, 3, 4)
    dice = (2 * (probs * onehot).sum(dims) + 1e-5) / (probs.sum(dims) + onehot.sum(dims) + 1e-5)
    return F.cross_entropy(logits, target) - dice[1:].mean()


def dice_scores(model: nn.Module, image: np.ndarray, labels: np.ndarray) -> list[float]:
    """Dice of GM and WM on the held-out slab (96 x 112 x 24)."""
    region = (slice(1, 97), slice(2, 114), HELD_OUT)
    x = torch.from_numpy(image[region])[None, None]
    y = labels[region]
    model.eval()
    with torch.no_grad():
        predicted = model(x).argmax(1)[0].numpy()
    return [float(2 * ((predicted == c) & (y == c)).sum() / ((predicted == c).sum() + (y == c).sum())) for c in (1, 2)]


def train(name: str, image: np.ndarray, labels: np.ndarray, steps: int, seed: int) -> dict:
    """Train model ``name`` for ``steps`` steps on seed ``seed``'s crops; its Dice and seconds per step."""
    torch.manual_seed(seed)
    model = MODELS[name]().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.99, nesterov=True, weight_decay=3e-5)
    times = []
    for step, (x, y) in enumerate(crops(image, labels, steps, seed)):
        for group in optimizer.param_groups:
            group["lr"] = 1e-2 * (1 - step / steps) ** 0.9
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 12)
        optimizer.step()
        times.append(time.perf_counter() - start)
    gm, wm = dice_scores(model, image, labels)
    return {"dice_gm": gm, "dice_wm": wm, "seconds_per_step": statistics.median(times[2:] or times)}


def child_memory(name: str) -> dict:
    """In this (fresh) process: the peak RSS growth over one training step at 2 x 1 x 32^3."""
    torch.manual_seed(0)
    model = MODELS[name]().train()
    x, y = torch.randn(2, 1, CROP, CROP, CROP), torch.randint(0, 3, (2, CROP, CROP, CROP))
    Path("/proc/self/clear_refs").write_text("5")
    before = runner._rss_mb("VmRSS")
    loss_fn(model(x), y).backward()
    return {"peak_mb": runner._rss_mb("VmHWM") - before}


def memory(name: str) -> float | None:
    """``child_memory`` of ``name`` in a fresh interpreter."""
    result = subprocess.run([sys.executable, __file__, "--child-memory", name], capture_output=True, text=True,
                            check=False, timeout=600)
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_mb"] if result.returncode == 0 else None


def time_pair(quick: bool) -> dict:
    """A training step of the twin and of the original, interleaved, at 2 x 1 x 64^3 (32^3 quick), with FLOPs."""
    size = (2, 1, 32, 32, 32) if quick else (2, 1, 64, 64, 64)
    x = torch.randn(*size)
    torch.manual_seed(0)
    original = nnunet_original()
    twin = blocks.nnunet.from_nnunet(original)  # the same weights
    steps = {"twin": runner.train_step(twin, x), "original": runner.train_step(original, x)}
    flops = {name: runner.flops_of(step) for name, step in steps.items()}
    seconds = runner.interleaved(steps, repeats=3 if quick else 21, warmup=1 if quick else 3)
    return {"input_size": list(size), "seconds": seconds, "flops": flops, "ratio": seconds["twin"] / seconds["original"]}


def run(quick: bool) -> dict:
    """The whole side-by-side."""
    torch.set_num_threads(torch.get_num_threads())
    image, labels = volume()
    steps, seeds = (4, (0,)) if quick else (150, (0, 1, 2))
    rows = []
    for name, build in MODELS.items():
        runs = [train(name, image, labels, steps, seed) for seed in seeds]
        rows.append({
            "model": name,
            "parameters": sum(p.numel() for p in build().parameters()),
            "dice_gm": [r["dice_gm"] for r in runs],
            "dice_wm": [r["dice_wm"] for r in runs],
            "seconds_per_step": statistics.median(r["seconds_per_step"] for r in runs),
            "peak_mb": memory(name),
        })
    return {
        "torch": torch.__version__, "threads": torch.get_num_threads(), "steps": steps, "seeds": list(seeds),
        "crop": CROP, "geometry": {k: blocks.configurable.dotted_name(v) if isinstance(v, type) else v
                                   for k, v in GEOMETRY.items()},
        "rows": rows, "pair": time_pair(quick),
    }


def table(results: dict) -> str:
    """The results as Markdown: the side-by-side table and the time ratio of the pair."""
    lines = [
        "| model | parameters | Dice GM | Dice WM | s / step | peak MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        gm, wm = np.array(row["dice_gm"]), np.array(row["dice_wm"])
        memory_mb = "n/a" if row["peak_mb"] is None else f"{row['peak_mb']:.0f}"
        lines.append(
            f"| {row['model']} | {row['parameters']:,} | {gm.mean():.3f} ± {gm.std():.3f} | {wm.mean():.3f} ± "
            f"{wm.std():.3f} | {row['seconds_per_step']:.3f} | {memory_mb} |"
        )
    pair = results["pair"]
    size = "×".join(map(str, pair["input_size"]))
    lines += [
        "",
        f"Training step at {size}, interleaved: twin {pair['seconds']['twin']:.3f} s, nnU-Net "
        f"{pair['seconds']['original']:.3f} s, ratio **{pair['ratio']:.3f}×**; FLOPs {pair['flops']['twin'] / 1e9:.2f} G "
        f"and {pair['flops']['original'] / 1e9:.2f} G.",
        "",
        f"{results['steps']} steps per run, seeds {results['seeds']}, {results['crop']}³ crops in batches of 2, "
        f"torch {results['torch']}, {results['threads']} threads; Dice: mean ± standard deviation over the seeds.",
    ]
    return "\n".join(lines)


def main() -> int:
    """Parse arguments, run, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few steps, one seed (checks that it runs)")
    parser.add_argument("--json", type=Path, help="where to write (default benchmarks/nnunet.json; not with --quick)")
    parser.add_argument("--pair", action="store_true", help="re-time only the twin against the original")
    parser.add_argument("--child-memory", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_memory:
        print(json.dumps(child_memory(args.child_memory)))
        return 0
    if args.pair:
        target = args.json or HERE / "nnunet.json"
        results = {**json.loads(target.read_text()), "pair": time_pair(args.quick)}
    else:
        results = run(args.quick)
    print(table(results))
    target = args.json or (None if args.quick and not args.pair else HERE / "nnunet.json")
    if target:
        target.write_text(json.dumps(results, indent=1) + "\n")
        print(f"\nwritten to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
