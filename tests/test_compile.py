"""Strided 1x1 convs with few input channels subsample instead, and a compiled or channels-last training step never crashes.

The oneDNN bundled with torch 2.13 and 2.14 (v3.12.0) writes past its scratch buffer in the weight
gradient of a 1x1, stride-2 conv on a channels-last input with fewer input channels than its
channel block (16 with AVX-512, 8 with AVX2; uxlfoundation/oneDNN#6035): a segmentation fault, heap
corruption, a hang or a wrong gradient. ``torch.compile`` (inductor) turns 2-D convs channels-last
on the CPU, so the projection shortcut of a small U-Net (8 -> 16 channels) met it. Such a conv now
has stride 1 behind a subsampling of its input (`blocks.conv.subsamples`).

In process (NCHW, where the kernel is safe): the subsampling unit is the strided conv it replaces
(same outputs, gradients, state_dict, summary). In child processes, so that a crash fails a test
instead of ending pytest: one child per dimension trains a tiny network of each kind (UNet, AE,
EncoderNet, DecoderNet, ResNet; widths (8, 16), 64 px a side, 16 in 3-D) eagerly in NCHW as the
reference, eagerly in channels-last (``channels_last_3d`` in 3-D; a 1-D tensor has no such form)
and compiled with inductor, and in 2-D also the U-Nets of the other widths and sizes that crashed,
in channels-last. Without the rule the 2-D children die (UNet, AE, EncoderNet at 64x64 compiled
and in channels-last; widths (4, 8) and (8, 16, 32) at 64x64 and (8, 16) at 128x128 in
channels-last). Inductor costs about a minute per model on two cores from an empty cache; one width
and one size per dimension let the models share most of their compiled kernels: about 65 s, 80 s
and 75 s for the 1-D, 2-D and 3-D children here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import blocks
from blocks import BlockPlain2d, ConvModern1d, ConvModern2d, ConvModern3d, summary
from blocks.conv import SUBSAMPLED_BELOW, subsamples

CHILD = r'''
"""Train each case in NCHW, in channels-last and (where marked) compiled; print the differences as JSON."""
import copy, json, sys, time
import torch
import blocks

NDIM = int(sys.argv[1])
SIDE = {1: 64, 2: 64, 3: 16}[NDIM]
SIZE = (SIDE,) * NDIM
WIDTHS = (8, 16)  # one width and size for all: the models share most of their compiled kernels
CASES = {  # name -> (build, input shape without the batch, compiled too)
    "UNet": (lambda: blocks.UNet(1, 2, channels=WIDTHS, layers=1, ndim=NDIM), (1, *SIZE), True),
    "AE": (lambda: blocks.AE(channels=WIDTHS, layers=1, ndim=NDIM), (1, *SIZE), True),
    "EncoderNet": (lambda: blocks.EncoderNet(1, 3, channels=WIDTHS, layers=1, ndim=NDIM), (1, *SIZE), True),
    "DecoderNet": (lambda: blocks.DecoderNet(SIZE, 4, channels=WIDTHS, layers=1, ndim=NDIM), (4,), True),
    "ResNet": (  # in 3-D at 48^3: its batch norm then sees 2x2x2 maps per sample at the deepest stage, not 1x1x1
        lambda: blocks.ResNet([1, 1, 1, 1], "plain", in_planes=1, num_classes=3, ndim=NDIM),
        (1, *(SIZE if NDIM < 3 else (48,) * 3)),
        True,
    ),
}
if NDIM == 2:  # the other widths and sizes that crashed, in eager channels-last only
    for widths, side in [((4, 8), 64), ((8, 16, 32), 64), ((8, 16), 46), ((8, 16), 48), ((8, 16), 96), ((8, 16), 128)]:
        build = lambda widths=widths: blocks.UNet2d(1, 2, channels=widths, layers=1)
        CASES[f"UNet {widths} at {side}x{side}"] = (build, (1, side, side), False)
LAST = {2: torch.channels_last, 3: torch.channels_last_3d}


def step(model, x):
    """Output and parameter gradients of one training step (mean square of the output)."""
    out = model(x)
    grads = torch.autograd.grad(out.square().mean(), list(model.parameters()))
    return out.detach(), [g.detach() for g in grads]


def difference(refs, others):
    """Largest difference of a tensor of ``others`` from its reference, relative to the reference's scale.

    The scale of a tensor is its largest absolute value plus 1e-3 of the largest of all the
    references: a gradient that is zero but for rounding (a bias before a norm) is not divided by ~0.
    """
    floor = 1e-3 * max(r.abs().max() for r in refs)
    return max(((r - o).abs().max() / (r.abs().max() + floor)).item() for r, o in zip(refs, others))


report = {}
start = time.perf_counter()
for name, (build, shape, compiled) in CASES.items():
    if len(sys.argv) > 2 and name not in sys.argv[2:]:
        continue
    torch.manual_seed(0)
    model = build()
    x = torch.randn(2, *shape)
    out, grads = step(model, x)
    runs = {}
    if NDIM in LAST:  # a DecoderNet's input is a vector: only its weights are channels-last
        y = x.contiguous(memory_format=LAST[NDIM]) if x.dim() == NDIM + 2 else x
        runs["channels_last"] = (copy.deepcopy(model).to(memory_format=LAST[NDIM]), y)
    if compiled:
        runs["compiled"] = (torch.compile(copy.deepcopy(model), fullgraph=True, dynamic=False), x)
    report[name] = {}
    for run, (other, y) in runs.items():
        out2, grads2 = step(other, y)
        assert out2.shape == out.shape and len(grads2) == len(grads), (name, run)
        report[name][run] = {"output": difference([out], [out2]), "gradient": difference(grads, grads2)}
    print(name, report[name], f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
print(json.dumps(report))
'''

KINDS = ("UNet", "AE", "EncoderNet", "DecoderNet", "ResNet")
OTHER_2D = tuple(f"UNet {w} at {n}x{n}" for w, n in [((4, 8), 64), ((8, 16, 32), 64), ((8, 16), 46), ((8, 16), 48),
                                                     ((8, 16), 96), ((8, 16), 128)])
TOLERANCE = {"output": 1e-4, "gradient": 1e-2}
"""Largest relative difference from eager NCHW. Measured here: outputs <= 7e-5, gradients <= 5.4e-3
(inductor's fused reductions round otherwise; in 3-D, eager NCHW itself is off float64 by 5e-3)."""


@pytest.mark.slow
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_compiled_and_channels_last_training_steps_complete_with_eager_results(ndim, tmp_path):
    """Each network kind trains compiled (inductor) and channels-last in a child process, as in NCHW."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {
        **os.environ,
        # The child imports the blocks this test imports, and compiles from an empty inductor cache.
        "PYTHONPATH": os.pathsep.join([str(Path(blocks.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
        "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor"),
    }
    done = subprocess.run(
        [sys.executable, str(script), str(ndim)], check=False, capture_output=True, text=True, timeout=900, env=env
    )
    assert done.returncode == 0, f"the child ended with {done.returncode}:\n{done.stderr[-3000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert list(report) == list(KINDS) + (list(OTHER_2D) if ndim == 2 else [])
    for name, runs in report.items():
        expected = (["channels_last"] if ndim > 1 else []) + (["compiled"] if name in KINDS else [])
        assert list(runs) == expected, name
        for run, differences in runs.items():
            assert all(differences[what] < TOLERANCE[what] for what in TOLERANCE), (name, run, differences)


CONVS = {1: ConvModern1d, 2: ConvModern2d, 3: ConvModern3d}


def test_the_rule_takes_strided_1x1_convs_without_padding_and_with_fewer_than_16_input_channels():
    assert SUBSAMPLED_BELOW == 16
    assert subsamples(8, (1, 1), (2, 2), (0, 0)) and subsamples(15, (1,), (3,), (0,))
    assert subsamples(1, (1, 1, 1), (1, 2, 1), (0, 0, 0))  # one strided dimension is enough
    assert not subsamples(16, (1, 1), (2, 2), (0, 0))  # ResNets' shortcuts (64 channels and more) stay strided
    assert not subsamples(8, (1, 1), (1, 1), (0, 0))  # stride 1: the kernel is safe
    assert not subsamples(8, (3, 3), (2, 2), (1, 1)) and not subsamples(8, (1, 3), (2, 2), (0, 1))
    assert not subsamples(8, (1, 1), (2, 2), (1, 1))  # padded: not a subsampling


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_a_unit_of_the_rule_has_a_stride_1_conv_and_says_so(ndim):
    unit = CONVS[ndim](8, 16, 1, 2, 0, normalizer="batch", activator=None, layer_order="old")
    assert unit.subsample == (2,) * ndim and unit.conv.stride == (1,) * ndim
    assert repr(unit).splitlines()[:2] == [f"ConvModern{ndim}d(", f"  subsample={(2,) * ndim}"]
    wide = CONVS[ndim](16, 16, 1, 2, 0, normalizer="batch", activator=None, layer_order="old")
    assert wide.subsample is None and wide.conv.stride == (2,) * ndim and "subsample" not in repr(wide)
    up = CONVS[ndim](8, 16, 1, 2, 0, scaler="up")
    assert up.subsample is None and up.conv.stride == (1,) * ndim  # up-scaling convs never stride
    assert BlockPlain2d(8, 16, stride=2).shortcut.subsample == (2, 2)


def twins(monkeypatch, build):
    """``build()`` with the rule, and again without it (every conv strided), with the same weights."""
    torch.manual_seed(0)
    ruled = build()
    with monkeypatch.context() as patch:
        patch.setattr(blocks.conv, "SUBSAMPLED_BELOW", 0)
        strided = build()
    strided.load_state_dict(ruled.state_dict())
    return ruled, strided


@pytest.mark.parametrize(
    "ndim, size", [(1, (37,)), (2, (64, 64)), (2, (48, 48)), (2, (37, 53)), (3, (7, 9, 11))]
)
def test_a_block_of_the_rule_computes_what_the_strided_block_computes(ndim, size, monkeypatch):
    """NCHW (the kernel is safe there): same output and input gradient, bit for bit; weight gradients to rounding."""
    ruled, strided = twins(monkeypatch, lambda: blocks.BlockPlain(8, 16, stride=2, ndim=ndim))
    assert ruled.shortcut.subsample == (2,) * ndim and strided.shortcut.conv.stride == (2,) * ndim
    x = torch.randn(2, 8, *size)
    results = []
    for block in (ruled, strided):
        y = x.clone().requires_grad_(True)
        out = block(y)
        out.square().mean().backward()
        results.append((out, y.grad, [p.grad for p in block.parameters()]))
    (out, grad_x, grads), (out_ref, grad_x_ref, grads_ref) = results
    assert out.shape == (2, 16, *(-(-n // 2) for n in size))
    assert torch.equal(out, out_ref) and torch.equal(grad_x, grad_x_ref)
    for grad, ref in zip(grads, grads_ref):
        torch.testing.assert_close(grad, ref, rtol=1e-5, atol=1e-6 * ref.abs().max().item())


def test_the_rule_keeps_the_state_dict_the_parameters_and_the_summary(monkeypatch):
    ruled, strided = twins(monkeypatch, lambda: blocks.UNet2d(1, 2, channels=(8, 16), layers=1))
    assert sum(m.subsample is not None for m in ruled.modules() if isinstance(m, blocks.ConvModern)) == 1
    assert [(k, v.shape) for k, v in ruled.state_dict().items()] == [
        (k, v.shape) for k, v in strided.state_dict().items()
    ]
    assert [type(m) for m in ruled.modules()] == [type(m) for m in strided.modules()]
    table = summary(ruled, (1, 32, 32))
    assert table == summary(strided, (1, 32, 32))
    assert "Conv2d-21           [-1, 16, 16, 16]             128" in table  # the shortcut's conv, 8 -> 16


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_fx_and_jit_traces_of_a_unit_of_the_rule_subsample_then_call_the_conv(ndim):
    unit = CONVS[ndim](8, 16, 1, 2, 0, normalizer="batch", activator=None, layer_order="old")
    x = torch.randn(2, 8, *(9,) * ndim)
    traced = torch.fx.symbolic_trace(unit)
    calls = [n.target for n in traced.graph.nodes if n.op in ("call_function", "call_module")]
    assert calls == [getattr(torch.nn.functional, f"avg_pool{ndim}d"), "conv", "norm"]
    expected = unit(x)
    assert torch.equal(traced(x), expected) and torch.equal(torch.jit.trace(unit, x)(x), expected)
