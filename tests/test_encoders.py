"""Tests of ``encoder=``: real timm and torchvision backbones, plain modules and blocks' own networks as U-Net encoders.

Everything stays small (batch 1 or 2, decoder widths of 8 and 4, one plain block per decoder stage, timm's
smallest variants with ``pretrained=False``), so each case runs in well under a second on a busy CPU.
"""

import itertools
import math
import re

import pytest
import torch
from torch import nn

import blocks
from blocks import UNet, UNet1d, UNet2d, UNet3d, Upsample
from blocks.backbones import BackboneReader
from blocks.networks import EncoderNet2d, EncoderNet3d
from blocks.unet import AE2d, AE3d

pytestmark = pytest.mark.usefixtures("one_thread")

R2 = (2, 4, 8, 16, 32)  # a ResNet-like backbone: first map at 1/2
R4 = (4, 8, 16, 32)  # a ConvNeXt / Swin-like backbone: first map at 1/4
ODD = ((224, 224), (97, 131))
EVEN = ((224, 224), (96, 160))  # backbones whose inner additions need sides divisible by 32 (DLA, HRNet)
LEVELS_RULE = (r"a U-Net needs at least 2 maps, each at the reduction of the one before or a whole multiple of it in "
               r"every dimension, and not all at one reduction \(a plain ViT's")


@pytest.fixture(scope="module")
def timm():
    return pytest.importorskip("timm")


def count(module):
    return sum(p.numel() for p in module.parameters())


def small_widths(reductions):
    """decoder_channels by the rule: 8 per fusing stage (levels - 1), then 4 per factor of 2 of the first map."""
    return (8,) * (len(reductions) - 1) + (4,) * int(math.log2(reductions[0]))


def small_unet(encoder, cls=UNet2d, **kwargs):
    widths = small_widths(kwargs.pop("reductions"))
    return cls(out_planes=2, encoder=encoder, decoder_channels=widths, layers=1, block="plain", **kwargs), widths


def check_decoding(model, x, maps, widths, fuses=True):
    """One forward of ``model`` on ``x``: each decoder stage, deepest first, fuses exactly ``maps`` (channels first,
    shallowest first) at their sizes, outputs ``widths[j]`` channels, the stages past the skips reach exactly the
    input's size (halving the remaining factor each time), and the output is (B, out_planes, *x's size)."""
    seen = []
    hooks = [s.register_forward_hook(lambda m, args, out: seen.append((args, out))) for s in model.decoder]
    try:
        with torch.no_grad():
            y = model(x)
    finally:
        for hook in hooks:
            hook.remove()
    batch, size, levels = x.shape[0], tuple(x.shape[2:]), len(maps) - 1
    assert len(seen) == len(widths) == len(model.decoder)
    for j, (args, out) in enumerate(seen):
        if j < levels:
            skip = maps[levels - 1 - j]
            if fuses:
                assert torch.equal(args[1], skip)
            else:
                assert args[1] is None
            assert tuple(out.shape) == (batch, widths[j], *skip.shape[2:])
        else:
            factor = 2 ** (len(seen) - 1 - j)
            assert tuple(out.shape) == (batch, widths[j], *(-(-n // factor) for n in size))
    assert tuple(y.shape) == (batch, model.out_planes, *size)
    return y


def state_copy(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---- 1. timm feature extractors (features_only=True, in_chans=1), ~20 families -------------------------------------

SWIN = "swin_tiny_patch4_window7_224"
FAMILIES = [
    # id, name, extra create_model kwargs, channels, reductions, sizes
    ("resnet10t", "resnet10t", {}, (64, 64, 128, 256, 512), R2, ODD),
    ("convnext_atto", "convnext_atto", {}, (40, 80, 160, 320), R4, ODD),
    ("efficientnet_b0", "efficientnet_b0", {}, (16, 24, 40, 112, 320), R2, ODD),
    ("mobilenetv3_small_050", "mobilenetv3_small_050", {}, (16, 8, 16, 24, 288), R2, ODD),
    ("regnetx_002", "regnetx_002", {}, (32, 24, 56, 152, 368), R2, ODD),
    ("densenet121", "densenet121", {}, (64, 256, 512, 1024, 1024), R2, ODD),
    ("swin_tiny", SWIN, {}, (96, 192, 384, 768), R4, ((224, 224),)),  # fixed img_size: 224 only
    ("swin_tiny-any_size", SWIN, {"strict_img_size": False}, (96, 192, 384, 768), R4, ((96, 160),)),
    ("pvt_v2_b0", "pvt_v2_b0", {}, (32, 64, 160, 256), R4, ODD),
    ("efficientvit_b0", "efficientvit_b0", {}, (16, 32, 64, 128), R4, ODD),
    ("mobilevit_xxs", "mobilevit_xxs", {}, (16, 24, 48, 64, 320), R2, ODD),
    ("ghostnet_050", "ghostnet_050", {}, (8, 12, 20, 40, 80), R2, ODD),
    ("hrnet_w18_small", "hrnet_w18_small", {}, (64, 128, 256, 512, 1024), R2, EVEN),
    ("dla46_c", "dla46_c", {}, (32, 64, 64, 128, 256), R2, EVEN),
    ("res2net50_14w_8s", "res2net50_14w_8s", {}, (64, 256, 512, 1024, 2048), R2, ((97, 131),)),
    ("cspresnet50", "cspresnet50", {}, (64, 128, 256, 512, 1024), R2, ((97, 131),)),
    ("rexnet_100", "rexnet_100", {}, (16, 38, 61, 128, 185), R2, ODD),
    ("edgenext_xx_small", "edgenext_xx_small", {}, (24, 48, 88, 168), R4, ODD),
    ("fastvit_t8", "fastvit_t8", {}, (48, 96, 192, 384), R4, ODD),
    ("hgnetv2_b0", "hgnetv2_b0", {}, (64, 256, 512, 1024), R4, ODD),
    ("tiny_vit_5m_224", "tiny_vit_5m_224", {}, (64, 128, 160, 320), R4, ODD),
    ("lcnet_050", "lcnet_050", {}, (16, 32, 64, 128, 256), R2, ODD),
    ("mnasnet_small", "mnasnet_small", {}, (8, 16, 16, 32, 144), R2, ODD),
]
FEATURES_WITH_INTERMEDIATES = {"hrnet_w18_small"}  # timm's HighResolutionNetFeatures keeps forward_intermediates


@pytest.mark.parametrize("name, kwargs, channels, reductions, sizes", [f[1:] for f in FAMILIES],
                         ids=[f[0] for f in FAMILIES])
def test_timm_feature_extractor_as_encoder(timm, name, kwargs, channels, reductions, sizes):
    torch.manual_seed(0)
    backbone = timm.create_model(name, pretrained=False, features_only=True, in_chans=1, **kwargs)
    assert tuple(backbone.feature_info.channels()) == channels
    assert tuple(backbone.feature_info.reduction()) == reductions
    before, params = state_copy(backbone), count(backbone)
    model, widths = small_unet(backbone, reductions=reductions)
    model.eval()  # batch 1: rexnet's squeeze-excite BatchNorm sees one value per channel in training mode
    assert same_state(backbone.state_dict(), before)  # reading it (a meta dry run where needed) changed nothing
    assert model.encoder is backbone and model.stem is None
    assert model.channels == channels and model.reductions == reductions
    assert model.in_planes == 1 and model.min_size == reductions[-1] + 1
    assert count(backbone) == params  # an extractor has no head to prune
    nhwc = name == SWIN
    call = "intermediates" if name in FEATURES_WITH_INTERMEDIATES else "forward"
    assert model.reader.call == call and model.reader.channels_last == (nhwc,) * len(channels)
    assert [s.out_planes for s in model.decoder] == list(widths) and model.head.conv.in_channels == widths[-1]
    extra = len(widths) - (len(channels) - 1)
    assert [s.skip_planes for s in model.decoder] == [*reversed(channels[:-1])] + [0] * extra
    assert {k for k in model.state_dict() if k.startswith("encoder.")} == {f"encoder.{k}" for k in before}
    for size in sizes:
        x = torch.randn(1, 1, *size)
        with torch.no_grad():
            maps = backbone(x)
        if nhwc:
            assert all(m.shape[-1] == c for m, c in zip(maps, channels))  # swin's maps come channels-last
            maps = [m.permute(0, 3, 1, 2) for m in maps]
        check_decoding(model, x, maps, widths)


# ---- 2. timm whole models, read through forward_intermediates, classifier pruned -----------------------------------

WHOLE = ["resnet10t", "convnext_atto", "efficientnet_b0", "mobilenetv3_small_050", "regnetx_002", "pvt_v2_b0",
         "efficientvit_b0", "ghostnet_050", "edgenext_xx_small", "dla46_c", SWIN]
def whole_model(timm, name):
    backbone = timm.create_model(name, pretrained=False, in_chans=1)
    info = [(f["num_chs"], f["reduction"]) for f in backbone.feature_info]
    return backbone, tuple(c for c, _ in info), tuple(r for _, r in info)


@pytest.mark.parametrize("name", WHOLE)
def test_timm_whole_model_as_encoder(timm, name):
    torch.manual_seed(0)
    backbone, channels, reductions = whole_model(timm, name)
    model, widths = small_unet(backbone, reductions=reductions)
    model.eval()
    assert model.reader == BackboneReader(channels, reductions, 1, "intermediates", (False,) * len(channels))
    assert model.encoder is backbone and model.channels == channels and model.reductions == reductions
    if name == "dla46_c":  # the whole model also describes its 1/1 map: no stage past the skips
        assert reductions == (1, 2, 4, 8, 16, 32) and len(model.decoder) == 5
    x = torch.randn(1, 1, *{SWIN: (224, 224), "dla46_c": (96, 160)}.get(name, (97, 131)))
    with torch.no_grad():
        maps = backbone.forward_intermediates(x, intermediates_only=True)
    check_decoding(model, x, maps, widths)


@pytest.mark.parametrize("name", [
    n for n in WHOLE
])
def test_timm_whole_model_loses_its_head_and_every_parameter_gets_a_gradient(timm, name):
    torch.manual_seed(0)
    backbone, _, reductions = whole_model(timm, name)
    extractor = timm.create_model(name, pretrained=False, features_only=True, in_chans=1)
    model, _ = small_unet(backbone, reductions=reductions)
    assert count(backbone) == count(extractor)  # exactly the parameters of timm's own feature extractor
    x = torch.randn(2, 1, *((224, 224) if name == SWIN else (96, 160)))
    model(x).square().mean().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


def test_timm_resnet10t_classifier_is_pruned(timm):
    torch.manual_seed(0)
    backbone = timm.create_model("resnet10t", pretrained=False)
    assert isinstance(backbone.fc, nn.Linear) and backbone.num_classes == 1000
    model = UNet2d(out_planes=2, encoder=backbone, decoder_channels=(8, 8, 8, 8, 4), layers=1, block="plain")
    assert model.in_planes == 3  # timm's default in_chans, read from its first conv
    assert isinstance(backbone.fc, nn.Identity) and isinstance(backbone.get_classifier(), nn.Identity)
    assert backbone.num_classes == 0 and not any(k.startswith("encoder.fc.") for k in model.state_dict())
    y = model(torch.randn(2, 3, 65, 70))
    assert y.shape == (2, 2, 65, 70)
    y.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())


# ---- 3. torchvision extractors: dict outputs, measured by a meta dry run --------------------------------------------

RETURN_NODES = {"relu": "a", "layer1": "b", "layer2": "c", "layer3": "d", "layer4": "e"}


@pytest.mark.parametrize("kind", ["create_feature_extractor", "IntermediateLayerGetter"])
def test_torchvision_extractor_as_encoder(kind):
    torchvision = pytest.importorskip("torchvision")
    from torchvision.models._utils import IntermediateLayerGetter
    from torchvision.models.feature_extraction import create_feature_extractor

    torch.manual_seed(0)
    resnet = torchvision.models.resnet18()
    if kind == "create_feature_extractor":
        backbone = create_feature_extractor(resnet, return_nodes=RETURN_NODES)
    else:
        backbone = IntermediateLayerGetter(resnet, RETURN_NODES)
    before = state_copy(backbone)
    model = UNet2d(out_planes=2, encoder=backbone, decoder_channels=(8, 8, 8, 8, 4), layers=1, block="plain").eval()
    assert model.reader == BackboneReader((64, 64, 128, 256, 512), R2, 3, "forward", (False,) * 5)
    assert same_state(backbone.state_dict(), before)  # the dry run ran on a meta copy
    assert all(p.device.type == "cpu" for p in backbone.parameters())
    x = torch.randn(1, 3, 97, 131)
    with torch.no_grad():
        out = backbone(x)
    assert list(out) == list("abcde")
    check_decoding(model, x, list(out.values()), (8, 8, 8, 8, 4))


# ---- 4. plain modules: list / tuple / dict / NHWC outputs, and ones that are refused -------------------------------


class Pyramid(nn.Module):
    """A plain module returning its maps, with no description: convs of stride 2 (the first of ``stride``).

    ``out``: ``'list'``, ``'tuple'``, ``'dict'``, ``'reversed'`` (deepest first) or ``'tokens'`` ((B, N, C), as
    a ViT's).
    """

    def __init__(self, widths=(6, 10, 12), out="list", nhwc=False, stride=2):
        super().__init__()
        planes = [1, *widths]
        self.convs = nn.ModuleList(
            nn.Conv2d(a, b, 3, stride=stride if i == 0 else 2, padding=1)
            for i, (a, b) in enumerate(itertools.pairwise(planes))
        )
        self.out, self.nhwc = out, nhwc

    def forward(self, x):
        maps = []
        for conv in self.convs:
            x = torch.relu(conv(x))
            maps.append(x.permute(0, 2, 3, 1) if self.nhwc else x)
        if self.out == "dict":
            return {f"m{i}": m for i, m in enumerate(maps)}
        if self.out == "reversed":
            return maps[::-1]
        if self.out == "tokens":
            return [m.flatten(2).transpose(1, 2) for m in maps]
        return tuple(maps) if self.out == "tuple" else maps


@pytest.mark.parametrize("out, nhwc", [("list", False), ("tuple", False), ("dict", False), ("list", True)],
                         ids=["list", "tuple", "dict", "nhwc-list"])
def test_plain_module_returning_maps(out, nhwc):
    torch.manual_seed(0)
    backbone = Pyramid(out=out, nhwc=nhwc)
    model, widths = small_unet(backbone, reductions=(2, 4, 8))
    assert model.reader == BackboneReader((6, 10, 12), (2, 4, 8), 1, "forward", (nhwc,) * 3)
    x = torch.randn(2, 1, 37, 53)
    with torch.no_grad():
        maps = backbone(x)
    maps = list(maps.values()) if out == "dict" else list(maps)
    if nhwc:
        assert [tuple(m.shape) for m in maps] == [(2, 19, 27, 6), (2, 10, 14, 10), (2, 5, 7, 12)]
        maps = [m.permute(0, 3, 1, 2) for m in maps]
    check_decoding(model, x, maps, widths)


@pytest.mark.parametrize("kwargs, channels, reductions, nhwc", [
    ({"widths": (6, 10, 14), "nhwc": True}, (6, 10, 14), (2, 4, 8), True),  # (1, 28, 28, 14) read as 28@1/16
    ({"widths": (8, 16, 32, 56), "nhwc": True}, (8, 16, 32, 56), (2, 4, 8, 16), True),  # regnet-like 56 channels
    ({"widths": (6, 10, 14), "stride": 3}, (6, 10, 14), (3, 6, 12), False),  # (1, 14, 19, 19) read as NHWC
], ids=["nhwc-14-channels", "nhwc-56-channels", "nchw-at-1_12"])
def test_layout_heuristic_reads_the_map_layout(kwargs, channels, reductions, nhwc):
    model = UNet2d(out_planes=2, encoder=Pyramid(**kwargs), layers=1, block="plain")
    assert model.reader.channels == channels and model.reader.reductions == reductions
    assert model.reader.channels_last == (nhwc,) * len(channels)


def test_first_map_at_a_non_power_of_2_reduction():
    backbone = Pyramid(stride=3)  # maps at 1/3, 1/6, 1/12
    model = UNet2d(out_planes=2, encoder=backbone, layers=1, block="plain").eval()
    assert model.reader == BackboneReader((6, 10, 12), (3, 6, 12), 1, "forward", (False,) * 3)
    x = torch.randn(1, 1, 37, 53)
    with torch.no_grad():
        maps = backbone(x)
    check_decoding(model, x, maps, (10, 6, 6))  # by default one stage straight up to the input's size
    with pytest.raises(ValueError, match=r"decoder_channels needs an encoder whose first map is at a power-of-2 "
                                         r"reduction, got 3"):
        UNet2d(encoder=backbone, decoder_channels=(4, 4))


class SameReduction(nn.Module):
    """A ViT-like module: a 16x16 patch embedding, then maps all at 1/16."""

    def __init__(self, depth=3):
        super().__init__()
        self.embed = nn.Conv2d(1, 8, 16, stride=16)
        self.blocks = nn.ModuleList(nn.Conv2d(8, 8, 1) for _ in range(depth))

    def forward(self, x):
        x, maps = self.embed(x), []
        for block in self.blocks:
            x = block(x)
            maps.append(x)
        return maps


def test_same_reduction_maps_are_refused():
    with pytest.raises(ValueError, match=r"encoder=SameReduction has feature channels \(8, 8, 8\) at reductions "
                                         r"\(16, 16, 16\); " + LEVELS_RULE):
        UNet2d(encoder=SameReduction())
    with pytest.raises(ValueError, match=r"feature channels \(8,\) at reductions \(16,\); " + LEVELS_RULE):
        UNet2d(encoder=SameReduction(depth=1))  # one map is not enough either
    with pytest.raises(ValueError, match=r"feature channels \(10, 6\) at reductions \(4, 2\); " + LEVELS_RULE):
        UNet2d(encoder=Pyramid(widths=(6, 10), out="reversed"))  # deepest first: not increasing


@pytest.mark.parametrize("features_only", [True, False], ids=["features_only", "whole"])
def test_timm_plain_vit_is_refused(timm, features_only):
    kwargs = {"features_only": True} if features_only else {}
    backbone = timm.create_model("vit_tiny_patch16_224", pretrained=False, in_chans=1, **kwargs)
    depth = 3 if features_only else 12
    with pytest.raises(ValueError, match=rf"feature channels \({', '.join(['192'] * depth)}\) at reductions "
                                         rf"\({', '.join(['16'] * depth)}\); " + LEVELS_RULE):
        UNet2d(encoder=backbone)


def test_timm_dilated_backbone_decodes_its_last_two_maps_at_one_reduction(timm):
    torch.manual_seed(0)
    backbone = timm.create_model("resnet10t", pretrained=False, features_only=True, in_chans=1, output_stride=16)
    reductions = (2, 4, 8, 16, 16)
    model, widths = small_unet(backbone, reductions=reductions)
    model.eval()
    assert model.reader.reductions == reductions and model.reductions == reductions
    assert not model.decoder[0].sized and model.decoder[1].sized  # 16 -> 16: no up-sampling
    x = torch.randn(1, 1, 97, 131)
    with torch.no_grad():
        maps = backbone(x)
    assert maps[-1].shape[2:] == maps[-2].shape[2:] == (7, 9)
    check_decoding(model, x, maps, widths)


def test_not_a_module_or_not_maps_is_refused():
    with pytest.raises(ValueError, match=r"encoder=list must be an nn.Module returning feature maps"):
        UNet2d(encoder=[nn.Conv2d(1, 4, 3)])
    with pytest.raises(ValueError, match=r"encoder=torch.nn.modules.container.Sequential returned Tensor; a U-Net "
                                         r"encoder must return a list, "
                                         r"tuple or dict of feature maps"):
        UNet2d(encoder=nn.Sequential(nn.Conv2d(1, 4, 3, stride=2)))
    with pytest.raises(ValueError, match=r"encoder=Pyramid returned maps of shapes \[\(1, 8960, 6\), \(1, 2240, 10\), "
                                         r"\(1, 560, 12\)\]; a 2-D U-Net needs \(B, C, \*2 sizes\) or channels-last"):
        UNet2d(encoder=Pyramid(out="tokens"))  # a ViT's (B, N, C) tokens


# ---- 5. in_planes: declared, else the first conv's, else the given one ---------------------------------------------


class PoolPyramid(nn.Module):
    """No conv and no declaration: average pools of the input."""

    def forward(self, x):
        return [nn.functional.avg_pool2d(x, 2**i, ceil_mode=True) for i in (1, 2, 3)]


class Described(nn.Module):
    """timm's convention without timm (forward_intermediates + feature_info, so no dry run); an unused 7-channel
    conv is registered before the 1-channel input conv."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Conv2d(7, 7, 1)
        self.convs = nn.ModuleList([nn.Conv2d(1, 4, 3, 2, 1), nn.Conv2d(4, 8, 3, 2, 1)])
        self.feature_info = [{"num_chs": 4, "reduction": 2}, {"num_chs": 8, "reduction": 4}]

    def forward_intermediates(self, x, intermediates_only=False):
        maps = []
        for conv in self.convs:
            x = conv(x)
            maps.append(x)
        return maps if intermediates_only else (x, maps)


def test_in_planes_declared_beats_the_first_conv():
    backbone = Described()
    assert UNet2d(encoder=backbone).in_planes == 7  # nothing declared: the first conv met in modules()
    backbone.in_chans = 1  # timm's name
    assert UNet2d(encoder=backbone).in_planes == 1
    backbone.in_chans, backbone.in_planes = 2, 1  # blocks' name comes first
    assert UNet2d(encoder=backbone).in_planes == 1
    with pytest.raises(ValueError, match=r"in_planes=2 does not match the encoder's 1 input channels"):
        UNet2d(encoder=backbone, in_planes=2)
    model = UNet2d(out_planes=2, encoder=backbone, in_planes=1, layers=1, block="plain")
    assert model(torch.randn(1, 1, 21, 10)).shape == (1, 2, 21, 10)


def test_in_planes_of_timm_extractors(timm):
    grey = timm.create_model("resnet10t", pretrained=False, features_only=True, in_chans=1)
    assert UNet2d(encoder=grey).in_planes == 1 and UNet2d(encoder=grey, in_planes=1).in_planes == 1
    with pytest.raises(ValueError, match=r"in_planes=3 does not match the encoder's 1 input channels"):
        UNet2d(encoder=grey, in_planes=3)
    rgb = timm.create_model("resnet10t", pretrained=False, features_only=True, in_chans=3)
    assert UNet2d(encoder=rgb).in_planes == 3
    with pytest.raises(ValueError, match=r"in_planes=1 does not match the encoder's 3 input channels"):
        UNet2d(encoder=rgb, in_planes=1)


def test_in_planes_given_when_nothing_tells():
    with pytest.raises(ValueError, match=r"encoder=PoolPyramid does not tell its input channels; give in_planes="):
        UNet2d(encoder=PoolPyramid())
    model = UNet2d(in_planes=3, out_planes=2, encoder=PoolPyramid(), layers=1, block="plain")
    assert model.reader == BackboneReader((3, 3, 3), (2, 4, 8), 3, "forward", (False,) * 3)
    assert model(torch.randn(1, 3, 37, 53)).shape == (1, 2, 37, 53)
    with pytest.raises(ValueError, match=r"UNet2d expects input of shape \(B, 3, H, W\), got \(1, 1, 37, 53\)"):
        model(torch.randn(1, 1, 37, 53))


# ---- 6. decoder_channels and upsample -------------------------------------------------------------------------------


@pytest.mark.parametrize("name, kwargs, channels, expected, fusing", [
    ("resnet10t", {}, (64, 64, 128, 256, 512), 5, 4),  # 4 fusing + 1 from 1/2
    ("resnet10t", {"out_indices": (1, 2, 3, 4)}, (64, 128, 256, 512), 5, 3),  # 3 fusing + 2 from 1/4
    ("convnext_atto", {}, (40, 80, 160, 320), 5, 3),  # 3 fusing + 2 from 1/4
], ids=["resnet10t", "resnet10t-from-1/4", "convnext_atto"])
def test_decoder_channels_length_rule(timm, name, kwargs, channels, expected, fusing):
    backbone = timm.create_model(name, pretrained=False, features_only=True, in_chans=1, **kwargs)
    first = backbone.feature_info.reduction()[0]
    assert expected == len(channels) - 1 + int(math.log2(first))
    widths = tuple(range(3 + expected, 3, -1))  # e.g. (8, 7, 6, 5, 4): all different
    model = UNet2d(out_planes=2, encoder=backbone, decoder_channels=widths, layers=1, block="plain").eval()
    assert [s.out_planes for s in model.decoder] == list(widths) and model.head.conv.in_channels == widths[-1]
    assert [s.in_planes for s in model.decoder] == [channels[-1], *widths[:-1]]
    x = torch.randn(1, 1, 97, 131)
    with torch.no_grad():
        maps = backbone(x)
    check_decoding(model, x, maps, widths)
    for bad in (widths[:-1], widths + (4,), widths[:-1] + (0,), widths[:-1] + (True,), "8" * expected):
        message = (rf"decoder_channels={re.escape(repr(bad))} must be {expected} positive ints, one per decoder stage "
                   rf"deepest first: {fusing} fusing the encoder's maps and {expected - fusing} up to the input's size "
                   rf"\(the first map is at 1/{first}\)")
        with pytest.raises(ValueError, match=message):
            UNet2d(encoder=backbone, decoder_channels=bad)


def test_default_decoder_channels_with_a_first_map_at_1_4(timm):
    backbone = timm.create_model("convnext_atto", pretrained=False, features_only=True, in_chans=1)
    model = UNet2d(out_planes=2, encoder=backbone, layers=1, block="plain").eval()
    assert [s.out_planes for s in model.decoder] == [160, 80, 40, 40]  # one stage from 1/4 straight to 1/1
    x = torch.randn(1, 1, 97, 131)
    with torch.no_grad():
        maps = backbone(x)
    check_decoding(model, x, maps, (160, 80, 40, 40))


def test_decoder_channels_with_a_full_resolution_encoder():
    encoder = EncoderNet2d(in_planes=1, out_length=None, channels=(4, 8, 16), layers=1)
    model = UNet2d(out_planes=2, encoder=encoder, decoder_channels=(6, 5), layers=1, block="plain")
    assert model.reductions == (1, 2, 4) and [s.out_planes for s in model.decoder] == [6, 5]
    with pytest.raises(ValueError, match=r"decoder_channels=\(6, 5, 4\) must be 2 positive ints, one per decoder "
                                         r"stage deepest first: 2 fusing the encoder's maps and 0 up to"):
        UNet2d(encoder=encoder, decoder_channels=(6, 5, 4))
    x = torch.randn(1, 1, 21, 10)
    check_decoding(model, x, encoder.forward_intermediates(x, intermediates_only=True), (6, 5))


def test_upsample_interpolate(timm):
    torch.manual_seed(0)
    backbone = timm.create_model("resnet10t", pretrained=False, features_only=True, in_chans=1)
    widths = (8, 8, 8, 8, 4)
    light = UNet2d(out_planes=2, encoder=backbone, decoder_channels=widths, upsample="interpolate", layers=1,
                   block="plain").eval()
    heavy = UNet2d(out_planes=2, encoder=backbone, decoder_channels=widths, layers=1, block="plain")
    assert all(type(s.up) is Upsample and count(s.up) == 0 for s in light.decoder)
    assert all(not isinstance(s.up, Upsample) and count(s.up) > 0 for s in heavy.decoder)
    assert count(light.decoder) < count(heavy.decoder) and count(light) < count(heavy)
    # the interpolation keeps the deeper channels: the first block reads in_planes + skip_planes
    assert [s.blocks[0].in_planes for s in light.decoder] == [512 + 256, 8 + 128, 8 + 64, 8 + 64, 8]
    x = torch.randn(1, 1, 97, 131)
    with torch.no_grad():
        maps = backbone(x)
    check_decoding(light, x, maps, widths)
    with pytest.raises(ValueError, match=r"upsample='bad' is not allowed; use one of \['block', 'interpolate', 'nearest', 'transpose'\]"):
        UNet2d(encoder=backbone, upsample="bad")


# ---- 7. blocks' own backbones in 1-D and 3-D; their heads pruned ----------------------------------------------------


def test_unet1d_with_a_1d_resnet18():
    torch.manual_seed(0)
    encoder = blocks.resnet18(in_planes=1, num_classes=None, ndim=1)
    model = UNet1d(out_planes=2, encoder=encoder, decoder_channels=(8, 8, 8, 8, 4), layers=1, block="plain").eval()
    assert model.reader == BackboneReader((64, 64, 128, 256, 512), R2, 1, "intermediates", (False,) * 5)
    x = torch.randn(1, 1, 1001)
    with torch.no_grad():
        maps = encoder.forward_intermediates(x, intermediates_only=True)
    assert [tuple(m.shape[1:]) for m in maps] == [(64, 501), (64, 251), (128, 126), (256, 63), (512, 32)]
    check_decoding(model, x, maps, (8, 8, 8, 8, 4))
    # the generic class takes the encoder's ndim
    assert UNet(encoder=EncoderNet3d(out_length=None, channels=(4, 8), layers=1)).ndim == 3
    with pytest.raises(ValueError, match=r"encoder=ResNet is 1-D; this U-Net is 2-D"):
        UNet2d(encoder=encoder)


@pytest.mark.parametrize("cls", [AE3d, UNet3d])
def test_3d_networks_with_an_encodernet3d(cls):
    torch.manual_seed(0)
    encoder = EncoderNet3d(in_planes=1, out_length=None, channels=(4, 8, 16), layers=1, block="plain")
    model = cls(out_planes=2, encoder=encoder, decoder_channels=(6, 5), layers=1, block="plain").eval()
    assert model.reader == BackboneReader((4, 8, 16), (1, 2, 4), 1, "intermediates", (False,) * 3)
    assert [s.skip_planes for s in model.decoder] == ([0, 0] if cls is AE3d else [8, 4])
    x = torch.randn(1, 1, 9, 10, 11)
    with torch.no_grad():
        maps = encoder.forward_intermediates(x, intermediates_only=True)
    check_decoding(model, x, maps, (6, 5), fuses=cls is UNet3d)


@pytest.mark.parametrize("cls", [AE3d, UNet3d])
def test_3d_networks_read_the_per_dimension_reductions_of_an_encodernet3d(cls):
    torch.manual_seed(0)
    encoder = EncoderNet3d(in_planes=1, out_length=None, channels=(4, 8, 16), layers=1, block="plain",
                           strides=(1, (1, 2, 2), 2))
    assert [f["reduction"] for f in encoder.feature_info] == [1, 2, 4]  # timm's int alone would say isotropic
    model = cls(out_planes=2, encoder=encoder, layers=1, block="plain").eval()
    assert model.reader == BackboneReader((4, 8, 16), (1, (1, 2, 2), (2, 4, 4)), 1, "intermediates", (False,) * 3)
    assert model.reductions == (1, (1, 2, 2), (2, 4, 4)) and model.min_size == (3, 5, 5)
    x = torch.randn(1, 1, 5, 9, 11)
    with torch.no_grad():
        maps = encoder.forward_intermediates(x, intermediates_only=True)
    assert [tuple(m.shape[2:]) for m in maps] == [(5, 9, 11), (5, 5, 6), (3, 3, 3)]
    check_decoding(model, x, maps, (8, 4), fuses=cls is UNet3d)
    with pytest.raises(ValueError, match=r"needs an input of depth >= 3, height >= 5 or width >= 5 \(its deepest "
                                         r"level, at 1/\(2, 4, 4\)"):
        model(torch.randn(1, 1, 2, 4, 4))


class DescribedPerDimension(nn.Module):
    """blocks' convention without blocks: ``feature_info`` entries with ``reductions`` beside timm's int."""

    def __init__(self, reductions):
        super().__init__()
        self.conv = nn.Conv3d(1, 4, 1)
        self.feature_info = [{"num_chs": 4 * (i + 1), "reduction": max(r) if isinstance(r, tuple) else r,
                              "reductions": r if isinstance(r, tuple) else (r,) * 3} for i, r in enumerate(reductions)]

    def forward_intermediates(self, x, intermediates_only=False):
        raise NotImplementedError  # read, never run


@pytest.mark.parametrize("reductions, read", [
    (((1, 2, 2), (1, 2, 2), (2, 4, 4)), ((1, 2, 2), (1, 2, 2), (2, 4, 4))),  # a video ResNet's stem and layer1
    ((2, (2, 4, 4), (2, 8, 8)), (2, (2, 4, 4), (2, 8, 8))),
    ((2, 4, 4), (2, 4, 4)),  # a dilated backbone's last maps
    ((3, (3, 6, 6)), (3, (3, 6, 6))),
])
def test_reductions_each_a_whole_multiple_of_the_one_before_are_read(reductions, read):
    model = UNet3d(out_planes=2, encoder=DescribedPerDimension(reductions), layers=1, block="plain")
    assert model.reader.reductions == read and model.reductions == read


@pytest.mark.parametrize("reductions, shown", [
    (((1, 2, 2), (2, 1, 2)), "((1, 2, 2), (2, 1, 2))"),  # smaller in one dimension
    (((1, 2, 2), (1, 3, 4)), "((1, 2, 2), (1, 3, 4))"),  # 3 is no whole multiple of 2
    (((1, 2, 2), (1, 2, 2)), "((1, 2, 2), (1, 2, 2))"),  # all at one reduction
    (((2, 2, 2), 2, (2, 2, 2)), "(2, 2, 2)"),  # all at one reduction, written two ways (read as ints)
    (((1, 2, 2),), "((1, 2, 2),)"),  # one map
])
def test_reductions_that_cannot_be_decoded_are_refused(reductions, shown):
    with pytest.raises(ValueError, match=rf"encoder=DescribedPerDimension has feature channels \(.*\) at reductions "
                                         rf"{re.escape(shown)}; " + LEVELS_RULE):
        UNet3d(encoder=DescribedPerDimension(reductions))


def test_ae2d_with_a_timm_encoder(timm):
    backbone = timm.create_model("resnet10t", pretrained=False, features_only=True, in_chans=1)
    model = AE2d(out_planes=2, encoder=backbone, decoder_channels=(8, 8, 8, 8, 4), layers=1, block="plain").eval()
    assert all(s.skip_planes == 0 for s in model.decoder)
    x = torch.randn(1, 1, 97, 131)
    with torch.no_grad():
        maps = backbone(x)
    check_decoding(model, x, maps, (8, 8, 8, 8, 4), fuses=False)


@pytest.mark.parametrize("layer_order", ["old", "new"])
def test_blocks_resnet_with_a_classifier_gets_its_head_pruned(layer_order):
    torch.manual_seed(0)
    encoder = blocks.resnet18(in_planes=1, num_classes=10, layer_order=layer_order)
    assert encoder.fc is not None and encoder.avgpool is not None
    model = UNet2d(out_planes=2, encoder=encoder, decoder_channels=(8, 8, 8, 8, 4), layers=1, block="plain")
    assert encoder.fc is None and encoder.avgpool is None and encoder.num_classes is None
    assert (encoder.norm_act is None) == (layer_order == "old")  # the last map is taken after it: kept
    assert count(encoder) == count(blocks.resnet18(in_planes=1, num_classes=None, layer_order=layer_order))
    assert not any(k.startswith("encoder.fc.") for k in model.state_dict())
    y = model(torch.randn(2, 1, 64, 70))
    assert y.shape == (2, 2, 64, 70)
    y.square().mean().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


def test_encodernet_with_out_length_gets_its_head_pruned():
    encoder = EncoderNet2d(in_planes=1, out_length=3, channels=(4, 8, 16), layers=1)
    model = UNet2d(out_planes=2, encoder=encoder, layers=1, block="plain")
    assert encoder.fc is None and encoder.avgpool is None
    y = model(torch.randn(2, 1, 20, 23))
    assert y.shape == (2, 2, 20, 23)
    y.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())


# ---- 8. the Encoders issue's like-for-like configuration against smp's Unet('resnet34') ------------------------------


def plain_old_block(cin, cout):
    """A plain 'old'-order block with batch norm: conv3x3-bn-relu-conv3x3-bn (+ 1x1 conv-bn projection) + relu."""
    hidden = min(cin, cout)
    params = cin * hidden * 9 + 2 * hidden + hidden * cout * 9 + 2 * cout
    return params + (cin * cout + 2 * cout if cin != cout else 0)


LIKE_FOR_LIKE = {"decoder_channels": (256, 128, 64, 32, 16), "upsample": "interpolate", "block": "plain", "layers": 1,
                 "normalizer": "batch", "activator": "relu", "layer_order": "old"}
RESNET34_GREY_NO_FC = 21_797_672 - (512 * 1000 + 1000) - 64 * 2 * 7 * 7  # torchvision's count, less fc and 2/3 of conv1


def test_like_for_like_config_against_smp_shapes_and_parameters():
    torch.manual_seed(0)
    model = UNet2d(out_planes=2, encoder=blocks.resnet34(in_planes=1, num_classes=None), **LIKE_FOR_LIKE)
    assert count(model.encoder) == RESNET34_GREY_NO_FC == 21_278_400
    # interpolation keeps the deeper channels: stage j's block reads widths[j-1] (512 first) + the skip
    ins = [512 + 256, 256 + 128, 128 + 64, 64 + 64, 32]
    assert [count(s) for s in model.decoder] == [plain_old_block(i, o) for i, o in zip(ins, (256, 128, 64, 32, 16))]
    assert count(model.head) == 16 * 2 + 2
    assert count(model) == 21_278_400 + sum(plain_old_block(i, o) for i, o in zip(ins, (256, 128, 64, 32, 16))) + 34
    assert count(model) == 24_693_634
    x = torch.randn(2, 1, 64, 64)
    y = model(x)
    assert y.shape == (2, 2, 64, 64)
    smp = pytest.importorskip("segmentation_models_pytorch")
    reference = smp.Unet("resnet34", encoder_weights=None, in_channels=1, classes=2)
    assert count(reference.encoder) == count(model.encoder)  # the same ResNet-34, without its classifier
    assert abs(count(model) - count(reference)) <= 0.1 * count(reference)  # 24,693,634 vs 24,430,242: +1.1%
    with torch.no_grad():
        assert reference.eval()(x).shape == y.shape
