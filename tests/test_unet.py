"""Tests of blocks.unet: UNet2d, any input size with exact output size, and pluggable encoders."""

import doctest
import importlib
import math
import re
import time

import pytest
import torch
from torch import nn

from blocks import BlockBottleneck2d, BlockPlain2d, UNet2d
from blocks.__main__ import main
from blocks.decoder import DecoderStage
from blocks.resnet import from_torchvision, resnet34
from blocks.summary import shape_table

pytestmark = pytest.mark.usefixtures("one_thread")

SEED_ENCODER = [(64, 512), (128, 256), (256, 128), (512, 64), (1024, 32)]
SEED_DECODER = [(512, 64), (256, 128), (128, 256), (64, 512)]
SMALL = {"channels": (8, 16, 32, 64), "layers": 1}


def count(model):
    return sum(p.numel() for p in model.parameters())


def meta_unet(**kwargs):
    with torch.device("meta"):
        return UNet2d(**kwargs)


def run_with_decoder_hooks(model, x):
    """Return (encoder outputs, decoder stage outputs, output) of one forward of ``model`` on ``x``."""
    decoded = []
    hooks = [stage.register_forward_hook(lambda m, args, out: decoded.append(out)) for stage in model.decoder]
    with torch.no_grad():
        features, output = model.encode(x), model(x)
    for hook in hooks:
        hook.remove()
    return features, decoded, output


# ---- the seed: grey images, 4 x 1 x 512 x 512 -> 2 classes ----------------------------------------------


def test_seed_shapes_on_meta():
    model = meta_unet(in_planes=1, out_planes=2)
    x = torch.empty(4, 1, 512, 512, device="meta")
    features, decoded, output = run_with_decoder_hooks(model, x)
    assert [(f.shape[1], f.shape[2], f.shape[3]) for f in features] == [(c, s, s) for c, s in SEED_ENCODER]
    assert [(d.shape[1], d.shape[2], d.shape[3]) for d in decoded] == [(c, s, s) for c, s in SEED_DECODER]
    assert all(t.shape[0] == 4 for t in features + decoded)
    assert output.shape == (4, 2, 512, 512) and output.device.type == "meta"
    assert len(model.encoder) == 5 and len(model.decoder) == 4
    assert shape_table(model, x).splitlines() == [
        "encoder  64@512  128@256  256@128  512@64  1024@32",
        "decoder  512@64  256@128  128@256  64@512",
        "output   2@512",
    ]


# ---- parameter counts, from the definition (not from the code under test) ------------------------------


def unit(cin, cout, k):
    """A 'new'-order unit with 'pinst' + 'prelu': norm (2 per channel) and PReLU (1) on cin; conv without bias."""
    return 3 * cin + cin * cout * k * k


def block(kind, cin, cout, scales=False):
    hidden = min(cin, cout)  # the U-Net's rule
    if kind == "plain":
        params = unit(cin, hidden, 3) + unit(hidden, cout, 3)
    else:
        params = unit(cin, hidden, 1) + unit(hidden, hidden, 3) + unit(hidden, cout, 1)
    if cin != cout or scales:  # projection: 1x1 conv without bias + affine instance norm on cout
        params += cin * cout + 2 * cout
    return params


def expected_unet_params(kind, in_planes, out_planes, channels, layers):
    c = channels
    params = in_planes * c[0] * 9 + c[0]  # stem: a bare 3x3 conv with bias
    params += layers * block(kind, c[0], c[0])  # encoder level 0
    for i in range(1, len(c)):
        params += block(kind, c[i - 1], c[i], scales=True) + (layers - 1) * block(kind, c[i], c[i])
    for i in range(len(c) - 1):  # decoder: up block, fusion block 2c -> c, more blocks
        params += block(kind, c[i + 1], c[i], scales=True) + block(kind, 2 * c[i], c[i])
        params += (layers - 1) * block(kind, c[i], c[i])
    return params + 3 * c[0] + c[0] * out_planes + out_planes  # head: norm + PReLU, 1x1 conv with bias


@pytest.mark.parametrize("kind", ["bottleneck", "plain"])
@pytest.mark.parametrize("config", [{}, {"channels": (8, 16, 32), "layers": 3}])
def test_parameter_counts(kind, config):
    model = meta_unet(in_planes=1, out_planes=2, block=kind, **config)
    channels, layers = config.get("channels", (64, 128, 256, 512, 1024)), config.get("layers", 2)
    assert count(model) == expected_unet_params(kind, 1, 2, channels, layers)


def test_default_parameter_count():
    assert count(meta_unet(in_planes=1, out_planes=2)) == 33_929_026


# ---- any size in, exactly that size out --------------------------------------------------------------


@pytest.mark.parametrize("size", [(37, 53), (255, 4), (100, 7), (64, 64), (9, 9), (9, 1), (1, 9)])
def test_any_size_gives_exactly_that_size_and_gradients_reach_every_parameter(size):
    torch.manual_seed(0)
    model = UNet2d(in_planes=1, out_planes=3, **SMALL)
    x = torch.randn(2, 1, *size)
    features = model.encode(x)
    assert [tuple(f.shape) for f in features] == [
        (2, c, math.ceil(size[0] / 2**i), math.ceil(size[1] / 2**i)) for i, c in enumerate(SMALL["channels"])
    ]
    y = model(x)
    assert y.shape == (2, 3, *size)
    (y * torch.randn_like(y)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_eval_mode_and_decode_and_forward_agree():
    torch.manual_seed(0)
    model = UNet2d(in_planes=2, out_planes=1, **SMALL).eval()
    x = torch.randn(1, 2, 23, 17)
    with torch.no_grad():
        features = model.encode(x)
        assert torch.equal(model(x), model.head(model.decode(features, x.shape[-2:])))


@pytest.mark.parametrize("size", [(8, 8), (1, 1), (8, 3), (2, 8)])
def test_too_small_input_names_the_minimum(size):
    model = UNet2d(**SMALL)
    assert model.min_size == 9
    with pytest.raises(ValueError, match=rf"height or width >= 9 .* got input of shape \(1, 1, {size[0]}, {size[1]}\)"):
        model(torch.randn(1, 1, *size))


def test_minimum_of_the_seed_u_net_is_17():
    model = meta_unet(out_planes=2)
    assert model.min_size == 17 and model.reductions == (1, 2, 4, 8, 16)
    assert model(torch.empty(1, 1, 17, 1, device="meta")).shape == (1, 2, 17, 1)
    with pytest.raises(ValueError, match=r"height or width >= 17 \(its deepest level, at 1/16"):
        model(torch.empty(1, 1, 16, 16, device="meta"))


def test_wrong_input_names_expected_and_received_shapes():
    model = UNet2d(**SMALL)
    with pytest.raises(ValueError, match=r"UNet2d expects input of shape \(B, 1, H, W\), got \(2, 3, 16, 16\)"):
        model(torch.randn(2, 3, 16, 16))
    with pytest.raises(ValueError, match=r"UNet2d expects input of shape \(B, 1, H, W\), got \(1, 16, 16\)"):
        model.encode(torch.randn(1, 16, 16))


# ---- options reach every block ------------------------------------------------------------------------

NORMS = {
    "batch": lambda m: isinstance(m, nn.BatchNorm2d),
    "inst": lambda m: isinstance(m, nn.InstanceNorm2d) and not m.affine,
    "pinst": lambda m: isinstance(m, nn.InstanceNorm2d) and m.affine,
    "group": lambda m: isinstance(m, nn.GroupNorm) and m.num_groups == min(32, m.num_channels),
    "layer": lambda m: isinstance(m, nn.GroupNorm) and m.num_groups == 1,
    None: None,
}
ACTS = {"relu": nn.ReLU, "prelu": nn.PReLU, "leaky": nn.LeakyReLU, "gelu": nn.GELU, "silu": nn.SiLU,
        "elu": nn.ELU, None: None}
NORM_TYPES = (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm)
ACT_TYPES = tuple(a for a in ACTS.values() if a is not None)


def check_unit(unit, norm, act, order, last_of_old_branch=False, head=False):
    """``unit`` holds exactly the given norm and act, around its conv in ``order``.

    A unit without a normalizer is conv -> act in either order; the head in 'new' order is [norm] -> act -> conv.
    """
    layers = [m for m in unit if not isinstance(m, nn.Upsample)]
    convs = [i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)]
    norms = [m for m in layers if isinstance(m, NORM_TYPES)]
    acts = [m for m in layers if isinstance(m, ACT_TYPES)]
    conv_last = order == "new" and (head or NORMS[norm] is not None)
    assert len(convs) == 1 and convs[0] == (len(layers) - 1 if conv_last else 0)
    assert (norms == []) if NORMS[norm] is None else (len(norms) == 1 and NORMS[norm](norms[0]))
    want_act = ACTS[act] is not None and not last_of_old_branch
    assert (len(acts) == 1 and type(acts[0]) is ACTS[act]) if want_act else acts == []
    if order == "new" and norms and acts:
        assert layers.index(norms[0]) < layers.index(acts[0])


@pytest.mark.parametrize("kind", ["bottleneck", "plain"])
@pytest.mark.parametrize("order", ["new", "old"])
@pytest.mark.parametrize("act", list(ACTS))
@pytest.mark.parametrize("norm", list(NORMS))
def test_every_option_reaches_every_block(norm, act, order, kind):
    model = UNet2d(in_planes=2, out_planes=3, channels=(4, 8, 12), layers=(1, 2, 1), block=kind,
                   normalizer=norm, activator=act, layer_order=order)
    blocks = [m for m in model.modules() if isinstance(m, (BlockPlain2d, BlockBottleneck2d))]
    assert len(blocks) == (1 + 2 + 1) + (1 + 2) + (1 + 1)  # encoder; decoder stages: up block + layers
    assert all(type(b) is (BlockPlain2d if kind == "plain" else BlockBottleneck2d) for b in blocks)
    for b in blocks:
        for i, u in enumerate(b.branch):
            check_unit(u, norm, act, order, last_of_old_branch=order == "old" and i == len(b.branch) - 1)
        assert (b.activation is None) if order == "new" or act is None else type(b.activation) is ACTS[act]
        assert b.hidden_planes == min(b.in_planes, b.out_planes)
        if b.shortcut is not None:
            check_unit(b.shortcut, norm, None, "old")
    if order == "new":  # a bare conv stem; norm + act + 1x1 conv head
        assert [type(m) for m in model.stem] == [nn.Conv2d] and model.stem.conv.bias is not None
        check_unit(model.head, norm, act, order, head=True)
    else:  # conv + norm + act stem; 1x1 conv head
        check_unit(model.stem, norm, act, order)
        assert [type(m) for m in model.head] == [nn.Conv2d]
    assert model.head.conv.bias is not None and model.head.conv.kernel_size == (1, 1)
    assert model(torch.randn(2, 2, 9, 10)).shape == (2, 3, 9, 10)


def test_kernel_size_reaches_every_block_and_the_stem():
    model = UNet2d(channels=(4, 8), layers=1, kernel_size=(5, 3))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
    assert len(convs) == 1 + 4 and all(c.kernel_size == (5, 3) and c.padding == (2, 1) for c in convs)
    assert model(torch.randn(1, 1, 11, 6)).shape == (1, 1, 11, 6)


def test_plain_blocks_down_scale_first_and_up_scale_last():
    model = UNet2d(channels=(4, 8), layers=1, block="plain")
    down, up = model.encoder[1][0], model.decoder[0].up
    assert down.branch[0].conv.stride == (2, 2) and down.branch[1].conv.stride == (1, 1)
    assert not up.branch[0].upsamples and up.branch[1].upsamples


def test_layers_per_level():
    model = UNet2d(channels=(4, 8, 16), layers=(1, 2, 3))
    assert [len(stage) for stage in model.encoder] == [1, 2, 3]
    assert [len(stage.blocks) for stage in model.decoder] == [2, 1]  # levels 1, 0: deepest first
    assert model.layers == (1, 2, 3)


# ---- bad arguments -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"channels": ()}, r"channels=\(\) must be a sequence of at least 2 positive ints, one per level"),
        ({"channels": (64,)}, r"channels=\(64,\) must be a sequence of at least 2 positive ints"),
        ({"channels": (64, 0)}, r"channels=\(64, 0\) must be a sequence of at least 2 positive ints"),
        ({"channels": (64, 12.5)}, r"channels=\(64, 12.5\) must be"),
        ({"channels": 64}, r"channels=64 must be a sequence"),
        ({"channels": "abc"}, r"channels='abc' must be a sequence"),
        ({"layers": 0}, r"layers=0 must be a positive int or a sequence of 5 positive ints, one per level"),
        ({"layers": (2, 2)}, r"layers=\(2, 2\) must be a positive int or a sequence of 5 positive ints"),
        ({"layers": (2, 2, 2, 2, 0)}, r"layers=\(2, 2, 2, 2, 0\) must be"),
        ({"layers": 2.0}, r"layers=2.0 must be"),
        ({"block": "resnet"}, r"block='resnet' is not allowed; use one of \['bottleneck', 'plain', 'conv'\]"),
        ({"block": BlockPlain2d}, r"block=<class .*BlockPlain2d'> is not allowed; use one of"),
        ({"kernel_size": 4}, r"kernel_size=4 must be odd"),
        ({"kernel_size": (3, 0)}, r"kernel_size=\(3, 0\) must be an int >= 1"),
        ({"normalizer": "bn"}, r"normalizer='bn' is not a registered normalizer; valid names: \["),
        ({"activator": "tanh"}, r"activator='tanh' is not a registered activator; valid names: \["),
        ({"layer_order": "pre"}, r"layer_order='pre' is not allowed; use one of \['new', 'old'\]"),
        ({"in_planes": 0}, r"in_planes=0 must be a positive int"),
        ({"out_planes": -2}, r"out_planes=-2 must be a positive int"),
        ({"encoder": nn.Conv2d(1, 4, 3)},
         r"encoder=torch.nn.modules.conv.Conv2d returned Tensor; a U-Net encoder must return a list"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        meta_unet(**kwargs)


# ---- encoder=: a backbone with forward_intermediates and feature_info ---------------------------------------


class TinyBackbone(nn.Module):
    """A stand-in backbone in timm's convention: features at reductions 2, 4, 8."""

    def __init__(self, in_chans=1, widths=(6, 10, 14)):
        super().__init__()
        self.in_chans = in_chans
        planes = [in_chans, *widths]
        self.stages = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(planes, planes[1:]))
        self.feature_info = [{"num_chs": w, "reduction": 2 ** (i + 1), "module": f"stages.{i}"}
                             for i, w in enumerate(widths)]

    def forward_intermediates(self, x, intermediates_only=False):
        features = []
        for stage in self.stages:
            x = torch.relu(stage(x))
            features.append(x)
        return features if intermediates_only else (x, features)


@pytest.mark.parametrize("size", [(37, 53), (9, 20), (100, 7)])
def test_backbone_encoder_gives_exactly_the_input_size(size):
    torch.manual_seed(0)
    backbone = TinyBackbone()
    model = UNet2d(encoder=backbone, out_planes=2, layers=1)
    assert model.encoder is backbone and model.stem is None
    assert model.channels == (6, 10, 14) and model.reductions == (2, 4, 8) and model.min_size == 9
    assert len(model.decoder) == 3 and model.decoder[-1].skip_planes == 0  # two fusions, then up to /1
    x = torch.randn(2, 1, *size)
    features, decoded, y = run_with_decoder_hooks(model, x)
    assert all(torch.equal(a, b) for a, b in zip(features, backbone.forward_intermediates(x, intermediates_only=True)))
    assert [tuple(d.shape[1:]) for d in decoded] == [
        (10, *features[1].shape[-2:]), (6, *features[0].shape[-2:]), (6, *size)
    ]
    assert y.shape == (2, 2, *size)
    model(x).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_backbone_at_full_resolution_needs_no_last_stage():
    backbone = TinyBackbone()
    backbone.feature_info = [{**f, "reduction": f["reduction"] // 2} for f in backbone.feature_info]
    backbone.stages[0].stride = (1, 1)
    model = UNet2d(encoder=backbone, layers=1)
    assert len(model.decoder) == 2 and model(torch.randn(1, 1, 10, 11)).shape == (1, 1, 10, 11)


def test_backbone_settings_and_errors():
    assert UNet2d(encoder=TinyBackbone(in_chans=3)).in_planes == 3  # taken from the backbone
    assert UNet2d(encoder=TinyBackbone(), channels=(6, 10, 14)).channels == (6, 10, 14)
    with pytest.raises(ValueError, match=r"in_planes=2 does not match the encoder's 3 input channels"):
        UNet2d(in_planes=2, encoder=TinyBackbone(in_chans=3))
    with pytest.raises(ValueError, match=r"channels=\(8, 16\) does not match the encoder's feature channels \(6, 10"):
        UNet2d(channels=(8, 16), encoder=TinyBackbone())
    with pytest.raises(ValueError, match=r"layers=\(1, 1\) must be a positive int or a sequence of 3 positive ints"):
        UNet2d(layers=(1, 1), encoder=TinyBackbone())
    with pytest.raises(ValueError, match=r"UNet2d expects input of shape \(B, 1, H, W\), got \(1, 3, 16, 16\)"):
        UNet2d(encoder=TinyBackbone())(torch.randn(1, 3, 16, 16))
    with pytest.raises(ValueError, match=r"height or width >= 9"):
        UNet2d(encoder=TinyBackbone())(torch.randn(1, 1, 8, 8))
    backbone = TinyBackbone()
    backbone.feature_info = [{"channels": 6}]
    with pytest.raises(ValueError, match=r"encoder=TinyBackbone has a feature_info that is neither timm's FeatureInfo nor a "
                                         r"list of dicts with 'num_chs' and 'reduction'"):
        UNet2d(encoder=backbone)
    backbone.feature_info = [{"num_chs": 6, "reduction": 4}, {"num_chs": 10, "reduction": 4}]
    with pytest.raises(ValueError, match=r"feature channels \(6, 10\) at reductions \(4, 4\); a U-Net needs at least 2 "
                                         r"maps, each at the reduction of the one before or a whole multiple of it in every dimension, and not all at "
                                         r"one reduction \(a plain ViT's"):
        UNet2d(encoder=backbone)


def test_backbone_returning_a_tensor_is_refused():
    backbone = TinyBackbone()
    model = UNet2d(encoder=backbone)
    backbone.forward_intermediates = lambda x, intermediates_only: [x]
    with pytest.raises(ValueError, match=r"encoder TinyBackbone returned 1 maps, expected 3 \(one per feature_info entry\)"):
        model(torch.randn(1, 1, 16, 16))


def test_resnet34_encoder_maps_97_by_131_to_97_by_131():
    torch.manual_seed(0)
    model = UNet2d(encoder=resnet34(in_planes=1, num_classes=None), out_planes=2)
    assert model.channels == (64, 64, 128, 256, 512) and model.reductions == (2, 4, 8, 16, 32)
    assert model.min_size == 33
    x = torch.randn(1, 1, 97, 131)
    features, decoded, y = run_with_decoder_hooks(model, x)
    assert [tuple(f.shape[1:]) for f in features] == [(64, 49, 66), (64, 25, 33), (128, 13, 17), (256, 7, 9),
                                                      (512, 4, 5)]
    assert [tuple(d.shape[1:]) for d in decoded] == [(256, 7, 9), (128, 13, 17), (64, 25, 33), (64, 49, 66),
                                                     (64, 97, 131)]
    assert y.shape == (1, 2, 97, 131)


def test_resnet34_from_torchvision_features_equal_torchvision():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    tv = torchvision.models.resnet34().eval()
    tv.fc = nn.Identity()
    model = UNet2d(encoder=from_torchvision(tv), out_planes=2).eval()
    assert model.in_planes == 3
    x = torch.randn(2, 3, 97, 131)
    with torch.no_grad():
        expected = [tv.relu(tv.bn1(tv.conv1(x)))]
        y = tv.maxpool(expected[0])
        for stage in (tv.layer1, tv.layer2, tv.layer3, tv.layer4):
            y = stage(y)
            expected.append(y)
        features = model.encode(x)
        assert model(x).shape == (2, 2, 97, 131)
    assert len(features) == 5
    assert all(torch.allclose(a, b, atol=1e-5, rtol=1e-4) for a, b in zip(features, expected))


# ---- DecoderStage, meta, command line, docstrings -------------------------------------------------------


def test_decoder_stage_up_scales_to_the_skip_or_the_given_size():
    stage = DecoderStage(16, 8, 8, layers=2)
    assert stage(torch.randn(1, 16, 3, 4), torch.randn(1, 8, 5, 8)).shape == (1, 8, 5, 8)
    top = DecoderStage(8, 0, 8, layers=0)
    assert len(top.blocks) == 0 and top(torch.randn(1, 8, 3, 4), output_size=(6, 7)).shape == (1, 8, 6, 7)


def test_shape_table_of_a_non_square_input():
    table = shape_table(UNet2d(channels=(4, 8), layers=1, out_planes=3), torch.zeros(1, 1, 9, 4))
    assert table.splitlines() == ["encoder  4@9x4  8@5x2", "decoder  4@9x4", "output   3@9x4"]


def test_python_dash_m_blocks_shows_the_grey_image_u_net_quickly(capsys):
    start = time.perf_counter()
    assert main([]) == 0
    elapsed = time.perf_counter() - start
    out = capsys.readouterr().out
    assert out.startswith("unet: UNet2d, input [1, 512, 512], batch 4\n")
    assert f"Total params: {count(meta_unet(in_planes=1, out_planes=2)):,}" in out
    assert re.search(r"UNet2d-\d+\s+\[4, 2, 512, 512\]\s+0\n", out)
    assert out.rstrip().splitlines()[-3:] == [
        "encoder  64@512  128@256  256@128  512@64  1024@32",
        "decoder  512@64  256@128  128@256  64@512",
        "output   2@512",
    ]
    assert elapsed < 10, f"python -m blocks took {elapsed:.1f} s"


def test_cli_summary_unet_with_input_and_batch(capsys):
    assert main(["summary", "unet", "--input", "1", "96", "80", "--batch", "4", "--set", "channels=(8, 16, 32)"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"UNet2d-\d+\s+\[4, 2, 96, 80\]\s+0\n", out)
    assert f"Total params: {count(meta_unet(out_planes=2, channels=(8, 16, 32))):,}" in out


def test_torch_export_with_dynamic_height_and_width():
    torch.manual_seed(0)
    model = UNet2d(out_planes=2, channels=(4, 8, 16), layers=1).eval()
    dims = {"x": {2: torch.export.Dim("h", min=5, max=512), 3: torch.export.Dim("w", min=5, max=512)}}
    program = torch.export.export(model, (torch.randn(2, 1, 37, 53),), dynamic_shapes=dims)
    for size in [(37, 53), (9, 9), (100, 7)]:
        x = torch.randn(2, 1, *size)
        assert torch.allclose(program.module()(x), model(x), atol=1e-5)


def test_docstring_examples_run():
    result = doctest.testmod(importlib.import_module("blocks.unet"), verbose=False)
    assert result.attempted > 0 and result.failed == 0
