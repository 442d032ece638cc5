"""The benchmark script's report: what each pair measures and the tables the Benchmarks page shows."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import torch

import blocks

pytestmark = pytest.mark.usefixtures("one_thread")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("benchmarks_run", SCRIPT)
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # dataclasses look it up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def tiny_unet() -> blocks.UNet2d:
    torch.manual_seed(0)
    return blocks.UNet2d(1, 2, channels=(4, 8), layers=1)


@pytest.mark.parametrize("dense", [True, False], ids=["dense", "classifier"])
def test_a_pair_measures_training_and_inference(bench, dense):
    pair = bench.Pair("tiny", "ours", "peer", (1, 1, 16, 16), dense)
    built = {"ours": tiny_unet(), "peer": tiny_unet()}
    rows = bench.time_pair(pair, built, torch.randn(1, 1, 16, 16), repeats=1, compiled=False)
    metrics = [row["metric"] for row in rows]
    if dense:
        assert metrics == ["train step (s)", "train GFLOP per step", "train GFLOP/s", "inference (s)"]
        flops = rows[1]
        assert flops["ours_value"] == flops["peer_value"] > 0  # the same network counted twice
        assert rows[2]["ours_value"] == pytest.approx(flops["ours_value"] / rows[0]["ours_value"])
    else:
        assert metrics == ["train step (s)", "inference (s)", "channels_last inference (s)"]
    assert all(row["input"] == [1, 1, 16, 16] and row["group"] == "tiny" for row in rows)


def row(metric, ours, peer, better, group="U-Net like-for-like", note=""):
    ratio = ours / peer if ours is not None and peer else None
    return {"group": group, "input": [2, 1, 256, 256], "metric": metric, "ours": "blocks UNet2d", "peer": "smp Unet",
            "ours_value": ours, "peer_value": peer, "ratio": ratio, "better": better, "note": note}


def test_the_report_is_one_narrow_table_per_comparison(bench):
    results = {
        "machine": {"cpu": "Test CPU", "cores": 2, "threads": 2, "torch": "2.x", "python": "3.11", "date": "today"},
        "quick": False,
        "peak_gflops": 170.0,
        "rows": [
            row("train step (s)", 0.70, 0.64, "lower"),
            row("train GFLOP per step", 95.0, 92.0, ""),
            row("train GFLOP/s", 135.7, 143.8, "higher"),
            row("inference (s)", 0.20, 0.25, "lower"),
            row("all", None, None, "", group="3-D U-Net", note="missing (monai)"),
        ],
        "checkpointing": {"input": [2, 1, 256, 256], "peak_mb": 3450.0, "checkpointed_peak_mb": 1138.0},
        "summary_rows_identical": True,
    }
    text = bench.table(results)
    assert "### U-Net like-for-like: smp Unet, 2×1×256×256" in text
    assert "### 3-D U-Net: smp Unet, 2×1×256×256" in text
    assert "`blocks UNet2d` against `smp Unet`: smp's U-Net layer for layer" in text  # the reading of the group
    table_lines = [line for line in text.splitlines() if line.startswith("|")]
    assert all(line.count("|") == 5 for line in table_lines)  # four columns: fits the page
    assert "| train step (s) | 0.7 | 0.64 | 1.09x |" in text  # slower: not bold
    assert "| train GFLOP per step | 95 | 92 | 1.03x |" in text  # no better side: never bold
    assert "| train GFLOP/s | 136 | 144 | 0.94x |" in text
    assert "| inference (s) | 0.2 | 0.25 | **0.80x** |" in text  # faster: bold
    assert "| all | - | - | - |" in text and "- missing (monai)" in text
    assert "3,450 MiB -> 1,138 MiB (0.33x)" in text
    assert not re.search(r"\(\s*is better\)", text)
