"""AE, EncoderNet and DecoderNet in 1-D, 2-D and 3-D, and MDNC's presets (blocks/networks.py, blocks/presets.py)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from blocks import summary
from blocks.levels import level_sizes
from blocks.networks import DecoderNet, DecoderNet1d, DecoderNet2d, DecoderNet3d, EncoderNet, EncoderNet2d
from blocks.presets import PRESETS, preset
from blocks.unet import AE, AE1d, AE2d, AE3d, UNet


def count(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def ceil_sizes(size, levels):
    return [tuple(math.ceil(n / 2**i) for n in size) for i in range(levels)]


SMALL = {"channels": (2, 4, 8), "layers": 1}

# ------------------------------------------------------------------------------------------------- AE


@settings(max_examples=30, deadline=None)
@given(
    ndim=st.sampled_from([1, 2, 3]),
    data=st.data(),
    block=st.sampled_from(["plain", "bottleneck"]),
    layer_order=st.sampled_from(["new", "old"]),
)
def test_ae_gives_exactly_the_input_size(ndim, data, block, layer_order):
    size = tuple(data.draw(st.integers(5, 23 if ndim < 3 else 9)) for _ in range(ndim))
    model = AE(**SMALL, block=block, layer_order=layer_order, ndim=ndim)
    with torch.device("meta"):
        x = torch.empty(2, 1, *size)
        features = model.to("meta").encode(x)
        assert [tuple(f.shape) for f in features] == [(2, c, *s) for c, s in zip(SMALL["channels"], ceil_sizes(size, 3))]
        assert model(x).shape == (2, 1, *size)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_ae_is_the_unet_without_skips(ndim):
    ae, unet = AE(**SMALL, ndim=ndim), UNet(**SMALL, ndim=ndim)
    assert [stage.skip_planes for stage in ae.decoder] == [0, 0]
    assert [stage.skip_planes for stage in unet.decoder] == [4, 2]
    assert count(ae.stem) + count(ae.encoder) + count(ae.head) == count(unet.stem) + count(unet.encoder) + count(unet.head)
    # The only difference: the first fusing block of each decoder stage reads 2c instead of c channels.
    assert count(ae.decoder) < count(unet.decoder)
    assert [type(b).__name__ for b in ae.decoder[0].blocks] == [f"BlockBottleneck{ndim}d"]
    assert ae.decoder[0].blocks[0].in_planes == 4 and unet.decoder[0].blocks[0].in_planes == 8
    assert type(AE(**SMALL, ndim=ndim)).__name__ == "AE" and isinstance(AE2d(**SMALL), AE)


def test_ae_named_classes_and_encoder():
    from blocks import resnet18

    assert AE1d(**SMALL)(torch.randn(1, 1, 19)).shape == (1, 1, 19)
    assert AE3d(**SMALL)(torch.randn(1, 1, 5, 6, 7)).shape == (1, 1, 5, 6, 7)
    backbone = resnet18(in_planes=1, num_classes=None, ndim=1)
    model = AE1d(encoder=backbone, out_planes=3, layers=1)
    assert model.encoder is backbone and model.decoder[-1].skip_planes == 0
    assert model(torch.randn(2, 1, 67)).shape == (2, 3, 67)
    with pytest.raises(ValueError, match=r"AE2d needs an input of height or width >= 5"):
        AE2d(**SMALL)(torch.randn(1, 1, 4, 4))


# ---------------------------------------------------------------------------------------- EncoderNet


@settings(max_examples=30, deadline=None)
@given(
    ndim=st.sampled_from([1, 2, 3]),
    data=st.data(),
    out_length=st.sampled_from([None, 0, 1, 5]),
    layer_order=st.sampled_from(["new", "old"]),
)
def test_encoder_net_shapes(ndim, data, out_length, layer_order):
    size = tuple(data.draw(st.integers(5, 40 if ndim < 3 else 12)) for _ in range(ndim))
    with torch.device("meta"):
        model = EncoderNet(in_planes=3, out_length=out_length, **SMALL, layer_order=layer_order, ndim=ndim)
        x = torch.empty(2, 3, *size)
        deepest = (2, 8, *ceil_sizes(size, 3)[-1])
        assert model.forward_features(x).shape == deepest
        maps = model.forward_intermediates(x, intermediates_only=True)
        assert [tuple(m.shape) for m in maps] == [(2, c, *s) for c, s in zip(SMALL["channels"], ceil_sizes(size, 3))]
        expected = deepest if out_length is None else (2, out_length or 8)
        assert model(x).shape == expected


@pytest.mark.parametrize("layer_order", ["new", "old"])
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_encoder_net_parameters_and_feature_info(ndim, layer_order):
    model = EncoderNet(in_planes=1, out_length=5, **SMALL, layer_order=layer_order, ndim=ndim)
    unet = UNet(in_planes=1, **SMALL, layer_order=layer_order, ndim=ndim)
    norm_act = 2 * 8 + 8 if layer_order == "new" else 0  # pinst weight + bias, one PReLU slope per channel
    assert count(model) == count(unet.stem) + count(unet.encoder) + norm_act + 8 * 5 + 5
    last = "norm_act" if layer_order == "new" else "encoder.2"
    assert model.feature_info == [  # timm's int reduction, and one per dimension
        {"num_chs": 2, "reduction": 1, "reductions": (1,) * ndim, "module": "encoder.0"},
        {"num_chs": 4, "reduction": 2, "reductions": (2,) * ndim, "module": "encoder.1"},
        {"num_chs": 8, "reduction": 4, "reductions": (4,) * ndim, "module": last},
    ]
    assert model.num_features == 8 and model.out_length == 5 and model.min_size == 5
    outputs = {}
    for entry in model.feature_info:
        model.get_submodule(entry["module"]).register_forward_hook(
            lambda m, i, o, key=entry["module"]: outputs.setdefault(key, o)
        )
    x = torch.randn(2, 1, *(9,) * ndim)
    maps = model.forward_intermediates(x, intermediates_only=True)
    assert all(torch.equal(outputs[e["module"]], m) for e, m in zip(model.feature_info, maps))


def test_encoder_net_defaults_and_errors():
    model = EncoderNet2d()
    assert model.channels == (64, 128, 256, 512, 1024) and model.layers == (2,) * 5 and model.out_length == 2
    assert model.in_planes == 1 and model.ndim == 2
    with pytest.raises(ValueError, match=r"EncoderNet2d needs an input of height or width >= 5"):
        EncoderNet2d(**SMALL)(torch.randn(1, 1, 4, 3))
    with pytest.raises(ValueError, match=r"EncoderNet2d expects input of shape \(B, 1, H, W\), got \(1, 2, 8, 8\)"):
        EncoderNet2d(**SMALL)(torch.randn(1, 2, 8, 8))
    with pytest.raises(ValueError, match=r"num_classes=-1 must be a positive int, 0 for the pooled features"):
        EncoderNet2d(out_length=-1)
    with pytest.raises(ValueError, match=r"channels=\(4,\) must be a sequence of at least 2 positive ints"):
        EncoderNet2d(channels=(4,))
    with pytest.raises(ValueError, match=r"EncoderNet2d is 2-D; got ndim=3"):
        EncoderNet2d(ndim=3)


# ---------------------------------------------------------------------------------------- DecoderNet


@settings(max_examples=30, deadline=None)
@given(ndim=st.sampled_from([1, 2, 3]), data=st.data(), in_length=st.sampled_from([None, 1, 3]))
def test_decoder_net_gives_exactly_out_size(ndim, data, in_length):
    out_size = tuple(data.draw(st.integers(5, 61 if ndim < 3 else 13)) for _ in range(ndim))
    with torch.device("meta"):
        model = DecoderNet(out_size, in_length=in_length, out_planes=2, **SMALL, ndim=ndim)
        deepest = ceil_sizes(out_size, 3)[-1]
        assert model.sizes == ceil_sizes(out_size, 3) == level_sizes(out_size, 3)
        assert model.input_size == ((in_length,) if in_length else (8, *deepest))
        assert model(torch.empty(4, *model.input_size)).shape == (4, 2, *out_size)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_decoder_net_parameters(ndim):
    out_size = (13, 7, 5)[:ndim]
    model = DecoderNet(out_size, in_length=3, **SMALL, ndim=ndim)
    ae = AE(**SMALL, ndim=ndim)
    deepest = math.prod(ceil_sizes(out_size, 3)[-1])
    fc = 3 * 8 * deepest + 8 * deepest
    bottom = count(ae.encoder[2]) - count(ae.encoder[2][0].shortcut) - count(ae.encoder[2][0].branch)
    bottom += count(model.bottom[0].branch)  # the deepest blocks keep 8 channels: no projection
    assert count(model.fc) == fc
    assert count(model.bottom) == bottom
    assert count(model.decoder) == count(ae.decoder) and count(model.head) == count(ae.head)
    assert count(model) == fc + count(model.bottom) + count(ae.decoder) + count(ae.head)
    assert model.bottom[0].shortcut is None


def test_decoder_net_prime_sizes_and_errors():
    model = DecoderNet2d((97, 31), in_length=5, out_planes=2, **SMALL)
    y = model(torch.randn(3, 5))
    assert y.shape == (3, 2, 97, 31)
    assert DecoderNet1d(101, **SMALL)(torch.randn(2, 2)).shape == (2, 1, 101)
    assert DecoderNet3d(7, in_length=None, **SMALL)(torch.randn(1, 8, 2, 2, 2)).shape == (1, 1, 7, 7, 7)
    with pytest.raises(ValueError, match=r"DecoderNet2d expects input of shape \(B, 5\), got \(3, 4\)"):
        model(torch.randn(3, 4))
    with pytest.raises(ValueError, match=r"DecoderNet3d expects input of shape \(B, 8, 2, 2, 2\), got \(1, 8, 2, 2\)"):
        DecoderNet3d(7, in_length=None, **SMALL)(torch.randn(1, 8, 2, 2))
    with pytest.raises(ValueError, match=r"out_size=\(4, 3\) is too small for 3 levels: the deepest level would be \(1, 1\)"):
        DecoderNet2d((4, 3), **SMALL)
    with pytest.raises(ValueError, match=r"out_size=\(4, 3, 2\) must be an int >= 1 or a pair of such ints"):
        DecoderNet2d((4, 3, 2), **SMALL)
    with pytest.raises(ValueError, match=r"in_length=0 must be a positive int"):
        DecoderNet2d(9, in_length=0, **SMALL)
    assert DecoderNet2d((64, 64)).input_size == (2,) and DecoderNet2d((64, 64)).channels == (64, 128, 256, 512, 1024)


# -------------------------------------------------------------------------------------------- presets

STAGES = {  # MDNC's stage counts and block types (mdnc/modules/resnet.py)
    "unet16": ((2, 1, 1), "plain"), "unet32": ((2, 2, 2), "bottleneck"), "unet44": ((2, 2, 2, 2), "bottleneck"),
    "unet65": ((3, 3, 3, 3), "bottleneck"), "unet83": ((3, 3, 3, 3, 3), "bottleneck"),
    "ae16": ((2, 1, 1), "plain"), "ae32": ((2, 2, 2), "bottleneck"), "ae44": ((2, 2, 2, 2), "bottleneck"),
    "ae65": ((3, 3, 3, 3), "bottleneck"), "ae83": ((3, 3, 3, 3, 3), "bottleneck"),
    "encnet12": ((1,) * 5, "plain"), "encnet32": ((2,) * 5, "bottleneck"), "encnet47": ((3,) * 5, "bottleneck"),
    "encnet62": ((4,) * 5, "bottleneck"),
    "decnet13": ((1,) * 5, "plain"), "decnet33": ((2,) * 5, "bottleneck"), "decnet48": ((3,) * 5, "bottleneck"),
    "decnet63": ((4,) * 5, "bottleneck"),
}
NETWORKS = {"unet": "UNet", "ae": "AE", "encnet": "EncoderNet", "decnet": "DecoderNet"}


def build_preset(name, ndim=2, narrow=True, **kwargs):
    layers, _ = STAGES[name]
    if narrow:
        kwargs.setdefault("channels", tuple(2 * 2**i for i in range(len(layers))))
    args = ((2 ** (len(layers) - 1) + 1,) * ndim,) if name.startswith("dec") else ()
    return preset(name)(*args, ndim=ndim, **kwargs)


def test_presets_are_mdncs():
    assert {name: (p.layers, p.block) for name, p in PRESETS.items()} == STAGES
    import blocks.presets as module

    for name in STAGES:
        assert getattr(module, name).__name__ == name and name in getattr(module, name).__doc__


@pytest.mark.parametrize("name", list(STAGES))
def test_preset_stage_counts_at_full_width_on_meta(name):
    layers, block = STAGES[name]
    with torch.device("meta"):
        model = build_preset(name, narrow=False)
    family = next(v for k, v in NETWORKS.items() if name.startswith(k))
    assert type(model).__name__ == f"{family}2d"
    assert model.layers == layers and model.channels == tuple(64 * 2**i for i in range(len(layers)))
    block_class = f"Block{'Plain' if block == 'plain' else 'Bottleneck'}2d"
    if family == "DecoderNet":
        assert len(model.bottom) == layers[-1] and [len(s.blocks) for s in model.decoder] == list(layers[-2::-1])
    else:
        assert [len(stage) for stage in model.encoder] == list(layers)
        assert {type(b).__name__ for stage in model.encoder for b in stage} == {block_class}
    generic = {"UNet": UNet, "AE": AE, "EncoderNet": EncoderNet, "DecoderNet": DecoderNet}[family]
    explicit_args = ((2 ** (len(layers) - 1) + 1,) * 2,) if family == "DecoderNet" else ()
    with torch.device("meta"):
        explicit = generic(*explicit_args, channels=model.channels, layers=layers, block=block)
    assert count(model) == count(explicit)


@pytest.mark.parametrize("layer_order", ["new", "old"])
@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("name", list(STAGES))
def test_every_preset_trains_in_every_dimension_and_order(name, ndim, layer_order):
    torch.manual_seed(0)
    model = build_preset(name, ndim=ndim, layer_order=layer_order)
    levels = len(STAGES[name][0])
    x = torch.randn(2, 2) if name.startswith("dec") else torch.randn(2, 1, *(2 ** (levels - 1) + 1,) * ndim)
    y = model(x)
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0] == []


def test_presets_fix_layers_and_block_and_take_other_keywords():
    with pytest.raises(ValueError, match=r"unet16 fixes layers=\(2, 1, 1\); got layers=3 \(build UNet for other values\)"):
        preset("unet16")(layers=3)
    with pytest.raises(ValueError, match=r"encnet12 fixes block='plain'"):
        preset("encnet12")(block="bottleneck")
    with pytest.raises(ValueError, match=r"'unet17' is not one of MDNC's presets"):
        preset("unet17")
    model = preset("unet16")(ndim=3, out_planes=2, channels=(2, 4, 8), normalizer="batch")
    assert type(model).__name__ == "UNet3d" and model.out_planes == 2
    assert isinstance(model.encoder[0][0].branch[0].norm, nn.BatchNorm3d)


@pytest.mark.parametrize(
    "make, size",
    [
        (lambda: AE2d(**SMALL), (1, 13, 11)),
        (lambda: EncoderNet2d(**SMALL), (1, 13, 11)),
        (lambda: DecoderNet2d((13, 11), **SMALL), (2,)),
        (lambda: build_preset("unet16", ndim=1), (1, 9)),
    ],
    ids=["ae", "encnet", "decnet", "unet16-1d"],
)
def test_summary_totals_equal_the_parameter_count(make, size, capsys):
    model = make()
    table = summary(model, size, batch_size=2)
    assert f"Total params: {count(model):,}" in table
    assert table.splitlines()[-11].split()[0].startswith(f"{type(model).__name__}-")  # the model is the last row


def test_grad_checkpointing_of_every_network():
    for make, x in [
        (lambda: AE2d(**SMALL), torch.randn(2, 1, 9, 10)),
        (lambda: EncoderNet2d(**SMALL), torch.randn(2, 1, 9, 10)),
        (lambda: DecoderNet2d((9, 10), **SMALL), torch.randn(2, 2)),
    ]:
        torch.manual_seed(0)
        plain, checked = make(), make()
        checked.load_state_dict(plain.state_dict())
        checked.set_grad_checkpointing(True)
        plain(x).square().sum().backward()
        checked(x).square().sum().backward()
        for (name, p), q in zip(plain.named_parameters(), checked.parameters()):
            torch.testing.assert_close(p.grad, q.grad, atol=1e-5, rtol=1e-4, msg=name)
