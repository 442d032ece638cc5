"""Quickstart: train a small `blocks.UNet2d` to segment the coins of scikit-image's ``coins()`` image.

The image ships inside scikit-image, so nothing is downloaded. The target mask is derived from the
image itself (a local threshold, then filled holes and removed specks); the right quarter of the
image is held out for validation. Training samples random 64x64 crops of the left three quarters
and fits BCE + Dice with AdamW; the whole validation strip is then segmented in one pass (the U-Net
takes any size and returns exactly that size) and scored by its Dice.

Run it with ``python examples/quickstart.py [--steps N] [--out DIR]``; it needs ``scikit-image`` and,
for ``--out``, ``matplotlib``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from skimage import data, filters, morphology
from torch import Tensor

import blocks


def coins_dataset() -> tuple[np.ndarray, np.ndarray]:
    """Load the coins image and derive its foreground mask.

    The background is lit unevenly, so one global (Otsu) threshold takes in the bright top edge;
    a local threshold does not. Holes inside the coins are filled and specks removed.

    Returns:
        The image as float32 in [0, 1] and the mask as float32 in {0, 1}, both (303, 384).
    """
    image = data.coins()
    mask = image > filters.threshold_local(image, block_size=101, offset=-10)
    mask = ndimage.binary_fill_holes(mask)
    mask = ndimage.binary_opening(mask, structure=morphology.disk(2))
    mask = morphology.remove_small_objects(mask, max_size=100)
    return image.astype(np.float32) / 255, mask.astype(np.float32)


def random_crops(
    image: np.ndarray, mask: np.ndarray, size: int, count: int, rng: np.random.Generator
) -> tuple[Tensor, Tensor]:
    """Cut ``count`` random ``size`` x ``size`` crops, at the same places, from an image and its mask.

    Args:
        image: (H, W) image.
        mask: (H, W) mask.
        size: Side of a crop.
        count: Number of crops (the batch size).
        rng: Random generator that picks the corners.

    Returns:
        Images and masks, each a (count, 1, size, size) tensor.
    """
    rows = rng.integers(0, image.shape[0] - size + 1, count)
    cols = rng.integers(0, image.shape[1] - size + 1, count)

    def cut(a: np.ndarray) -> Tensor:
        return torch.from_numpy(np.stack([a[r : r + size, c : c + size] for r, c in zip(rows, cols)])[:, None])

    return cut(image), cut(mask)


def soft_dice(logits: Tensor, target: Tensor, eps: float = 1.0) -> Tensor:
    """Soft Dice coefficient of sigmoid(logits) against a binary target, over the whole batch.

    Args:
        logits: Raw network outputs.
        target: Mask of the same shape, in {0, 1}.
        eps: Smoothing added to numerator and denominator.

    Returns:
        A scalar in (0, 1]; 1 is a perfect overlap.
    """
    prob = torch.sigmoid(logits)
    return (2 * (prob * target).sum() + eps) / (prob.sum() + target.sum() + eps)


def dice_score(pred: Tensor, target: Tensor) -> float:
    """Hard Dice of two binary masks (1.0 when both are empty)."""
    total = float(pred.sum() + target.sum())
    return 1.0 if total == 0 else 2 * float((pred * target).sum()) / total


def main(
    steps: int = 120,
    channels: Sequence[int] = (16, 32, 64, 128, 256),
    out_dir: str | Path | None = None,
    *,
    crop_size: int = 64,
    batch_size: int = 8,
    lr: float = 1e-3,
    seed: int = 0,
    verbose: bool = False,
) -> dict[str, Any]:
    """Train a U-Net on coin crops, score it on the held-out strip and optionally save figures.

    Args:
        steps: Optimizer steps.
        channels: The U-Net's channels per level (one block per level).
        out_dir: Where to write ``loss.png`` and ``predictions.png``; None writes nothing.
        crop_size: Side of the training crops.
        batch_size: Crops per step.
        lr: AdamW learning rate.
        seed: Seed of torch and of the crop sampler; the same seed gives the same run.
        verbose: Print the loss ten times during training.

    Returns:
        ``losses`` (one float per step), ``dice`` (hard Dice on the validation strip, in [0, 1]),
        ``seconds_per_step`` (training time per step) and ``seconds`` (the whole run).
    """
    start = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    image, mask = coins_dataset()
    split = image.shape[1] * 3 // 4  # columns right of this are the validation strip
    mean, std = image[:, :split].mean(), image[:, :split].std()
    image = (image - mean) / std
    train_image, train_mask = image[:, :split], mask[:, :split]
    val_image = torch.from_numpy(image[None, None, :, split:].copy())
    val_mask = torch.from_numpy(mask[None, None, :, split:].copy())

    model = blocks.UNet2d(in_planes=1, out_planes=1, channels=channels, layers=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)

    losses = []
    train_start = time.perf_counter()
    model.train()
    for step in range(steps):
        x, y = random_crops(train_image, train_mask, crop_size, batch_size, rng)
        logits = model(x)
        loss = F.binary_cross_entropy_with_logits(logits, y) + 1 - soft_dice(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if verbose and (step + 1) % max(1, steps // 10) == 0:
            print(f"step {step + 1:4d}/{steps}  loss {loss.item():.4f}")
    seconds_per_step = (time.perf_counter() - train_start) / max(steps, 1)

    model.eval()
    with torch.no_grad():
        val_pred = (model(val_image) > 0).float()
    dice = dice_score(val_pred, val_mask)

    if out_dir is not None:
        save_figures(Path(out_dir), losses, val_image[0, 0], val_mask[0, 0], val_pred[0, 0], crop_size)
    return {
        "losses": losses,
        "dice": dice,
        "seconds_per_step": seconds_per_step,
        "seconds": time.perf_counter() - start,
    }


def save_figures(out_dir: Path, losses: list[float], image: Tensor, target: Tensor, pred: Tensor, size: int) -> None:
    """Write ``loss.png`` (the loss per step) and ``predictions.png`` (three validation crops).

    Uses matplotlib's object-oriented API, rendered by Agg, so no display and no global backend
    change are needed.

    Args:
        out_dir: Folder to write into (created if missing).
        losses: Training loss per step.
        image: (H, W) validation image.
        target: (H, W) validation mask.
        pred: (H, W) predicted mask.
        size: Side of the crops shown.
    """
    from matplotlib.figure import Figure

    out_dir.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(6, 3.5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(range(1, len(losses) + 1), losses)
    ax.set(xlabel="step", ylabel="BCE + Dice loss", title="Training loss")
    fig.savefig(out_dir / "loss.png", dpi=100)

    rows = np.linspace(0, image.shape[0] - size, 3).astype(int)
    fig = Figure(figsize=(6, 6), layout="constrained")
    axes = fig.subplots(len(rows), 3, squeeze=False)
    panels = (
        (image, "input", {}),
        (target, "target", {"vmin": 0, "vmax": 1}),
        (pred, "prediction", {"vmin": 0, "vmax": 1}),
    )
    for row, row_axes in zip(rows, axes):
        for ax, (picture, title, scale) in zip(row_axes, panels):
            ax.imshow(picture[row : row + size, :size].numpy(), cmap="gray", **scale)
            ax.set_axis_off()
            ax.set_title(f"{title}, rows {row}-{row + size}", fontsize=9)
    fig.savefig(out_dir / "predictions.png", dpi=100)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120, help="optimizer steps (default 120)")
    parser.add_argument("--out", type=Path, default=None, help="folder for loss.png and predictions.png")
    args = parser.parse_args()
    result = main(steps=args.steps, out_dir=args.out, verbose=True)
    print(
        f"validation Dice {result['dice']:.3f}  |  {result['seconds_per_step'] * 1000:.0f} ms/step  |  "
        f"{result['seconds']:.1f} s in all"
    )
