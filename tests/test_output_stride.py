"""``output_stride`` on ResNet and EncoderNet (blocks/levels.py: dilated_levels), the dilation of the unit and blocks.

Checked against torchvision's ``replace_stride_with_dilation`` (same parameter counts, geometry and
outputs with its weights) and timm's ``output_stride`` (same map sizes), in 1-D, 2-D and 3-D, and
through a U-Net whose encoder is dilated.
"""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision

import blocks
from blocks.levels import dilated_levels

pytestmark = pytest.mark.usefixtures("one_thread")

TORCHVISION = {16: [False, False, True], 8: [False, True, True]}
"""torchvision's replace_stride_with_dilation for each output stride."""


def count(model):
    return sum(p.numel() for p in model.parameters())


def test_dilated_levels_rule():
    strides = [(1, 1), (2, 2), (2, 2), (2, 2)]
    assert dilated_levels(strides, None, (4, 4)) == (tuple(strides), ((1, 1),) * 4)
    assert dilated_levels(strides, 32, (4, 4)) == (tuple(strides), ((1, 1),) * 4)
    assert dilated_levels(strides, 16, (4, 4)) == (((1, 1), (2, 2), (2, 2), (1, 1)), ((1, 1),) * 3 + ((2, 2),))
    assert dilated_levels([(1, 2, 2), (2, 2, 2)], 8, (1, 4, 4)) == (((1, 2, 2), (1, 1, 1)), ((1, 1, 1), (2, 2, 2)))
    for bad in [4, 12, 64, "8", 8.0]:
        with pytest.raises(ValueError, match=rf"^output_stride={bad!r} is not allowed; use None \(no dilation\) or one "
                                             r"of \[8, 16, 32\]$"):
            dilated_levels(strides, bad, (4, 4))
    with pytest.raises(ValueError, match=r"^output_stride=8 cannot be kept: the levels reach a reduction of 16 before"):
        dilated_levels([(4, 4)], 8, (4, 4))
    with pytest.raises(ValueError, match=r"^output_stride=8 cannot be kept"):
        blocks.resnet18(stem_stride=8, output_stride=8)


@pytest.mark.parametrize("output_stride", [8, 16])
def test_resnet50_is_torchvisions_dilated_resnet(output_stride):
    dilation = TORCHVISION[output_stride]
    tv = torchvision.models.resnet50(replace_stride_with_dilation=dilation).eval()
    net = blocks.from_torchvision(tv, output_stride=output_stride).eval()  # also compares every conv's geometry
    assert count(net) == count(tv) == 25_557_032
    assert count(blocks.resnet50(output_stride=output_stride)) == 25_557_032
    x = torch.randn(1, 3, 67, 64)
    with torch.no_grad():
        assert torch.equal(net(x), tv(x))
        body = torch.nn.Sequential(*list(tv.children())[:-2])
        assert torch.equal(net.forward_features(x), body(x))
    assert net.forward_features(x).shape == (1, 2048, -(-67 // output_stride), 64 // output_stride)
    assert [f["reduction"] for f in net.feature_info] == [2, 4, 8, *([8, 8] if output_stride == 8 else [16, 16])]
    with pytest.raises(ValueError, match=r"dilation=\(2, 2\), expected \(1, 1\).*; a dilated ResNet "
                                         r"\(replace_stride_with_dilation\) needs output_stride= 16 or 8$"):
        blocks.from_torchvision(tv)


@pytest.mark.parametrize("output_stride", [8, 16, 32])
@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_maps_match_timms_output_stride(arch, output_stride):
    """timm's resnets with output_stride give maps of the same sizes, and the models the same parameter counts."""
    theirs = timm.create_model(arch, output_stride=output_stride, features_only=True)
    ours = getattr(blocks, arch)(output_stride=output_stride, num_classes=None)
    assert [f["reduction"] for f in ours.feature_info] == theirs.feature_info.reduction()
    x = torch.randn(1, 3, 70, 61)
    with torch.no_grad():
        expected = [tuple(m.shape) for m in theirs(x)]
        assert [tuple(m.shape) for m in ours.forward_intermediates(x, intermediates_only=True)] == expected
    assert count(ours) == count(timm.create_model(arch, output_stride=output_stride, num_classes=0))
    if arch == "resnet50":  # the first block of a dilated stage keeps the dilation before it, as timm's
        for name in ("layer3", "layer4"):
            ours_dil = [block.branch[1].conv.dilation for block in getattr(ours, name)]
            theirs_dil = [block.conv2.dilation for block in getattr(theirs, name)]
            assert ours_dil == theirs_dil


@pytest.mark.parametrize("ndim", [1, 3])
def test_resnet_output_stride_in_other_dimensions(ndim):
    net = blocks.ResNet([1, 1, 2, 2], "bottleneck", num_classes=None, ndim=ndim, output_stride=8)
    assert net.strides == ((1,) * ndim, (2,) * ndim, (1,) * ndim, (1,) * ndim)
    assert net.dilations == ((1,) * ndim, (1,) * ndim, (2,) * ndim, (4,) * ndim)
    assert [b.branch[1].conv.dilation for b in net.layer4] == [(2,) * ndim, (4,) * ndim]
    assert [b.branch[1].conv.padding for b in net.layer4] == [(2,) * ndim, (4,) * ndim]
    size = (40,) if ndim == 1 else (8, 20, 19)
    out = net(torch.randn(2, 3, *size))
    assert out.shape == (2, 2048, *(-(-n // 8) for n in size))
    video = blocks.ResNet([1, 1, 1, 1], "plain", num_classes=None, ndim=3, stem_stride=(1, 2, 2), stem_pool=False,
                          strides=(1, (1, 2, 2), (1, 2, 2), (1, 2, 2)), output_stride=8)
    assert video.dilations[-2:] == ((1, 1, 1), (1, 2, 2)) and video.feature_info[-1]["reductions"] == (1, 8, 8)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_encodernet_output_stride(ndim):
    size = {1: (45,), 2: (21, 30), 3: (9, 17, 16)}[ndim]
    x = torch.randn(2, 1, *size)
    plain = blocks.EncoderNet(channels=(2, 4, 8, 8, 16), layers=2, out_length=None, ndim=ndim)
    dilated = blocks.EncoderNet(channels=(2, 4, 8, 8, 16), layers=2, out_length=None, ndim=ndim, output_stride=8)
    assert count(dilated) == count(plain)  # level 4 changes its channels: its first block keeps its projection
    kept = blocks.EncoderNet(channels=(2, 4, 8, 8, 8), layers=1, out_length=None, ndim=ndim, output_stride=8)
    assert kept.encoder[4][0].shortcut is None  # same channels and no stride: the identity (torchvision's rule)
    assert [f["reduction"] for f in dilated.feature_info] == [1, 2, 4, 8, 8]
    assert dilated(x).shape == (2, 16, *(-(-n // 8) for n in size))
    assert [b.branch[1].conv.dilation for b in dilated.encoder[4]] == [(1,) * ndim, (2,) * ndim]
    same = blocks.EncoderNet(channels=(2, 4, 8, 8, 8), layers=1, ndim=ndim, output_stride=16)
    assert same.dilations == ((1,) * ndim,) * 5  # 16 is already its deepest reduction: nothing to dilate


def test_unet_on_a_dilated_encoder_keeps_the_input_size():
    for encoder in (blocks.resnet18(num_classes=None, output_stride=8),
                    blocks.EncoderNet2d(channels=(4, 8, 16, 16, 16), layers=1, out_length=None, output_stride=8)):
        net = blocks.UNet2d(encoder=encoder, out_planes=3)
        assert net.reductions[-2:] == (8, 8)
        x = torch.randn(2, encoder.in_planes, 37, 50)
        assert net(x).shape == (2, 3, 37, 50)


def test_dilated_units_and_blocks():
    unit = blocks.ConvModern2d(4, 4, 3, padding=3, dilation=3)
    assert unit.conv.dilation == (3, 3) and unit(torch.randn(1, 4, 9, 8)).shape == (1, 4, 9, 8)
    with pytest.raises(ValueError, match=r"kernel_size=\(3, 3\) dilated by \(3, 3\) \(needs size \+ 2 \* padding >= "
                                         r"dilation \* \(kernel_size - 1\) \+ 1\)"):
        blocks.ConvModern2d(4, 4, 3, padding=0, dilation=3)(torch.randn(1, 4, 6, 8))
    block = blocks.BlockPlain1d(4, 4, padding=2, dilation=2)
    assert [u.conv.dilation for u in block.branch] == [(2,), (2,)]
    assert block(torch.randn(1, 4, 7)).shape == (1, 4, 7)
    with pytest.raises(ValueError, match=r"a residual block needs an odd kernel_size and padding=dilation \* "
                                         r"\(kernel_size - 1\) // 2 = 2 with dilation=2$"):
        blocks.BlockBottleneck2d(4, 4, dilation=2)
    bottleneck = blocks.BlockBottleneck3d(4, 4, padding=(1, 2, 2), dilation=(1, 2, 2))
    assert [u.conv.dilation for u in bottleneck.branch] == [(1, 1, 1), (1, 2, 2), (1, 1, 1)]
    assert bottleneck.config["dilation"] == [1, 2, 2]
    assert "dilation" not in blocks.resnet18().layer4[1].config  # undilated blocks record nothing new


def test_output_stride_is_saved_and_reloaded(tmp_path):
    net = blocks.EncoderNet2d(channels=(2, 4, 8, 8), layers=1, output_stride=8, global_pool="max").eval()
    again = blocks.from_pretrained(net.save_pretrained(tmp_path)).eval()
    assert again.dilations == net.dilations and again.global_pool == "max"
    x = torch.randn(2, 1, 30, 30)
    with torch.no_grad():
        assert torch.equal(again(x), net(x))
