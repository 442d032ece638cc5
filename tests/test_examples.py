"""Tests of examples/quickstart.py: a tiny run of the coins U-Net learns, scores and draws its figures."""

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("one_thread")

pytest.importorskip("skimage")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "examples" / "quickstart.py"
TINY = {"channels": (4, 8), "crop_size": 32}
STEPS = 30  # (4, 8) at 32x32: ~0.5 s; the mean loss of the last 5 steps is below the first 5's for seeds 0-9
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_quickstart():
    spec = importlib.util.spec_from_file_location("quickstart", QUICKSTART)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quickstart():
    return load_quickstart()


@pytest.fixture(scope="module")
def tiny_run(quickstart, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("quickstart")
    return quickstart.main(steps=STEPS, out_dir=out_dir, **TINY), out_dir


def test_tiny_run_learns(tiny_run):
    result, _ = tiny_run
    losses = result["losses"]
    assert len(losses) == STEPS
    assert all(isinstance(loss, float) and math.isfinite(loss) for loss in losses)
    assert sum(losses[-5:]) < sum(losses[:5])
    assert 0.0 <= result["dice"] <= 1.0
    assert result["seconds_per_step"] > 0 and result["seconds"] >= result["seconds_per_step"] * STEPS


def test_tiny_run_writes_both_figures(tiny_run):
    _, out_dir = tiny_run
    for name in ("loss.png", "predictions.png"):
        data = (out_dir / name).read_bytes()
        assert len(data) > 1000 and data.startswith(PNG_SIGNATURE), name


def test_same_seed_same_run(quickstart):
    first, second = (quickstart.main(steps=3, **TINY) for _ in range(2))
    assert first["losses"] == second["losses"] and first["dice"] == second["dice"]


def test_mask_is_coins_not_background(quickstart):
    image, mask = quickstart.coins_dataset()
    assert image.shape == mask.shape == (303, 384)
    assert set(mask.flat) == {0.0, 1.0}
    assert 0.25 < mask.mean() < 0.45  # 24 coins; a global Otsu threshold would also take the lit top edge
    assert image[mask == 1].mean() > image[mask == 0].mean() + 0.3
    assert mask[:10].mean() < 0.1  # the bright top edge of the background stays background


@pytest.mark.slow
def test_command_line(tmp_path):
    """The command line with the default model, one step (a few seconds: a fresh interpreter)."""
    done = subprocess.run(
        [sys.executable, str(QUICKSTART), "--steps", "1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=ROOT,
    )
    assert "validation Dice" in done.stdout
    assert {path.name for path in tmp_path.iterdir()} == {"loss.png", "predictions.png"}
