"""2-D weights inflated to 3-D (blocks/inflate.py): I3D and the center rule."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn

import blocks
from blocks.inflate import inflate, inflate_kernel

_spec = importlib.util.spec_from_file_location("make_v010", Path(__file__).parent / "data" / "make_v010.py")
make_v010 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_v010)


def filled(model: nn.Module) -> nn.Module:
    """``model`` with every weight set by the pinned fill rule (outputs of order one)."""
    model.load_state_dict(make_v010.filled_state(model))
    return model


def repeated(image: torch.Tensor, depth: int) -> torch.Tensor:
    """A volume made of one image repeated along depth: (B, C, H, W) -> (B, C, depth, H, W)."""
    return image.unsqueeze(2).expand(-1, -1, depth, *image.shape[2:]).contiguous()


LAYERS = {  # one unit per layer kind; the interior slices of an I3D-inflated layer equal the 2-D layer
    "conv 3 stride 1": lambda: blocks.ConvModern2d(3, 4, normalizer=None, activator=None),
    "conv 7 stride 2": lambda: blocks.ConvModern2d(3, 4, 7, 2, 3, normalizer=None, activator=None),
    "conv 1": lambda: blocks.ConvModern2d(3, 4, 1, 1, 0, normalizer=None, activator=None),
    "batch norm": lambda: blocks.ConvModern2d(3, 4, 1, 1, 0, normalizer="batch", activator=None, layer_order="new"),
    "instance norm": lambda: blocks.ConvModern2d(3, 4, 1, 1, 0, normalizer="pinst", activator=None, layer_order="new"),
    "group norm": lambda: blocks.ConvModern2d(4, 4, 1, 1, 0, normalizer=("group", {"num_groups": 2}), activator=None),
    "prelu": lambda: blocks.ConvModern2d(3, 4, 1, 1, 0, normalizer=None, activator="prelu"),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_i3d_layer_equals_the_2d_layer_on_interior_slices(name):
    torch.manual_seed(0)
    flat = filled(LAYERS[name]()).eval()
    deep = inflate(flat).eval()
    assert type(deep).__name__ == "ConvModern3d"
    image = torch.randn(2, flat.in_planes, 19, 17)
    depth = 9
    expected, got = flat(image), deep(repeated(image, depth))
    k = deep.conv.kernel_size[0]
    stride = deep.conv.stride[0]
    interior = range((k // 2 + stride - 1) // stride, (depth - k // 2 - 1) // stride + 1)  # windows off the borders
    assert len(interior) >= 1
    for index in interior:
        torch.testing.assert_close(got[:, :, index], expected, atol=1e-5, rtol=1e-4)


def test_linear_pooling_and_norm_statistics_are_copied():
    flat = filled(blocks.resnet18(num_classes=7))
    deep = inflate(flat)
    assert deep.fc.weight.shape == (7, 512) and torch.equal(deep.fc.weight, flat.fc.weight)
    norm2, norm3 = flat.layer1[0].branch[0].norm, deep.layer1[0].branch[0].norm
    assert isinstance(norm3, nn.BatchNorm3d)
    for attribute in ("weight", "bias", "running_mean", "running_var"):
        assert torch.equal(getattr(norm2, attribute), getattr(norm3, attribute))
    assert deep.stem.conv.kernel_size == (7, 7, 7) and deep.stem.conv.weight.shape == (64, 3, 7, 7, 7)
    assert isinstance(deep.pool, nn.MaxPool3d) and isinstance(deep.avgpool, nn.AdaptiveAvgPool3d)
    # The result is exactly what ResNet(ndim=3) builds: same keys, same shapes.
    reference = blocks.resnet18(num_classes=7, ndim=3)
    assert {k: v.shape for k, v in deep.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("layer_order", ["old", "new"])
def test_center_rule_gives_the_2d_resnet_exactly(layer_order, training):
    torch.manual_seed(0)
    flat = filled(blocks.resnet18(num_classes=5, layer_order=layer_order)).train(training)
    deep = inflate(flat, rule="center")
    assert deep.training is training
    image = torch.randn(2, 3, 64, 48)
    for depth in (8, 5):
        torch.testing.assert_close(deep(repeated(image, depth)), flat(image), atol=1e-5, rtol=1e-4)


def test_i3d_resnet_comes_close_to_the_2d_resnet_and_closer_with_depth():
    """I3D leaves the depth borders: cosine of the logits 0.855 at depth 8 and 16, 0.944 at 32 (resnet18, 64x64)."""
    torch.manual_seed(0)
    flat = filled(blocks.resnet18(num_classes=10)).eval()
    deep = inflate(flat, rule="i3d").eval()
    image = torch.randn(2, 3, 64, 64)
    expected = flat(image).flatten()
    cosines = {
        depth: nn.functional.cosine_similarity(deep(repeated(image, depth)).flatten(), expected, dim=0).item()
        for depth in (8, 16, 32)
    }
    assert 0.80 < cosines[8] < 0.90 and 0.80 < cosines[16] < 0.90 and 0.92 < cosines[32] < 0.97
    assert max(cosines[8], cosines[16]) < cosines[32]  # deeper volumes: the borders weigh less, but never exact


def test_every_network_inflates_and_refusals():
    unet = blocks.UNet2d(encoder=blocks.from_torchvision(_torchvision_resnet18(), in_planes=1), layers=1, out_planes=2)
    deep = inflate(unet)
    assert type(deep).__name__ == "UNet3d" and type(deep.encoder).__name__ == "ResNet" and deep.encoder.ndim == 3
    assert deep(torch.randn(1, 1, 9, 40, 33)).shape == (1, 2, 9, 40, 33)
    assert type(inflate(blocks.EncoderNet2d(channels=(4, 8)))).__name__ == "EncoderNet3d"
    assert type(inflate(blocks.AE2d(channels=(4, 8), layers=1), rule="center")).__name__ == "AE3d"
    assert type(inflate(blocks.BlockPlain1d(4, 8), ndim=2)).__name__ == "BlockPlain2d"
    with pytest.raises(ValueError, match=r"inflate: ResNet is 2-D, so it inflates to ndim=3; got ndim=2"):
        inflate(blocks.resnet18(), ndim=2)
    with pytest.raises(ValueError, match=r"rule='mean' is not allowed; use one of \['i3d', 'center'\]"):
        inflate(blocks.resnet18(), rule="mean")
    with pytest.raises(ValueError, match=r"inflate takes a blocks model \(built by its constructor\), got Conv2d"):
        inflate(nn.Conv2d(1, 1, 3))
    with pytest.raises(ValueError, match=r"BlockPlain2d has kernel_size=\(3, 5\), one value per dimension"):
        inflate(blocks.BlockPlain2d(4, 4, (3, 5), 1, (1, 2)))


def _torchvision_resnet18():
    torchvision = pytest.importorskip("torchvision")
    return torchvision.models.resnet18(weights=None)


def test_inflate_kernel_rules():
    weight = torch.randn(4, 2, 3, 3)
    i3d, center = inflate_kernel(weight, 5), inflate_kernel(weight, 5, "center")
    assert i3d.shape == center.shape == (4, 2, 5, 3, 3)
    torch.testing.assert_close(i3d.sum(dim=2), weight)  # the depth slices sum to the 2-D kernel
    assert torch.equal(center[:, :, 2], weight) and center[:, :, [0, 1, 3, 4]].abs().sum() == 0


def test_a_user_subclass_inflates_to_the_named_3d_class():
    subclass = type("MyEncoder", (blocks.EncoderNet2d,), {})
    assert type(inflate(subclass(channels=(4, 8), layers=1))).__name__ == "EncoderNet3d"
