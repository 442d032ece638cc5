"""Mixed precision and memory formats on the CPU: autocast bf16 and channels_last in every dimension."""

from __future__ import annotations

import pytest
import torch

import blocks

NETWORKS = {
    "block": lambda nd: blocks.BlockBottleneck(4, 8, stride=2, ndim=nd),
    "up-block": lambda nd: blocks.BlockPlain(8, 4, stride=2, scaler="up", ndim=nd),
    "resnet": lambda nd: blocks.ResNet([1, 1, 1, 1], "plain", in_planes=4, num_classes=3, ndim=nd),
    "unet": lambda nd: blocks.UNet(in_planes=4, channels=(4, 8, 16), layers=1, ndim=nd),
    "ae": lambda nd: blocks.AE(in_planes=4, channels=(4, 8), layers=1, ndim=nd),
    "encnet": lambda nd: blocks.EncoderNet(in_planes=4, channels=(4, 8), layers=1, ndim=nd),
}
SIZES = {1: (40,), 2: (20, 24), 3: (9, 10, 12)}
RESNET_SIZES = {1: (128,), 2: (64, 64), 3: (64, 64, 64)}
"""A ResNet reduces by 32: these keep its deepest maps above one value per channel, where batch norm's
training statistics of a batch of 2 would otherwise be degenerate (and bf16 rounding can make them infinite)."""


def size_of(name: str, ndim: int) -> tuple[int, ...]:
    """The spatial size of the test input of ``name``."""
    return RESNET_SIZES[ndim] if name == "resnet" else SIZES[ndim]


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("name", list(NETWORKS))
def test_autocast_bf16_forward_and_backward(name, ndim):
    torch.manual_seed(0)
    model = NETWORKS[name](ndim)
    in_planes = 8 if name == "up-block" else 4
    x = torch.randn(2, in_planes, *size_of(name, ndim))
    model.eval()  # values compared in eval mode: batch statistics of 1-pixel maps amplify any rounding
    reference = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(x)
    assert y.shape == reference.shape and torch.isfinite(y).all()
    scale = reference.abs().max().item()
    assert (y.float() - reference).abs().max().item() < 0.1 * scale + 0.1  # bf16 keeps about 3 digits
    # A 3-D ResNet's deepest maps hold 2x2x2 values per sample: batch norm's bf16 training statistics
    # of so few values went non-finite on CI at some thread counts, so it back-propagates through its
    # running statistics (every parameter still gets a gradient); the others train.
    model.train(not (name == "resnet" and ndim == 3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(x)
    y.float().square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("ndim, memory_format", [(2, torch.channels_last), (3, torch.channels_last_3d)])
@pytest.mark.parametrize("name", list(NETWORKS))
def test_channels_last_gives_the_same_values(name, ndim, memory_format):
    torch.manual_seed(0)
    model = NETWORKS[name](ndim).eval()
    in_planes = 8 if name == "up-block" else 4
    x = torch.randn(2, in_planes, *SIZES[ndim])
    expected = model(x)
    last = model.to(memory_format=memory_format)
    y = last(x.contiguous(memory_format=memory_format))
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-4)
    if name in ("block", "up-block") and ndim == 2:  # channels-last in, channels-last out (in 3-D the CPU
        # kernels' choice of layout depends on the thread count, so only the values are pinned there)
        assert y.is_contiguous(memory_format=memory_format) and not y.is_contiguous()


def test_resnet_feature_maps_stay_channels_last():
    model = blocks.resnet18(num_classes=None).eval().to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    maps = model.forward_intermediates(x, intermediates_only=True)
    assert all(m.is_contiguous(memory_format=torch.channels_last) and not m.is_contiguous() for m in maps)
