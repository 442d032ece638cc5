"""Determinism, dtypes and devices: same seed gives the same model; float64 and bfloat16 work on CPU;
``model.to(...)`` moves everything, because no forward creates a tensor on a fixed device or dtype.

The ``meta`` device catches a tensor made on a fixed device inside ``forward`` (mixing it with meta
tensors fails), and float64 catches one made with a fixed dtype (the output would not be float64).
"""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

import blocks
from blocks import BlockBottleneck2d, BlockPlain2d, ConvModern2d, UNet2d, Upsample

pytestmark = pytest.mark.usefixtures("one_thread")

NORMALIZERS = ["batch", "inst", "pinst", "group", "layer", None]
ACTIVATORS = ["prelu", "relu", "gelu", None]


def block_cases():
    """(factory, input shape, output shape): every class with every normalizer; the activators and
    the (layer order, scaler) pairs in rotation, so each class meets every pair."""
    cases = []
    pairs = list(itertools.product(["new", "old"], ["down", "up"]))
    for cls, norm in itertools.product([ConvModern2d, BlockPlain2d, BlockBottleneck2d], NORMALIZERS):
        act = ACTIVATORS[len(cases) % len(ACTIVATORS)]
        order, scaler = pairs[len(cases) % len(pairs)]
        kwargs = {"normalizer": norm, "activator": act, "layer_order": order, "scaler": scaler, "stride": (1, 2)}
        out = (6, 4) if scaler == "down" else (6, 14)
        name = f"{cls.__name__}-{norm}-{act}-{order}-{scaler}"
        cases.append(pytest.param(lambda c=cls, kw=kwargs: c(3, 5, **kw), (2, 3, 6, 7), (2, 5, *out), id=name))
    return cases


BLOCK_CASES = block_cases()


def loose_tensors(model: nn.Module) -> list[str]:
    """Tensor attributes that are neither parameters nor buffers: ``model.to()`` would not move them."""
    return [
        f"{name}.{attr}"
        for name, module in model.named_modules()
        for attr, value in vars(module).items()
        if isinstance(value, torch.Tensor)
    ]


def train_step(model, x):
    """A forward and backward pass; returns the output."""
    y = model(x)
    y.float().square().mean().backward()
    return y


@pytest.mark.parametrize("make, in_shape, out_shape", BLOCK_CASES)
def test_same_seed_same_weights_and_outputs(make, in_shape, out_shape):
    torch.manual_seed(0)
    a = make()
    torch.manual_seed(0)
    b = make()
    torch.manual_seed(1)
    c = make()
    x = torch.randn(in_shape)
    state_a, state_b, state_c = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert any(not torch.equal(state_a[k], state_c[k]) for k in state_a)  # the seed does matter
    assert torch.equal(a(x), b(x))
    assert torch.equal(a.eval()(x), b.eval()(x))


@pytest.mark.parametrize("make, in_shape, out_shape", BLOCK_CASES)
def test_float64(make, in_shape, out_shape):
    torch.manual_seed(0)
    model = make()
    x = torch.randn(in_shape, dtype=torch.float64)
    reference = model(x.float())
    model.double()
    assert all(
        t.dtype == torch.float64 for t in itertools.chain(model.parameters(), model.buffers()) if t.is_floating_point()
    )
    y = train_step(model, x)
    assert y.dtype == torch.float64 and y.shape == out_shape
    assert all(p.grad.dtype == torch.float64 for p in model.parameters())
    torch.testing.assert_close(y.float(), reference, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("make, in_shape, out_shape", BLOCK_CASES)
def test_bfloat16(make, in_shape, out_shape):
    torch.manual_seed(0)
    model = make()
    x = torch.randn(in_shape)
    reference = model(x)
    model.to(torch.bfloat16)
    y = train_step(model, x.bfloat16())
    assert y.dtype == torch.bfloat16 and y.shape == out_shape
    assert all(
        p.grad is not None and p.grad.dtype == torch.bfloat16 and torch.isfinite(p.grad).all()
        for p in model.parameters()
    )
    # bfloat16 keeps 8 bits of mantissa: compare loosely, relative to the output's scale.
    scale = reference.abs().max().item()
    assert (y.float() - reference).abs().max().item() <= 0.1 * scale + 0.05


@pytest.mark.parametrize("make, in_shape, out_shape", BLOCK_CASES)
def test_meta_device_moves_everything(make, in_shape, out_shape):
    model = make()
    assert loose_tensors(model) == []
    model.to("meta")
    assert all(t.device.type == "meta" for t in model.state_dict().values())
    y = model(torch.empty(in_shape, device="meta"))
    assert y.device.type == "meta" and y.shape == out_shape
    if up_scales(in_shape, out_shape):  # a call-time output size is honoured on meta too
        assert model.upsamples is True
        y = model(torch.empty(in_shape, device="meta"), output_size=(9, 8))
        assert y.device.type == "meta" and y.shape == (*out_shape[:2], 9, 8)
    else:  # a down-scaling block refuses one; a network has no up-sampling of its own to size
        assert getattr(model, "upsamples", False) is False
        if hasattr(model, "upsamples"):
            with pytest.raises(ValueError, match=r"^output_size=\(9, 8\) given to a \w+ that does not up-"):
                model(torch.empty(in_shape, device="meta"), output_size=(9, 8))


def up_scales(in_shape, out_shape):
    """True if a case's module up-samples: its output is wider than its input (the blocks with scaler='up')."""
    return len(out_shape) == len(in_shape) and out_shape[-1] > in_shape[-1]


def test_upsample_keeps_dtype_and_device():
    up = Upsample(scale_factor=(2, 3))
    for dtype in (torch.float64, torch.bfloat16):
        assert up(torch.randn(1, 2, 3, 4, dtype=dtype)).dtype == dtype
    y = up(torch.empty(1, 2, 3, 4, device="meta"), output_size=(5, 5))
    assert y.device.type == "meta" and y.shape == (1, 2, 5, 5)


# --------------------------------------------------------------------------------- ResNet and U-Net

NETWORK_CASES = [
    pytest.param(
        lambda: blocks.ResNet([1, 1, 1, 1], "plain", num_classes=10), (2, 3, 40, 36), (2, 10), id="resnet-plain-old"
    ),
    pytest.param(
        lambda: blocks.ResNet(
            [1, 1, 1, 1],
            "bottleneck",
            in_planes=1,
            num_classes=None,
            normalizer="group",
            activator="prelu",
            layer_order="new",
        ),
        (2, 1, 40, 36),
        (2, 2048, 2, 2),
        id="resnet-bottleneck-new-backbone",
    ),
    pytest.param(lambda: UNet2d(1, 2, channels=(4, 8, 16), layers=1), (2, 1, 24, 20), (2, 2, 24, 20), id="unet-new"),
    pytest.param(
        lambda: UNet2d(
            3, 1, channels=(4, 8), layers=(1, 2), block="plain", normalizer="batch", activator="relu", layer_order="old"
        ),
        (2, 3, 17, 9),
        (2, 1, 17, 9),
        id="unet-plain-old",
    ),
]


@pytest.mark.parametrize("make, in_shape, out_shape", NETWORK_CASES)
def test_networks_same_seed_same_weights_and_outputs(make, in_shape, out_shape):
    test_same_seed_same_weights_and_outputs(make, in_shape, out_shape)


@pytest.mark.parametrize("make, in_shape, out_shape", NETWORK_CASES)
def test_networks_float64(make, in_shape, out_shape):
    test_float64(make, in_shape, out_shape)


@pytest.mark.parametrize("make, in_shape, out_shape", NETWORK_CASES)
def test_networks_bfloat16(make, in_shape, out_shape):
    test_bfloat16(make, in_shape, out_shape)


@pytest.mark.parametrize("make, in_shape, out_shape", NETWORK_CASES)
def test_networks_meta_device_moves_everything(make, in_shape, out_shape):
    test_meta_device_moves_everything(make, in_shape, out_shape)


def test_resnet_features_and_unet_encoder_on_meta():
    resnet = blocks.resnet50(num_classes=None).to("meta")
    shapes = [tuple(f.shape) for f in resnet.forward_intermediates(torch.empty(2, 3, 64, 48, device="meta"), intermediates_only=True)]
    assert shapes == [(2, 64, 32, 24), (2, 256, 16, 12), (2, 512, 8, 6), (2, 1024, 4, 3), (2, 2048, 2, 2)]
    unet = UNet2d(1, 2, layers=1, encoder=blocks.resnet18(in_planes=1, num_classes=None)).to("meta")
    y = unet(torch.empty(2, 1, 37, 50, device="meta"))
    assert y.device.type == "meta" and y.shape == (2, 2, 37, 50)
