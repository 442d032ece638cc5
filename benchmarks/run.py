"""Benchmarks of `blocks` against its peers, measured side by side in one run.

    python benchmarks/run.py            # full run (several minutes on 2 cores); writes benchmarks/results.json
    python benchmarks/run.py --quick    # tiny sizes, one repeat: checks that everything runs (CI)
    python benchmarks/run.py --decoder-widths [--quick]   # only the decoder widths on ResNet-50 (results.json's entry)
    python benchmarks/run.py --device cuda --dtype bf16 --channels-last --budget 480   # on a GPU

On CUDA the timings synchronise the device, peak memory is ``torch.cuda.max_memory_allocated`` and
``--dtype bf16|fp16`` runs under autocast (fp16 with a gradient scaler); ``--channels-last`` converts
models and inputs (``channels_last_3d`` for volumes); ``--budget`` (seconds) stops starting new
pairs once spent.

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

SETTINGS: dict = {"device": "cpu", "dtype": "fp32", "channels_last": False}
"""How this run executes: device, autocast dtype (``fp32`` for none) and memory format (set by ``main``)."""

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _autocast() -> contextlib.AbstractContextManager:
    """Autocast to the run's dtype on its device, or nothing in fp32."""
    if SETTINGS["dtype"] == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(SETTINGS["device"]).type, dtype=DTYPES[SETTINGS["dtype"]])


def _synchronize() -> None:
    """Wait for the device (CUDA timings measure the work, not its launch)."""
    if torch.device(SETTINGS["device"]).type == "cuda":
        torch.cuda.synchronize()


def place(model: nn.Module | torch.Tensor) -> nn.Module | torch.Tensor:
    """Move a model or an input to the run's device and memory format."""
    model = model.to(SETTINGS["device"])
    if SETTINGS["channels_last"]:
        rank = model.dim() if isinstance(model, torch.Tensor) else None
        if rank in (4, None):
            model = model.to(memory_format=torch.channels_last)
        elif rank == 5:
            model = model.contiguous(memory_format=torch.channels_last_3d)
    return model


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


def _monai_unet3d() -> nn.Module:
    from monai.networks.nets import UNet

    return UNet(3, 1, 2, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), num_res_units=2)


def _like_smp() -> nn.Module:
    """smp's U-Net layer for layer: its encoder, decoder widths, nearest up-sampling and two conv units per stage."""
    return blocks.UNet2d(
        out_planes=2, encoder=blocks.resnet34(in_planes=1, num_classes=None), decoder_channels=(256, 128, 64, 32, 16),
        upsample="nearest", decoder_block="conv", decoder_layers=2, normalizer="batch", activator="relu",
        layer_order="old",
    )


DYN_STRIDES = ((1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 2, 2))
"""An anisotropic plan for the 3-D like-for-like pair (thick slices: no stride in depth at first)."""

DYN_FILTERS = (16, 32, 64, 128)


def _monai_dynunet() -> nn.Module:
    from monai.networks.nets import DynUNet

    return DynUNet(3, 1, 2, kernel_size=[3] * 4, strides=DYN_STRIDES, upsample_kernel_size=DYN_STRIDES[1:],
                   filters=DYN_FILTERS, norm_name=("INSTANCE", {"affine": True}),
                   act_name=("leakyrelu", {"inplace": True, "negative_slope": 0.01}))


def _like_dynunet() -> nn.Module:
    """MONAI's DynUNet layer for layer: two conv units per level, transposed up-sampling, the same strides and kernels."""
    return blocks.UNet3d(1, 2, channels=DYN_FILTERS, layers=(1, 2, 2, 2), block="conv", strides=DYN_STRIDES,
                         decoder_block="conv", decoder_layers=2, upsample="transpose", normalizer="pinst",
                         activator="leaky", layer_order="old")


def _blocks_unet3d() -> nn.Module:
    return blocks.UNet3d(in_planes=1, out_planes=2, channels=(16, 32, 64, 128, 256), layers=1, block="plain",
                         normalizer="inst", activator="prelu", layer_order="old", upsample="interpolate")


class _Basic1d(nn.Module):
    """torchvision's BasicBlock in 1-D, written directly with torch.nn (the library's overhead reference)."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm1d(planes)
        self.conv2 = nn.Conv1d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm1d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.down = None if stride == 1 and in_planes == planes else nn.Sequential(
            nn.Conv1d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm1d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.down is None else self.down(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class _ResNet18_1d(nn.Module):
    """ResNet-18 in 1-D, written directly with torch.nn: the same layers as ``blocks.resnet18(ndim=1)``."""

    def __init__(self, in_planes: int = 1, num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv1d(in_planes, 64, 7, 2, 3, bias=False), nn.BatchNorm1d(64),
                                  nn.ReLU(inplace=True), nn.MaxPool1d(3, 2, 1))
        layers, planes = [], 64
        for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [_Basic1d(planes, width, stride), _Basic1d(width, width, 1)]
            planes = width
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


MODELS: dict[str, Callable[[], nn.Module]] = {
    "blocks resnet50": lambda: blocks.resnet50(),
    "torchvision resnet50": _torchvision("resnet50"),
    "blocks resnet50 pre-act": lambda: blocks.resnet50(layer_order="new"),
    "timm resnetv2_50": _timm("resnetv2_50"),
    "blocks UNet2d on resnet34, smp's decoder": _like_smp,
    "blocks UNet2d": lambda: blocks.UNet2d(1, 2),
    "blocks UNet2d checkpointed": lambda: _checkpointed(blocks.UNet2d(1, 2)),
    "smp Unet resnet34": _smp_unet,
    "monai UNet": _monai_unet,
    "blocks UNet3d plain": _blocks_unet3d,
    "monai UNet 3-D": _monai_unet3d,
    "blocks UNet3d, DynUNet's layers": _like_dynunet,
    "monai DynUNet": _monai_dynunet,
    "blocks resnet18 1-D": lambda: blocks.resnet18(in_planes=1, ndim=1),
    "torch.nn resnet18 1-D": _ResNet18_1d,
}
"""Every contender by name; peers are imported only when built."""


@dataclass(frozen=True)
class Pair:
    """A comparison: our model against a peer on the same input.

    Every pair reports a training step and inference; ``dense`` pairs (the U-Nets) add the FLOPs of
    a training step and the achieved GFLOP/s, the others channels-last inference.
    """

    group: str
    ours: str
    peer: str
    input_size: tuple[int, ...]
    dense: bool = False


READINGS: dict[str, str] = {
    "resnet50": "the same architecture layer for layer (torchvision's): any ratio is the library's own cost",
    "pre-act resnet50": "pre-activation ResNets that differ in the projection shortcut (ours normalizes it, "
                        "timm's convolves the shared pre-activated input), so ours has 4 more norms",
    "U-Net like-for-like": "smp's U-Net layer for layer: the same resnet34 encoder, decoder widths, nearest "
                           "up-sampling and two conv-BN-ReLU units per stage (decoder_block='conv'); only the head "
                           "differs (our 1x1 against smp's 3x3: 256 parameters, 0.2 % of the FLOPs)",
    "3-D U-Net like-for-like": "MONAI's DynUNet layer for layer on an anisotropic plan (strides (1,1,1), (1,2,2), "
                               "(2,2,2), (2,2,2)): two conv-norm-LeakyReLU units per level, transposed up-sampling; "
                               "only our transposed convs' biases differ (112 parameters)",
    "default U-Net": "different designs (the seed's bottleneck U-Net, 64..1024, against smp's resnet34 U-Net or "
                     "MONAI's residual U-Net): compare the achieved GFLOP/s, not the times",
    "default U-Net, small crops": "the same two designs as above on a batch of small crops, where smp's rate "
                                  "falls and the seed's holds",
    "3-D U-Net": "plain-block 3-D U-Net against MONAI's residual-unit U-Net at the same widths, instance norm and "
                 "PReLU in both: they convolve differently at full resolution, so compare GFLOP/s",
    "1-D resnet18": "the same network written directly with torch.nn: the ratio is the library's overhead",
    "summary": "the same table of the seed U-Net (rows identical): ours runs the model on the meta device, "
               "torchsummary on the CPU, so ours pays a one-time start-up and then needs no memory for activations",
}
"""A one-line reading of each comparison: what is compared, and why the architectures do or do not match."""


COMPILED = ("U-Net like-for-like", "default U-Net, small crops")
"""The comparisons also timed under ``torch.compile`` (inductor), unless ``--no-compile``: two, to keep the run short."""


def pairs(quick: bool) -> list[Pair]:
    """The comparisons, at full or quick sizes."""
    image = (1, 3, 64, 64) if quick else (8, 3, 224, 224)
    grey = (1, 1, 64, 64) if quick else (2, 1, 256, 256)
    crops = (2, 1, 32, 32) if quick else (8, 1, 64, 64)
    volume = (1, 1, 32, 32, 32) if quick else (1, 1, 64, 64, 64)
    signal = (1, 1, 1024) if quick else (8, 1, 16384)
    return [
        Pair("resnet50", "blocks resnet50", "torchvision resnet50", image),
        Pair("pre-act resnet50", "blocks resnet50 pre-act", "timm resnetv2_50", image),
        Pair("U-Net like-for-like", "blocks UNet2d on resnet34, smp's decoder", "smp Unet resnet34", grey, True),
        Pair("default U-Net", "blocks UNet2d", "smp Unet resnet34", grey, True),
        Pair("default U-Net", "blocks UNet2d", "monai UNet", grey, True),
        Pair("default U-Net, small crops", "blocks UNet2d", "smp Unet resnet34", crops, True),
        Pair("3-D U-Net", "blocks UNet3d plain", "monai UNet 3-D", volume, True),
        Pair("3-D U-Net like-for-like", "blocks UNet3d, DynUNet's layers", "monai DynUNet", volume, True),
        Pair("1-D resnet18", "blocks resnet18 1-D", "torch.nn resnet18 1-D", signal),
    ]


# ----------------------------------------------------------------------------------------- timing


def train_step(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """One forward + backward pass of ``model`` in training mode."""
    model.train()
    scaler = torch.amp.GradScaler(torch.device(SETTINGS["device"]).type) if SETTINGS["dtype"] == "fp16" else None

    def step() -> None:
        model.zero_grad(set_to_none=True)
        with _autocast():
            loss = model(x).float().mean()
        (loss if scaler is None else scaler.scale(loss)).backward()

    return step


def inference(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """One forward pass of ``model`` in eval mode under ``torch.inference_mode``."""
    model.eval()

    def run() -> None:
        with torch.inference_mode(), _autocast():
            model(x)

    return run


def interleaved(
    fns: dict[str, Callable[[], None]],
    repeats: int,
    warmup: int = 1,
    reduce: Callable[[list[float]], float] = statistics.median,
) -> dict[str, float]:
    """Median (or ``reduce``) seconds per call of each function, calling them in turn ``repeats`` times after a warm-up.

    The order alternates (A B, B A, A B, ...), so that whatever the previous call leaves behind (caches,
    the allocator's state) hits every contender alike.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for repeat in range(repeats):
        for name, fn in (fns.items() if repeat % 2 == 0 else reversed(fns.items())):
            _synchronize()
            start = time.perf_counter()
            fn()
            _synchronize()
            times[name].append(time.perf_counter() - start)
    return {name: reduce(t) for name, t in times.items()}


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
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=3600)
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
            built[name] = place(MODELS[name]())
        except ImportError as error:
            built[name] = f"missing ({error.name})"
    return built


def compare(pair: Pair, metric: str, ours: float | None, peer: float | None, better: str, note: str = "") -> dict:
    """One row of the report: our value, the peer's, and ours / peer."""
    ratio = ours / peer if ours is not None and peer else None
    return {"group": pair.group, "input": list(pair.input_size), "metric": metric, "ours": pair.ours,
            "peer": pair.peer, "ours_value": ours, "peer_value": peer, "ratio": ratio, "better": better,
            "note": note}


def time_pair(pair: Pair, built: dict[str, nn.Module], x: torch.Tensor, repeats: int, compiled: bool) -> list[dict]:
    """Training step and inference of the pair, interleaved; FLOPs and GFLOP/s of the step for dense pairs."""
    ours, peer = built[pair.ours], built[pair.peer]
    rows = []
    for metric, make in {"train step (s)": train_step, "inference (s)": inference}.items():
        times = interleaved({"ours": make(ours, x), "peer": make(peer, x)}, repeats)
        rows.append(compare(pair, metric, times["ours"], times["peer"], "lower"))
        if pair.dense and make is train_step:
            flops = {k: flops_of(make(m, x)) / 1e9 for k, m in (("ours", ours), ("peer", peer))}
            rows.append(compare(pair, "train GFLOP per step", flops["ours"], flops["peer"], ""))
            rows.append(compare(pair, "train GFLOP/s", flops["ours"] / times["ours"], flops["peer"] / times["peer"],
                                "higher"))
    if compiled and pair.group in COMPILED:
        # Static shapes: a second pair of the same class at another size would otherwise be compiled
        # with dynamic sizes (dynamo's automatic dynamic), which torch 2.14's inductor fails on here.
        fns = {k: train_step(torch.compile(m, dynamic=False), x) for k, m in (("ours", ours), ("peer", peer))}
        times = interleaved(fns, repeats)
        rows.append(compare(pair, "compiled train step (s)", times["ours"], times["peer"], "lower"))
    if not pair.dense and x.dim() == 4 and not SETTINGS["channels_last"]:
        x_cl = x.contiguous(memory_format=torch.channels_last)
        for m in (ours, peer):
            m.to(memory_format=torch.channels_last)
        times = interleaved({"ours": inference(ours, x_cl), "peer": inference(peer, x_cl)}, repeats)
        rows.append(compare(pair, "channels_last inference (s)", times["ours"], times["peer"], "lower"))
    return rows


def cuda_memory(model: nn.Module, x: torch.Tensor) -> dict:
    """Peak CUDA memory of one training step, in MiB, beyond what was allocated before it."""
    step = train_step(model, x)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    step()
    torch.cuda.synchronize()
    return {"peak_mb": (torch.cuda.max_memory_allocated() - before) / 2**20}


def run(quick: bool, compiled: bool, budget: float | None = None) -> dict:
    """Run every benchmark and return the results; with ``budget`` (s), start no pair once it is spent."""
    started = time.monotonic()
    cuda = torch.device(SETTINGS["device"]).type == "cuda"
    results: dict = {
        "machine": {
            "cpu": _cpu_name(),
            "cores": os.cpu_count(),
            "threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d"),
            "device": torch.cuda.get_device_name() if cuda else "cpu",
            "dtype": SETTINGS["dtype"],
            "channels_last": SETTINGS["channels_last"],
        },
        "quick": quick,
        "peak_gflops": machine_peak(quick),
        "rows": [],
    }
    rows = results["rows"]
    for pair in pairs(quick):
        if budget is not None and time.monotonic() - started > budget:
            rows.append(compare(pair, "all", None, None, "", f"not run: the budget of {budget:.0f} s was spent"))
            continue
        built = build_all([pair.ours, pair.peer])
        missing = [m for m in built.values() if isinstance(m, str)]
        if missing:
            rows.append(compare(pair, "all", None, None, "", "; ".join(missing)))
            continue
        repeats = 1 if quick else (4 if pair.dense else 10)
        x = place(torch.randn(*pair.input_size))
        rows += time_pair(pair, built, x, repeats, compiled and not quick)
        if cuda:
            memory = {name: cuda_memory(built[name], x) for name in (pair.ours, pair.peer)}
        else:
            memory = {name: in_subprocess("memory", name, pair.input_size) for name in (pair.ours, pair.peer)}
        rows.append(compare(pair, "train peak memory (MiB)", memory[pair.ours].get("peak_mb"),
                            memory[pair.peer].get("peak_mb"), "lower",
                            "; ".join(m["error"] for m in memory.values() if "error" in m)))
    if cuda:
        return results
    results["checkpointing"] = checkpointing(quick)
    seed = (4, 1, 64, 64) if quick else (4, 1, 512, 512)
    answers = {tool: in_subprocess("summary", tool, seed) for tool in ("blocks.summary", "torchsummary")}
    ours, stock = answers["blocks.summary"], answers["torchsummary"]
    summary_pair = Pair("summary", "blocks.summary", "torchsummary", seed)
    rows.append(compare(summary_pair, "time, first call (s)", ours.get("seconds"), stock.get("seconds"), "lower"))
    rows.append(compare(summary_pair, "time, second call (s)", ours.get("warm_seconds"), stock.get("warm_seconds"),
                        "lower"))
    rows.append(compare(summary_pair, "peak memory (MiB)", ours.get("peak_mb"), stock.get("peak_mb"), "lower"))
    results["summary_rows_identical"] = "rows" in ours and "rows" in stock and ours["rows"][:-1] == stock["rows"]
    return results


DECODER_WIDTHS = {
    "default": {},
    "smp widths": {"decoder_channels": (256, 128, 64, 32, 16)},
    "smp widths, interpolate": {"decoder_channels": (256, 128, 64, 32, 16), "upsample": "interpolate"},
}
"""The decoders compared on one big backbone: blocks' default (the encoder's widths), smp's widths, and smp's
widths with smp's plain interpolation."""


def decoder_widths(quick: bool) -> dict:
    """Parameters, forward FLOPs and times of ``UNet2d(out_planes=2, encoder=resnet50(num_classes=None), ...)`` for each
    decoder of `DECODER_WIDTHS`: what ``decoder_channels`` does on a big backbone (the U-Net and Encoders pages)."""
    size = (1, 3, 64, 64) if quick else (1, 3, 256, 256)
    repeats = 1 if quick else 5
    models, rows = {}, []
    for name, kwargs in DECODER_WIDTHS.items():
        torch.manual_seed(0)
        models[name] = model = blocks.UNet2d(out_planes=2, encoder=blocks.resnet50(num_classes=None), **kwargs)
        total = sum(p.numel() for p in model.parameters())
        encoder = sum(p.numel() for p in model.encoder.parameters())
        with torch.device("meta"):
            shadow = blocks.UNet2d(out_planes=2, encoder=blocks.resnet50(num_classes=None), **kwargs)
        flops = flops_of(lambda shadow=shadow: shadow(torch.empty(size, device="meta")))
        rows.append({"decoder": name, "arguments": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
                     "params": total, "decoder_params": total - encoder, "forward_gflops": flops / 1e9})
    x = torch.randn(size)
    # The best of the repeats: on a shared machine, other work only ever adds time.
    forward = interleaved({name: inference(m, x) for name, m in models.items()}, repeats, reduce=min)
    train = interleaved({name: train_step(m, x) for name, m in models.items()}, repeats, reduce=min)
    for row in rows:
        row.update(forward_ms=1e3 * forward[row["decoder"]], train_step_ms=1e3 * train[row["decoder"]])
    return {"model": "UNet2d(out_planes=2, encoder=blocks.resnet50(num_classes=None), **arguments)", "input": list(size),
            "repeats": repeats, "statistic": "min", "threads": torch.get_num_threads(), "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d"), "quick": quick, "rows": rows}


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


def _size(shape: list[int] | None) -> str:
    """An input shape for a heading, ``2×1×256×256``."""
    return "×".join(map(str, shape)) if shape else ""


def _ratio(row: dict) -> str:
    """ours / peer for the table, bold where it favours blocks."""
    if row["ratio"] is None:
        return "-"
    wins = row["ratio"] < 1 if row["better"] == "lower" else row["ratio"] > 1 if row["better"] == "higher" else False
    return f"**{row['ratio']:.2f}x**" if wins else f"{row['ratio']:.2f}x"


def table(results: dict) -> str:
    """The results as Markdown: the machine, then one short table per comparison with its reading.

    Each comparison gets a heading (the peer, the input size), a line naming both models and what the ratio
    means, and a four-column table (metric, blocks, peer, blocks / peer), so it fits a page's width.
    """
    machine = results["machine"]
    lines = [
        (f"Machine: {machine['cpu']}, {machine['cores']} cores ({machine['threads']} threads), "
         f"torch {machine['torch']}, Python {machine['python']}, {machine['date']}"
         f"{' (quick run)' if results['quick'] else ''}. "
         f"Peak (fp32 matmul): {results['peak_gflops']:.0f} GFLOP/s. Ratios in bold favour `blocks`: "
         "lower times and memory, higher GFLOP/s."),
    ]
    comparisons: dict[tuple, list[dict]] = {}
    for row in results["rows"]:
        comparisons.setdefault((row["group"], row["ours"], row["peer"], _size(row.get("input"))), []).append(row)
    for (group, ours, peer, size), rows in comparisons.items():
        reading = f": {READINGS[group]}" if group in READINGS else ""
        lines += ["", f"### {group}: {peer}{f', {size}' if size else ''}", "", f"`{ours}` against `{peer}`{reading}.", "",
                  "| metric | blocks | peer | blocks / peer |", "|---|---:|---:|---:|"]
        lines += [f"| {row['metric']} | {_number(row['ours_value'])} | {_number(row['peer_value'])} | {_ratio(row)} |"
                  for row in rows]
        lines += [f"- {row['metric']}: {row['note']}" if row["metric"] != "all" else f"- {row['note']}"
                  for row in rows if row["note"]]
    ckpt = results.get("checkpointing", {})
    if ckpt.get("peak_mb") and ckpt.get("checkpointed_peak_mb"):
        saving = (f"Default UNet2d, training step at {_size(ckpt['input'])}: peak {ckpt['peak_mb']:,.0f} MiB -> "
                  f"{ckpt['checkpointed_peak_mb']:,.0f} MiB ({ckpt['checkpointed_peak_mb'] / ckpt['peak_mb']:.2f}x).")
        lines += ["", "### Gradient checkpointing", "", saving]
    if "summary_rows_identical" in results:
        same = results["summary_rows_identical"]
        lines += ["", f"Summary rows identical to torchsummary's (apart from the model's own last row): {same}."]
    return "\n".join(lines)


def main() -> int:
    """Parse arguments, run, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (for CI)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variants")
    parser.add_argument("--json", type=Path, help="where to write the results (default: benchmarks/results.json; "
                                                  "with --quick: not written)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default="fp32",
                        help="autocast dtype (fp16 with a gradient scaler); default fp32")
    parser.add_argument("--channels-last", action="store_true", help="channels_last (3-D: channels_last_3d) models "
                                                                     "and inputs")
    parser.add_argument("--budget", type=float, help="seconds after which no new pair starts")
    parser.add_argument("--decoder-widths", action="store_true",
                        help="measure only the decoder widths on ResNet-50 and update that entry of the JSON")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    SETTINGS.update(device=args.device, dtype=args.dtype, channels_last=args.channels_last)
    if args.child:
        kind, name, *size = args.child
        answer = (child_memory if kind == "memory" else child_summary)(name, tuple(int(s) for s in size))
        print(json.dumps(answer))
        return 0
    if args.decoder_widths:
        widths = decoder_widths(args.quick)
        print(json.dumps(widths, indent=1))
        target = args.json or (None if args.quick else HERE / "results.json")
        if target:
            results = json.loads(target.read_text()) if target.exists() else {}
            results["decoder_widths"] = widths
            target.write_text(json.dumps(results, indent=1) + "\n")
            print(f"\nwritten to {target} (decoder_widths only)")
        return 0
    results = run(args.quick, not args.no_compile, args.budget)
    print(table(results))
    default = HERE / ("results.json" if args.device == "cpu" else f"results-{args.device}-{args.dtype}.json")
    target = args.json or (None if args.quick else default)
    if target:
        target.write_text(json.dumps(results, indent=1) + "\n")
        print(f"\nwritten to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
