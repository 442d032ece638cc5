"""Benchmarks of `blocks` against its peers, measured side by side in one run.

    python benchmarks/run.py            # full run (several minutes on 2 cores); writes benchmarks/results.json
    python benchmarks/run.py --quick    # tiny sizes, one repeat: checks that everything runs (CI)

Timings are interleaved (A, B, A, B, ...) after a warm-up, and the median is reported, so that machine
noise hits every contender alike. Peers come from the `bench` extra (torchvision, timm,
segmentation-models-pytorch, monai); a missing peer is reported as missing, not faked. Peak memory of
a training step is measured in a fresh subprocess per model (peak RSS growth during the step).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import blocks

HERE = Path(__file__).resolve().parent


# ----------------------------------------------------------------------------------------- models


def _torchvision(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        return getattr(torchvision.models, name)()

    return build


def _timm(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import timm

        return timm.create_model(name, pretrained=False)

    return build


def _checkpointed(model: nn.Module) -> nn.Module:
    model.set_grad_checkpointing(True)
    return model


def _smp_unet() -> nn.Module:
    import segmentation_models_pytorch as smp

    return smp.Unet("resnet34", encoder_weights=None, in_channels=1, classes=2)


def _monai_unet() -> nn.Module:
    from monai.networks.nets import UNet

    return UNet(2, 1, 2, channels=(64, 128, 256, 512, 1024), strides=(2, 2, 2, 2), num_res_units=2)


MODELS: dict[str, Callable[[], nn.Module]] = {
    "blocks resnet50": lambda: blocks.resnet50(),
    "torchvision resnet50": _torchvision("resnet50"),
    "blocks resnet50 pre-act": lambda: blocks.resnet50(layer_order="new"),
    "timm resnetv2_50": _timm("resnetv2_50"),
    "blocks UNet2d": lambda: blocks.UNet2d(1, 2),
    "blocks UNet2d checkpointed": lambda: _checkpointed(blocks.UNet2d(1, 2)),
    "smp Unet resnet34": _smp_unet,
    "monai UNet": _monai_unet,
}
"""Every contender by name; peers are imported only when built."""


@dataclass(frozen=True)
class Pair:
    """A comparison: our model against a peer on the same input."""

    group: str
    ours: str
    peer: str
    input_size: tuple[int, ...]


def pairs(quick: bool) -> list[Pair]:
    """The comparisons, at full or quick sizes."""
    image = (1, 3, 64, 64) if quick else (8, 3, 224, 224)
    grey = (1, 1, 64, 64) if quick else (2, 1, 256, 256)
    return [
        Pair("resnet50", "blocks resnet50", "torchvision resnet50", image),
        Pair("pre-act resnet50", "blocks resnet50 pre-act", "timm resnetv2_50", image),
        Pair("U-Net", "blocks UNet2d", "smp Unet resnet34", grey),
        Pair("U-Net", "blocks UNet2d", "monai UNet", grey),
    ]


# ----------------------------------------------------------------------------------------- timing


def train_step(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """One forward + backward pass of ``model`` in training mode."""
    model.train()

    def step() -> None:
        model.zero_grad(set_to_none=True)
        model(x).float().mean().backward()

    return step


def inference(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """One forward pass of ``model`` in eval mode under ``torch.inference_mode``."""
    model.eval()

    def run() -> None:
        with torch.inference_mode():
            model(x)

    return run


def interleaved(fns: dict[str, Callable[[], None]], repeats: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each function, calling them in turn ``repeats`` times after a warm-up.

    The order alternates (A B, B A, A B, ...), so that whatever the previous call leaves behind (caches,
    the allocator's state) hits every contender alike.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for repeat in range(repeats):
        for name, fn in (fns.items() if repeat % 2 == 0 else reversed(fns.items())):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def flops_of(fn: Callable[[], None]) -> int:
    """Floating-point operations of one call of ``fn``, counted by torch's FlopCounterMode."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def machine_peak(quick: bool) -> float:
    """GFLOP/s of a large fp32 matrix product on this machine (the practical peak)."""
    n = 512 if quick else 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    seconds = interleaved({"mm": lambda: torch.mm(a, b)}, repeats=3 if quick else 7)["mm"]
    return 2 * n**3 / seconds / 1e9


# ----------------------------------------------------------------------------------------- memory


def _rss_mb(field: str) -> float:
    """A field of /proc/self/status (VmRSS, VmHWM) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def child_memory(name: str, input_size: tuple[int, ...]) -> dict:
    """In this (fresh) process: peak RSS growth, in MiB, over one training step of model ``name``.

    Measured from just before the first step, so everything the step allocates counts (activations,
    gradients, workspaces), whatever the allocator later keeps or returns.
    """
    torch.manual_seed(0)
    model = MODELS[name]()
    x = torch.randn(*input_size)
    step = train_step(model, x)
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS counter (Linux)
    before = _rss_mb("VmRSS")
    step()
    return {"peak_mb": _rss_mb("VmHWM") - before}


def child_summary(tool: str, input_size: tuple[int, ...]) -> dict:
    """In this (fresh) process: time and peak RSS growth of a summary of the seed U-Net.

    ``seconds`` is the first call in the process (it includes torch's one-time start-up of whatever the
    tool uses: the meta device's Python kernels for ``blocks.summary``); ``warm_seconds`` a second call.
    """
    model = blocks.UNet2d(1, 2)
    Path("/proc/self/clear_refs").write_text("5")
    before = _rss_mb("VmRSS")
    seconds = []
    for _ in range(2):
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()) as out:
            if tool == "blocks.summary":
                blocks.summary(model, input_size[1:], batch_size=input_size[0])
            else:
                import torchsummary

                torchsummary.summary(model, input_size[1:], batch_size=input_size[0], device="cpu")
        seconds.append(time.perf_counter() - start)
    rows = [line.split() for line in out.getvalue().splitlines() if re.match(r"\s*\w+-\d+\s+\[", line)]
    return {"seconds": seconds[0], "warm_seconds": seconds[1], "peak_mb": _rss_mb("VmHWM") - before, "rows": rows}


def in_subprocess(kind: str, name: str, input_size: tuple[int, ...]) -> dict:
    """Run ``child_<kind>`` in a fresh interpreter and return its JSON answer (or the error)."""
    command = [sys.executable, __file__, "--child", kind, name, *map(str, input_size)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"}
    return json.loads(result.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------- report


def build_all(names: list[str]) -> dict[str, nn.Module | str]:
    """Build each model with a fixed seed; a peer that is not installed maps to an error string."""
    built: dict[str, nn.Module | str] = {}
    for name in names:
        torch.manual_seed(0)
        try:
            built[name] = MODELS[name]()
        except ImportError as error:
            built[name] = f"missing ({error.name})"
    return built


def compare(pair: Pair, metric: str, ours: float | None, peer: float | None, better: str, note: str = "") -> dict:
    """One row of the report: our value, the peer's, and ours / peer."""
    ratio = ours / peer if ours is not None and peer else None
    return {"group": pair.group, "metric": metric, "ours": pair.ours, "peer": pair.peer, "ours_value": ours,
            "peer_value": peer, "ratio": ratio, "better": better, "note": note}


def time_pair(pair: Pair, built: dict[str, nn.Module], x: torch.Tensor, repeats: int, compiled: bool) -> list[dict]:
    """Training step (and inference for classifiers) of the pair, interleaved; GFLOP/s for the U-Nets."""
    ours, peer = built[pair.ours], built[pair.peer]
    rows = []
    kinds = {"train step (s)": train_step} if pair.group == "U-Net" else {"train step (s)": train_step,
                                                                           "inference (s)": inference}
    for metric, make in kinds.items():
        times = interleaved({"ours": make(ours, x), "peer": make(peer, x)}, repeats)
        rows.append(compare(pair, metric, times["ours"], times["peer"], "lower"))
        if pair.group == "U-Net":
            flops = {k: flops_of(make(m, x)) for k, m in (("ours", ours), ("peer", peer))}
            rows.append(compare(pair, "train GFLOP/s", flops["ours"] / times["ours"] / 1e9,
                                flops["peer"] / times["peer"] / 1e9, "higher",
                                f"{flops['ours'] / 1e9:.0f} vs {flops['peer'] / 1e9:.0f} GFLOP per step"))
    if pair.group == "U-Net" and compiled:
        fns = {k: train_step(torch.compile(m), x) for k, m in (("ours", ours), ("peer", peer))}
        times = interleaved(fns, repeats)
        rows.append(compare(pair, "compiled train step (s)", times["ours"], times["peer"], "lower"))
    if pair.group != "U-Net":
        x_cl = x.contiguous(memory_format=torch.channels_last)
        for m in (ours, peer):
            m.to(memory_format=torch.channels_last)
        times = interleaved({"ours": inference(ours, x_cl), "peer": inference(peer, x_cl)}, repeats)
        rows.append(compare(pair, "channels_last inference (s)", times["ours"], times["peer"], "lower"))
    return rows


def run(quick: bool, compiled: bool) -> dict:
    """Run every benchmark and return the results."""
    results: dict = {
        "machine": {
            "cpu": _cpu_name(),
            "cores": os.cpu_count(),
            "threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d"),
        },
        "quick": quick,
        "peak_gflops": machine_peak(quick),
        "rows": [],
    }
    rows = results["rows"]
    for pair in pairs(quick):
        built = build_all([pair.ours, pair.peer])
        missing = [m for m in built.values() if isinstance(m, str)]
        if missing:
            rows.append(compare(pair, "all", None, None, "", "; ".join(missing)))
            continue
        repeats = 1 if quick else (4 if pair.group == "U-Net" else 10)
        rows += time_pair(pair, built, torch.randn(*pair.input_size), repeats, compiled and not quick)
        memory = {name: in_subprocess("memory", name, pair.input_size) for name in (pair.ours, pair.peer)}
        rows.append(compare(pair, "train peak memory (MiB)", memory[pair.ours].get("peak_mb"),
                            memory[pair.peer].get("peak_mb"), "lower",
                            "; ".join(m["error"] for m in memory.values() if "error" in m)))
    results["checkpointing"] = checkpointing(quick)
    seed = (4, 1, 64, 64) if quick else (4, 1, 512, 512)
    answers = {tool: in_subprocess("summary", tool, seed) for tool in ("blocks.summary", "torchsummary")}
    ours, stock = answers["blocks.summary"], answers["torchsummary"]
    summary_pair = Pair(f"summary {list(seed)}", "blocks.summary", "torchsummary", seed)
    rows.append(compare(summary_pair, "time, first call (s)", ours.get("seconds"), stock.get("seconds"), "lower"))
    rows.append(compare(summary_pair, "time, second call (s)", ours.get("warm_seconds"), stock.get("warm_seconds"),
                        "lower"))
    rows.append(compare(summary_pair, "peak memory (MiB)", ours.get("peak_mb"), stock.get("peak_mb"), "lower"))
    results["summary_rows_identical"] = "rows" in ours and "rows" in stock and ours["rows"][:-1] == stock["rows"]
    return results


def checkpointing(quick: bool) -> dict:
    """Peak memory of a training step of the default U-Net with and without gradient checkpointing."""
    size = (1, 1, 64, 64) if quick else (2, 1, 256, 256)
    plain = in_subprocess("memory", "blocks UNet2d", size)
    checkpointed = in_subprocess("memory", "blocks UNet2d checkpointed", size)
    return {"input": list(size), "peak_mb": plain.get("peak_mb"), "checkpointed_peak_mb": checkpointed.get("peak_mb")}


def _cpu_name() -> str:
    """The processor's model name from /proc/cpuinfo, or platform's answer."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _number(value: float | None) -> str:
    """A value for the table: 3 significant decimals, or a dash."""
    return "-" if value is None else f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def table(results: dict) -> str:
    """The results as Markdown: machine line, comparison table, checkpointing and summary notes."""
    machine = results["machine"]
    lines = [
        f"Machine: {machine['cpu']}, {machine['cores']} cores ({machine['threads']} threads), "
        f"torch {machine['torch']}, Python {machine['python']}, {machine['date']}"
        f"{' (quick run)' if results['quick'] else ''}. "
        f"Peak (fp32 matmul): {results['peak_gflops']:.0f} GFLOP/s.",
        "",
        "| comparison | metric | blocks | peer | value | peer value | blocks / peer | note |",
        "|---|---|---|---|---:|---:|---:|---|",
    ]
    for row in results["rows"]:
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}x"
        lines.append(
            f"| {row['group']} | {row['metric']} | {row['ours']} | {row['peer']} | {_number(row['ours_value'])} "
            f"| {_number(row['peer_value'])} | {ratio} ({row['better']} is better) | {row['note']} |"
        )
    ckpt = results.get("checkpointing", {})
    if ckpt.get("peak_mb") and ckpt.get("checkpointed_peak_mb"):
        lines += ["", f"Gradient checkpointing, default UNet2d, training step at {ckpt['input']}: peak "
                      f"{ckpt['peak_mb']:,.0f} MiB -> {ckpt['checkpointed_peak_mb']:,.0f} MiB "
                      f"({ckpt['checkpointed_peak_mb'] / ckpt['peak_mb']:.2f}x)."]
    lines += ["", f"Summary rows identical to torchsummary's (apart from the model's own last row): "
                  f"{results.get('summary_rows_identical')}."]
    return "\n".join(lines)


def main() -> int:
    """Parse arguments, run, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (for CI)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variants")
    parser.add_argument("--json", type=Path, help="where to write the results (default: benchmarks/results.json; "
                                                  "with --quick: not written)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, name, *size = args.child
        answer = (child_memory if kind == "memory" else child_summary)(name, tuple(int(s) for s in size))
        print(json.dumps(answer))
        return 0
    results = run(args.quick, not args.no_compile)
    print(table(results))
    target = args.json or (None if args.quick else HERE / "results.json")
    if target:
        target.write_text(json.dumps(results, indent=1) + "\n")
        print(f"\nwritten to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
