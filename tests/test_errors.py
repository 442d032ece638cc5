"""Error messages of every public constructor and function.

Each bad argument (wrong type, out of range, unknown name, inconsistent combination) and each bad
input (not a tensor, wrong dtype, wrong rank, wrong channel count, too small) raises a ValueError
or TypeError whose message names the argument (or the module), the value received and what is
allowed. One row per case; the regular expressions check all three parts.
"""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from blocks import (
    BlockBottleneck2d,
    BlockPlain2d,
    ConvModern2d,
    ResNet,
    UNet2d,
    Upsample,
    from_torchvision,
    resnet18,
    summary,
)
from blocks.__main__ import main as cli_main
from blocks.layers import make_activator, make_normalizer, register_activator, register_normalizer

pytestmark = pytest.mark.usefixtures("one_thread")


NORM_NAMES = r"valid names: \['batch', 'group', 'inst', 'layer', 'null', 'pinst'\]"
ACT_NAMES = r"valid names: \['elu', 'gelu', 'leaky', 'null', 'prelu', 'relu', 'silu'\]"
POSITIVE = "must be a positive int"
PAIR = r"must be an int >= 1 or a pair of such ints"

# ------------------------------------------------------------------------------------------ layers

LAYER_CASES = {
    "unknown normalizer": (
        lambda: make_normalizer("bn", 8),
        ValueError,
        rf"normalizer='bn' is not a registered normalizer; {NORM_NAMES}",
    ),
    "unknown activator": (
        lambda: make_activator("Relu", 8),
        ValueError,
        rf"activator='Relu' is not a registered activator; {ACT_NAMES}",
    ),
    "normalizer of a wrong type": (
        lambda: make_normalizer(3, 8),
        ValueError,
        r"normalizer=3 must be a name in \[.*\], a \(name, kwargs\) pair, a callable or None",
    ),
    "activator of a wrong type": (
        lambda: make_activator(0.5, 8),
        ValueError,
        r"activator=0.5 must be a name in \[.*'relu'.*\], a \(name, kwargs\) pair",
    ),
    "pair without kwargs": (
        lambda: make_normalizer(("group",), 8),
        ValueError,
        r"normalizer pair must be \(name, kwargs\) with a str name and a dict, got \('group',\)",
    ),
    "pair with a non-dict": (
        lambda: make_activator(("prelu", 0.1), 8),
        ValueError,
        r"activator pair must be \(name, kwargs\) .* got \('prelu', 0.1\)",
    ),
    "pair with an unknown name": (
        lambda: make_normalizer(("gn", {}), 8),
        ValueError,
        rf"normalizer='gn' is not a registered normalizer; {NORM_NAMES}",
    ),
    "pair with an unknown keyword": (
        lambda: make_normalizer(("batch", {"foo": 1}), 8),
        TypeError,
        (
            r"normalizer=\('batch', \{'foo': 1\}\) could not build a layer for 8 channels: "
            r".*unexpected keyword argument 'foo'"
        ),
    ),
    "num_groups not dividing channels": (
        lambda: make_normalizer(("group", {"num_groups": 3}), 8),
        ValueError,
        r"num_groups=3 cannot split channels=8 into equal groups; .*one of \[1, 2\]",
    ),
    "num_groups zero": (
        lambda: make_normalizer(("group", {"num_groups": 0}), 8),
        ValueError,
        r"num_groups=0; it must be a positive int",
    ),
    "zero channels": (lambda: make_normalizer("batch", 0), ValueError, rf"channels=0 for the normalizer {POSITIVE}"),
    "channels of a wrong type": (
        lambda: make_activator("prelu", 8.0),
        ValueError,
        rf"channels=8.0 for the activator {POSITIVE}",
    ),
    "factory returning a function": (
        lambda: make_activator(lambda c: torch.relu, 8),
        ValueError,
        r"activator factory .* returned builtin_function_or_method, not an nn.Module",
    ),
    "empty registered name": (
        lambda: register_normalizer("", nn.BatchNorm2d),
        ValueError,
        r"normalizer name must be a non-empty string, got ''",
    ),
    "registered name not a str": (
        lambda: register_activator(3, nn.ReLU),
        ValueError,
        r"activator name must be a non-empty string, got 3",
    ),
    "factory not callable": (
        lambda: register_activator("x", "relu"),
        ValueError,
        r"activator factory for 'x' must be callable f\(channels\) -> nn.Module, got 'relu'",
    ),
}


@pytest.mark.parametrize("case", list(LAYER_CASES))
def test_layers(case):
    call, error, message = LAYER_CASES[case]
    with pytest.raises(error, match=message):
        call()


def test_default_group_count_always_divides():
    """Default 'group' takes the most groups (<= 32) that divide the channels: 48 -> 24, 7 -> 7, 96 -> 32."""
    assert [make_normalizer("group", c).num_groups for c in (48, 7, 96, 40, 1)] == [24, 7, 32, 20, 1]


# ------------------------------------------------------------------------------ constructor arguments

# (keyword arguments, error, message), valid for all of ConvModern2d, BlockPlain2d and BlockBottleneck2d.
ARGUMENT_CASES = {
    "in_planes zero": ({"in_planes": 0}, ValueError, rf"in_planes=0 {POSITIVE}"),
    "in_planes a str": ({"in_planes": "8"}, ValueError, rf"in_planes='8' {POSITIVE}"),
    "in_planes a float": ({"in_planes": 8.0}, ValueError, rf"in_planes=8.0 {POSITIVE}"),
    "in_planes a bool": ({"in_planes": True}, ValueError, rf"in_planes=True {POSITIVE}"),
    "out_planes negative": ({"out_planes": -1}, ValueError, rf"out_planes=-1 {POSITIVE}"),
    "out_planes None": ({"out_planes": None}, ValueError, rf"out_planes=None {POSITIVE}"),
    "kernel_size zero": ({"kernel_size": 0}, ValueError, rf"kernel_size=0 {PAIR}"),
    "kernel_size a triple": ({"kernel_size": (3, 3, 3)}, ValueError, rf"kernel_size=\(3, 3, 3\) {PAIR}"),
    "kernel_size a str": ({"kernel_size": "3"}, ValueError, rf"kernel_size='3' {PAIR}"),
    "stride zero": ({"stride": 0}, ValueError, rf"stride=0 {PAIR}"),
    "stride a float": ({"stride": 2.0}, ValueError, rf"stride=2.0 {PAIR}"),
    "stride pair with zero": ({"stride": (1, 0)}, ValueError, rf"stride=\(1, 0\) {PAIR}"),
    "padding negative": ({"padding": -1}, ValueError, r"padding=-1 must be an int >= 0 or a pair of such ints"),
    "output_size zero": ({"output_size": (0, 4), "scaler": "up"}, ValueError, rf"output_size=\(0, 4\) {PAIR}"),
    "output_size a str": ({"output_size": "big", "scaler": "up"}, ValueError, rf"output_size='big' {PAIR}"),
    "output_size with scaler down": (
        {"output_size": (8, 8)},
        ValueError,
        r"output_size=\(8, 8\) needs scaler='up', got scaler='down'",
    ),
    "unknown normalizer": (
        {"normalizer": "bn"},
        ValueError,
        rf"normalizer='bn' is not a registered normalizer; {NORM_NAMES}",
    ),
    "unknown activator": (
        {"activator": "tanh"},
        ValueError,
        rf"activator='tanh' is not a registered activator; {ACT_NAMES}",
    ),
    "normalizer a layer instance": (
        {"normalizer": nn.BatchNorm2d(8)},
        TypeError,
        (
            r"normalizer=BatchNorm2d\(8.*\) is a layer instance; pass a name, its class "
            r"\(e.g. nn.BatchNorm2d\) or a factory f\(channels\) -> nn.Module"
        ),
    ),
    "activator a layer instance": ({"activator": nn.ReLU()}, TypeError, r"activator=ReLU\(\) is a layer instance"),
    "group count not dividing": (
        {"normalizer": ("group", {"num_groups": 3})},
        ValueError,
        r"normalizer 'group' with num_groups=3 cannot split channels=8",
    ),
    "unknown layer_order": (
        {"layer_order": "pre"},
        ValueError,
        r"layer_order='pre' is not allowed; use one of \['new', 'old'\]",
    ),
    "layer_order None": (
        {"layer_order": None},
        ValueError,
        r"layer_order=None is not allowed; use one of \['new', 'old'\]",
    ),
    "unknown scaler": ({"scaler": "pool"}, ValueError, r"scaler='pool' is not allowed; use one of \['down', 'up'\]"),
    "scaler in capitals": ({"scaler": "UP"}, ValueError, r"scaler='UP' is not allowed; use one of \['down', 'up'\]"),
}

BLOCK_ONLY_CASES = {
    "hidden_planes zero": ({"hidden_planes": 0}, ValueError, rf"hidden_planes=0 {POSITIVE}"),
    "hidden_planes a float": ({"hidden_planes": 4.5}, ValueError, rf"hidden_planes=4.5 {POSITIVE}"),
    "even kernel_size": (
        {"kernel_size": 4, "padding": 2},
        ValueError,
        r"kernel_size=4 with padding=2 changes the size .* needs an odd kernel_size and padding=\(kernel_size - 1\) // 2",
    ),
    "padding not 'same'": (
        {"kernel_size": 5, "padding": 1},
        ValueError,
        r"kernel_size=5 with padding=1 changes the size",
    ),
    "padding pair not 'same'": (
        {"kernel_size": (3, 5), "padding": 1},
        ValueError,
        r"kernel_size=\(3, 5\) with padding=1",
    ),
}

CLASSES = [ConvModern2d, BlockPlain2d, BlockBottleneck2d]


@pytest.mark.parametrize("case", list(ARGUMENT_CASES))
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_constructor_arguments(cls, case):
    kwargs, error, message = ARGUMENT_CASES[case]
    with pytest.raises(error, match=message):
        cls(**{"in_planes": 8, "out_planes": 16, **kwargs})


@pytest.mark.parametrize("case", list(BLOCK_ONLY_CASES))
@pytest.mark.parametrize("cls", [BlockPlain2d, BlockBottleneck2d], ids=lambda c: c.__name__)
def test_block_arguments(cls, case):
    kwargs, error, message = BLOCK_ONLY_CASES[case]
    with pytest.raises(error, match=message):
        cls(**{"in_planes": 8, "out_planes": 16, **kwargs})


def test_scale_first_must_be_a_bool():
    with pytest.raises(TypeError, match=r"scale_first='no' must be True or False"):
        BlockPlain2d(8, 16, stride=2, scale_first="no")
    with pytest.raises(TypeError, match="scale_first"):
        BlockBottleneck2d(8, 16, scale_first=True)  # the bottleneck has no such switch


UPSAMPLE_CASES = {
    "neither": ({}, r"Upsample needs scale_factor \(an int >= 1 or a pair\) or size \(h, w\); got neither"),
    "scale_factor zero": ({"scale_factor": 0}, rf"scale_factor=0 {PAIR}"),
    "scale_factor a float": ({"scale_factor": 1.5}, rf"scale_factor=1.5 {PAIR}"),
    "size zero": ({"size": (0, 3)}, rf"size=\(0, 3\) {PAIR}"),
    "size of four": ({"size": (2, 3, 4, 5)}, rf"size=\(2, 3, 4, 5\) {PAIR}"),
}


@pytest.mark.parametrize("case", list(UPSAMPLE_CASES))
def test_upsample_arguments(case):
    kwargs, message = UPSAMPLE_CASES[case]
    with pytest.raises(ValueError, match=message):
        Upsample(**kwargs)


def test_upsample_takes_an_int_or_a_pair():
    x = torch.randn(1, 2, 3, 4)
    assert Upsample(scale_factor=2)(x).shape == (1, 2, 6, 8)
    assert Upsample(scale_factor=(1, 3))(x).shape == (1, 2, 3, 12)
    assert Upsample(size=5)(x).shape == (1, 2, 5, 5)


# ------------------------------------------------------------------------------------------- inputs


def shape_message(cls, shape):
    return rf"{cls.__name__} expects input of shape \(B, 8, H, W\), got {shape}"


INPUT_CASES = {
    "wrong channel count": (lambda: torch.randn(2, 4, 6, 6), ValueError, r"\(2, 4, 6, 6\)"),
    "rank 3": (lambda: torch.randn(8, 6, 6), ValueError, r"\(8, 6, 6\)"),
    "rank 5": (lambda: torch.randn(1, 2, 8, 6, 6), ValueError, r"\(1, 2, 8, 6, 6\)"),
    "rank 2": (lambda: torch.randn(2, 8), ValueError, r"\(2, 8\)"),
}


@pytest.mark.parametrize("case", list(INPUT_CASES))
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_input_shape(cls, case):
    make, error, shape = INPUT_CASES[case]
    with pytest.raises(error, match=shape_message(cls, shape)):
        cls(8, 16)(make())


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_input_not_a_tensor(cls):
    with pytest.raises(TypeError, match=rf"{cls.__name__} expects a tensor of shape \(B, 8, H, W\), got ndarray"):
        cls(8, 16)(torch.randn(1, 8, 4, 4).numpy())
    with pytest.raises(TypeError, match=rf"{cls.__name__} expects a tensor .* got list"):
        cls(8, 16)([torch.randn(1, 8, 4, 4)])


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.bool])
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_input_not_floating_point(cls, dtype):
    with pytest.raises(TypeError, match=rf"{cls.__name__} expects a floating-point tensor, got dtype {dtype}"):
        cls(8, 16)(torch.zeros(1, 8, 4, 4, dtype=dtype))


@pytest.mark.parametrize(
    "unit, size, seen",
    [
        (ConvModern2d(8, 16, kernel_size=5, padding=0), (3, 7), r"\(3, 7\), which"),
        (ConvModern2d(8, 16, kernel_size=(1, 7), padding=(0, 1), stride=2), (9, 4), r"\(9, 4\), which"),
        (ConvModern2d(8, 16, kernel_size=5, padding=0, stride=2, scaler="up"), (1, 1), r"\(2, 2\) after up-sampling"),
    ],
)
def test_input_too_small_for_the_kernel(unit, size, seen):
    with pytest.raises(
        ValueError,
        match=rf"ConvModern2d got input of shape \(1, 8, {size[0]}, {size[1]}\), too small: "
        rf"its conv sees {seen}.* smaller than kernel_size=",
    ):
        unit(torch.randn(1, 8, *size))


OUTPUT_SIZE_CASES = {
    "zero": ((0, 4), r"output_size=\(0, 4\); it must be None, an int >= 1 or a pair \(h, w\) of them"),
    "one entry": ((7,), r"output_size=\(7,\); it must be None, an int >= 1 or a pair"),
    "float entry": ((7.5, 3), r"output_size=\(7.5, 3\); it must be None"),
    "a str": ("7x7", r"output_size='7x7'; it must be None"),
    "negative int": (-2, r"output_size=-2; it must be None"),
}


@pytest.mark.parametrize("case", list(OUTPUT_SIZE_CASES))
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_output_size_at_call_time(cls, case):
    value, message = OUTPUT_SIZE_CASES[case]
    with pytest.raises(ValueError, match=rf"{cls.__name__} got {message}"):
        cls(8, 16, stride=2, scaler="up")(torch.randn(1, 8, 4, 4), output_size=value)
    assert cls(8, 16, stride=2, scaler="up")(torch.randn(1, 8, 4, 4), output_size=5).shape == (1, 16, 5, 5)


@pytest.mark.parametrize("kwargs", [{}, {"stride": 2}, {"scaler": "up"}, {"out_planes": 8}], ids=str)
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_output_size_needs_an_upscaling_module(cls, kwargs):
    """Never silently ignored, even where nothing else would use it (identity shortcut)."""
    module = cls(**{"in_planes": 8, "out_planes": 16, **kwargs})
    with pytest.raises(ValueError, match=rf"output_size=\(5, 5\) given to a {cls.__name__} that does not up-"):
        module(torch.randn(1, 8, 4, 4), output_size=(5, 5))


# ------------------------------------------------------------------------------------------ summary

SUMMARY_CASES = {
    "model not a module": (
        lambda: summary("resnet", (3, 8, 8)),
        TypeError,
        r"summary\(\) needs an nn.Module as model, got str",
    ),
    "input_size empty": (
        lambda: summary(ConvModern2d(3, 4), ()),
        ValueError,
        r"input_size must be a shape such as \(3, 224, 224\) or a list of shapes, got \(\)",
    ),
    "input_size negative": (
        lambda: summary(ConvModern2d(3, 4), (3, -8, 8)),
        ValueError,
        r"input_size .* got \(3, -8, 8\)",
    ),
    "input_size a str": (lambda: summary(ConvModern2d(3, 4), "3x8x8"), ValueError, r"input_size .* got '3x8x8'"),
    "batch_size zero": (
        lambda: summary(ConvModern2d(3, 4), (3, 8, 8), batch_size=0),
        ValueError,
        r"batch_size must be -1 or a positive int, got 0",
    ),
    "batch_size a float": (
        lambda: summary(ConvModern2d(3, 4), (3, 8, 8), batch_size=2.0),
        ValueError,
        r"batch_size must be an int, got 2.0",
    ),
    "dtypes too many": (
        lambda: summary(ConvModern2d(3, 4), (3, 8, 8), dtypes=[torch.float32] * 2),
        ValueError,
        r"dtypes must be a list of 1 torch dtype\(s\), one per input",
    ),
    "wrong channel count": (
        lambda: summary(BlockPlain2d(3, 4), (5, 8, 8)),
        ValueError,
        r"BlockPlain2d expects input of shape \(B, 3, H, W\), got \(-1, 5, 8, 8\): .* \(-1: summary's batch",
    ),
    "wrong rank": (
        lambda: summary(BlockBottleneck2d(3, 4), (3, 8)),
        ValueError,
        r"BlockBottleneck2d expects input of shape \(B, 3, H, W\), got \(-1, 3, 8\)",
    ),
}


@pytest.mark.parametrize("case", list(SUMMARY_CASES))
def test_summary(case, capsys):
    call, error, message = SUMMARY_CASES[case]
    with pytest.raises(error, match=message):
        call()
    assert capsys.readouterr().out == ""  # nothing printed before the error


# ------------------------------------------------------------------------------------------- ResNet

RESNET_CASES = {
    "three stages": (
        {"layers": (1, 1, 1)},
        ValueError,
        r"layers=\(1, 1, 1\) must be 4 positive ints, the number of blocks in each stage, e.g. \[3, 4, 6, 3\]",
    ),
    "an empty stage": ({"layers": (1, 0, 1, 1)}, ValueError, r"layers=\(1, 0, 1, 1\) must be 4 positive ints"),
    "layers an int": ({"layers": 4}, ValueError, r"layers=4 must be 4 positive ints"),
    "layers a str": ({"layers": "1111"}, ValueError, r"layers='1111' must be 4 positive ints"),
    "unknown block": (
        {"block": "basic"},
        ValueError,
        r"block='basic' is not allowed; use one of \['bottleneck', 'plain'\]",
    ),
    "in_planes zero": ({"in_planes": 0}, ValueError, rf"in_planes=0 {POSITIVE}"),
    "num_classes negative": (
        {"num_classes": -2},
        ValueError,
        r"num_classes=-2 must be a positive int, 0 for the pooled features \(timm's convention\) or None for a "
        r"backbone without a head",
    ),
    "num_classes a float": ({"num_classes": 10.0}, ValueError, r"num_classes=10.0 must be a positive int, 0 for"),
    "unknown normalizer": (
        {"normalizer": "bn"},
        ValueError,
        rf"normalizer='bn' is not a registered normalizer; {NORM_NAMES}",
    ),
    "unknown activator": (
        {"activator": "tanh"},
        ValueError,
        rf"activator='tanh' is not a registered activator; {ACT_NAMES}",
    ),
    "layer instance": (
        {"normalizer": nn.BatchNorm2d(64)},
        TypeError,
        r"normalizer=BatchNorm2d\(64.*\) is a layer instance",
    ),
    "unknown layer_order": (
        {"layer_order": "pre"},
        ValueError,
        r"layer_order='pre' is not allowed; use one of \['new', 'old'\]",
    ),
}


@pytest.mark.parametrize("case", list(RESNET_CASES))
def test_resnet_arguments(case):
    kwargs, error, message = RESNET_CASES[case]
    with pytest.raises(error, match=message):
        ResNet(**{"layers": (1, 1, 1, 1), **kwargs})


def test_resnet_presets_name_what_they_refuse():
    with pytest.raises(TypeError, match="layers"):
        resnet18(layers=(1, 1, 1, 1))
    with pytest.raises(TypeError, match="'widths'"):
        resnet18(widths=(8, 16, 32, 64))
    with pytest.raises(ValueError, match=r"num_classes=-1 must be a positive int"):
        resnet18(num_classes=-1)


FROM_TORCHVISION_CASES = {
    "not a model": (
        lambda: from_torchvision(3),
        ValueError,
        r"from_torchvision takes a torchvision ResNet or its state_dict, got int",
    ),
    "unknown arch": (
        lambda: from_torchvision({}, arch="resnet19"),
        ValueError,
        r"arch='resnet19' is not allowed; use one of \['resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152'\]",
    ),
}


@pytest.mark.parametrize("case", list(FROM_TORCHVISION_CASES))
def test_from_torchvision_arguments(case):
    call, error, message = FROM_TORCHVISION_CASES[case]
    with pytest.raises(error, match=message):
        call()


RESNET_INPUT_CASES = {
    "wrong channel count": (
        lambda: torch.randn(2, 1, 32, 32),
        ValueError,
        r"ResNet expects input of shape \(B, 3, H, W\), got \(2, 1, 32, 32\): its channel count is 1, but it was "
        r"built with in_planes=3 \(build it with in_planes=1, or pass 3-channel inputs\)",
    ),
    "rank 3": (
        lambda: torch.randn(3, 32, 32),
        ValueError,
        r"ResNet expects input of shape \(B, 3, H, W\), got \(3, 32, 32\)",
    ),
    "not a tensor": (lambda: torch.randn(2, 3, 32, 32).numpy(), TypeError, r"ResNet expects a tensor .* got ndarray"),
    "integer dtype": (
        lambda: torch.zeros(2, 3, 32, 32, dtype=torch.uint8),
        TypeError,
        r"ResNet expects a floating-point tensor, got dtype torch.uint8",
    ),
}
@pytest.mark.parametrize("method", ["forward", "forward_features", "forward_intermediates"])
@pytest.mark.parametrize("case", list(RESNET_INPUT_CASES))
def test_resnet_inputs(case, method):
    make, error, message = RESNET_INPUT_CASES[case]
    model = ResNet((1, 1, 1, 1), "plain", num_classes=10)
    with pytest.raises(error, match=message):
        getattr(model, method)(make())


# ------------------------------------------------------------------------------------------- UNet2d

UNET_CASES = {
    "one level": (
        {"channels": (4,)},
        ValueError,
        r"channels=\(4,\) must be a sequence of at least 2 positive ints, one per level, e.g. \(64, 128, 256, 512, 1024\)",
    ),
    "zero channels": (
        {"channels": (4, 0)},
        ValueError,
        r"channels=\(4, 0\) must be a sequence of at least 2 positive ints",
    ),
    "channels a str": ({"channels": "48"}, ValueError, r"channels='48' must be a sequence"),
    "layers per level mismatch": (
        {"layers": (1, 2, 3)},
        ValueError,
        r"layers=\(1, 2, 3\) must be a positive int or a sequence of 2 positive ints, one per level",
    ),
    "layers zero": ({"layers": 0}, ValueError, r"layers=0 must be a positive int or a sequence of 2 positive ints"),
    "even kernel": (
        {"kernel_size": 4},
        ValueError,
        r"kernel_size=4 must be odd \(an int or a pair\), so blocks keep the size",
    ),
    "kernel zero": ({"kernel_size": 0}, ValueError, rf"kernel_size=0 {PAIR}"),
    "unknown block": (
        {"block": "basic"},
        ValueError,
        r"block='basic' is not allowed; use one of \['bottleneck', 'plain', 'conv'\]",
    ),
    "in_planes zero": ({"in_planes": 0}, ValueError, rf"in_planes=0 {POSITIVE}"),
    "out_planes a float": ({"out_planes": 2.0}, ValueError, rf"out_planes=2.0 {POSITIVE}"),
    "unknown normalizer": (
        {"normalizer": "bn"},
        ValueError,
        rf"normalizer='bn' is not a registered normalizer; {NORM_NAMES}",
    ),
    "layer instance": ({"activator": nn.ReLU()}, TypeError, r"activator=ReLU\(\) is a layer instance"),
    "group count not dividing": (
        {"channels": (6, 12), "normalizer": ("group", {"num_groups": 4})},
        ValueError,
        r"num_groups=4 cannot split channels=6 into equal groups; .*one of \[1, 2, 3\]",
    ),
    "unknown layer_order": (
        {"layer_order": "pre"},
        ValueError,
        r"layer_order='pre' is not allowed; use one of \['new', 'old'\]",
    ),
    "encoder not a module": ({"encoder": "resnet34"}, ValueError, r"encoder=str must be an nn.Module returning feature maps"),
    "encoder without features": (
        {"encoder": nn.Conv2d(1, 4, 3)},
        ValueError,
        r"encoder=torch.nn.modules.conv.Conv2d returned Tensor; a U-Net encoder must return a list, tuple or dict "
        r"of feature maps: use timm.create_model\(name, features_only=True\) for a timm model, or torchvision.*"
        r"create_feature_extractor",
    ),
}


@pytest.mark.parametrize("case", list(UNET_CASES))
def test_unet_arguments(case):
    kwargs, error, message = UNET_CASES[case]
    with pytest.raises(error, match=message):
        UNet2d(**{"channels": (4, 8), **kwargs})


def test_unet_encoder_combinations():
    encoder = resnet18(in_planes=1, num_classes=None)
    with pytest.raises(
        ValueError, match=r"channels=\(4, 8\) does not match the encoder's feature channels \(64, 64, 128, 256, 512\)"
    ):
        UNet2d(channels=(4, 8), encoder=encoder)
    with pytest.raises(ValueError, match=r"in_planes=3 does not match the encoder's 1 input channels"):
        UNet2d(in_planes=3, encoder=encoder)


UNET_INPUT_CASES = {
    "wrong channel count": (
        torch.randn(2, 3, 24, 20),
        ValueError,
        r"UNet2d expects input of shape \(B, 1, H, W\), got \(2, 3, 24, 20\)",
    ),
    "rank 3": (torch.randn(1, 24, 20), ValueError, r"UNet2d expects input of shape \(B, 1, H, W\), got \(1, 24, 20\)"),
    "too small for the depth": (
        torch.randn(2, 1, 4, 3),
        ValueError,
        r"UNet2d needs an input of height or width >= 5 .* got input of shape \(2, 1, 4, 3\)",
    ),
    "not a tensor": (torch.randn(2, 1, 24, 20).tolist(), TypeError, r"UNet2d expects a tensor .* got list"),
    "integer dtype": (
        torch.zeros(2, 1, 24, 20, dtype=torch.int32),
        TypeError,
        r"UNet2d expects a floating-point tensor, got dtype torch.int32",
    ),
}


@pytest.mark.parametrize("method", ["forward", "encode"])
@pytest.mark.parametrize("case", list(UNET_INPUT_CASES))
def test_unet_inputs(case, method):
    x, error, message = UNET_INPUT_CASES[case]
    model = UNet2d(1, 2, channels=(4, 8, 16), layers=1)
    with pytest.raises(error, match=message):
        getattr(model, method)(x)


# ----------------------------------------------------------------------------------- command line

CLI_CASES = {
    "unknown model": (["summary", "nosuch"], r"unknown model 'nosuch' \(list_models\(\) names all \d+\)"),
    "misspelt model": (["summary", "resnet05"], r"unknown model 'resnet05'; did you mean 'resnet50'"),
    "--set without =": (["summary", "conv", "--set", "foo"], r"--set expects key=value, got 'foo'"),
    "unknown keyword": (["summary", "conv", "--set", "foo=1"], r"unexpected keyword argument 'foo'"),
    "unknown normalizer": (["summary", "plain", "--set", "normalizer=bn"], r"normalizer='bn' is not a registered"),
    "bad batch": (["summary", "conv", "--batch", "0"], r"batch_size must be -1 or a positive int, got 0"),
    "wrong channels": (["summary", "conv", "--input", "3", "8", "8"], r"ConvModern2d expects input of shape \(B, 16,"),
    "too small a U-Net": (
        ["summary", "unet", "--input", "1", "3", "3"],
        r"UNet2d needs an input of height or width >= 17",
    ),
    "wrong channels of a ResNet": (
        ["summary", "resnet18", "--input", "1", "32", "32"],
        r"ResNet expects input of shape \(B, 3, H, W\), got \(-1, 1, 32, 32\): its channel count is 1, but it was "
        r"built with in_planes=3 \(build it with in_planes=1, or pass 3-channel inputs\) \(-1: summary's batch",
    ),
}


@pytest.mark.parametrize(("argv", "message"), list(CLI_CASES.values()), ids=list(CLI_CASES))
def test_command_line(argv, message, capsys):
    """Bad arguments end with argparse's usage error (exit status 2) and the library's message, no traceback."""
    with pytest.raises(SystemExit) as exit_:
        cli_main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert "Traceback" not in err


# ------------------------------------------------------------------ errors that name the way out (issue 30)


def test_torchvision_resnet_as_encoder_points_to_from_torchvision():
    torchvision = pytest.importorskip("torchvision")
    with torch.device("meta"):
        model = torchvision.models.resnet50()
    with pytest.raises(ValueError) as error:
        UNet2d(encoder=model)
    message = str(error.value)
    assert message.startswith("encoder=torchvision.models.resnet.ResNet returned Tensor; a U-Net encoder must return")
    assert "use blocks.from_torchvision(model) for a torchvision ResNet" in message


@pytest.mark.parametrize(
    ("make", "hint"),
    [
        (lambda: resnet18(num_classes=None), r"blocks.from_torchvision\(model, in_planes=1\)"),
        (lambda: resnet18(num_classes=None), r"timm.create_model\(name, in_chans=1\)"),
    ],
)
def test_in_planes_of_a_three_channel_encoder_says_how_to_build_a_grey_one(make, hint):
    with pytest.raises(ValueError, match=r"in_planes=1 does not match the encoder's 3 input channels; build the "
                                         r"encoder for 1 channels .*" + hint):
        UNet2d(in_planes=1, encoder=make())


def test_in_planes_of_a_timm_encoder_names_in_chans():
    timm = pytest.importorskip("timm")
    backbone = timm.create_model("convnext_atto", pretrained=False, features_only=True)
    with pytest.raises(ValueError, match=r"does not match the encoder's 3 input channels.*in_chans=1"):
        UNet2d(in_planes=1, encoder=backbone)


@pytest.mark.parametrize("model", [UNet2d(in_planes=1, channels=(4, 8)), resnet18(), BlockPlain2d(1, 4)],
                         ids=["UNet2d", "ResNet", "BlockPlain2d"])
def test_wrong_channel_count_names_in_planes_and_the_shape_passed(model):
    planes = model.in_planes
    with pytest.raises(ValueError, match=rf"expects input of shape \(B, {planes}, H, W\), got \(1, 2, 40, 40\): its "
                                         rf"channel count is 2, but it was built with in_planes={planes} "
                                         rf"\(build it with in_planes=2, or pass {planes}-channel inputs\)"):
        model(torch.zeros(1, 2, 40, 40))


def test_summary_with_the_batch_in_input_size_says_so():
    net = UNet2d(channels=(4, 8), layers=1)
    with pytest.raises(ValueError) as error:
        summary(net, (4, 1, 64, 64))
    assert str(error.value) == (
        "summary(): input_size=(4, 1, 64, 64) has 4 sizes, but UNet2d takes one sample's shape, (C, H, W), without "
        "the batch; for a batch of 4, call summary(model, (1, 64, 64), batch_size=4)"
    )


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (["summary", "unet", "--input", "1", "3", "3"], "got input of shape (-1, 1, 3, 3)"),
        (["summary", "resnet18", "--input", "1", "32", "32"], "got (-1, 1, 32, 32)"),
        (["summary", "resnet18", "--input", "1", "32", "32", "--batch", "5"], "got (5, 1, 32, 32)"),
    ],
)
def test_command_line_never_reports_a_batch_the_user_did_not_give(argv, shown, capsys):
    with pytest.raises(SystemExit):
        cli_main(argv)
    err = capsys.readouterr().err
    assert shown in err, err
    assert "(2, 1," not in err


def test_command_line_input_with_a_batch_points_to_batch(capsys):
    with pytest.raises(SystemExit):
        cli_main(["summary", "unet", "--input", "4", "1", "64", "64"])
    assert "got 4: 4 1 64 64 (if 4 is the batch, pass it as --batch 4; for 3 sizes, --ndim 3)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: UNet2d(chanels=(4, 8)), "UNet2d got an unexpected keyword argument 'chanels'; did you mean 'channels'"),
        (lambda: resnet18(in_plane=1), "ResNet got an unexpected keyword argument 'in_plane'; did you mean 'in_planes'?"),
        (lambda: BlockBottleneck2d(4, 8, normaliser="batch"),
         "BlockBottleneck2d got an unexpected keyword argument 'normaliser'; did you mean 'normalizer'?"),
        (lambda: ConvModern2d(4, 8, strides=2), "ConvModern2d got an unexpected keyword argument 'strides'; did you "
                                                "mean 'stride'?"),
        (lambda: BlockPlain2d(4, 8, chanels=3), "BlockPlain2d got an unexpected keyword argument 'chanels'; it takes "
                                                "in_planes, out_planes, kernel_size"),
    ],
    ids=["UNet2d", "resnet18", "BlockBottleneck2d", "ConvModern2d", "no close name"],
)
def test_misspelled_keyword_suggests_the_closest_names(build, message):
    with pytest.raises(TypeError) as error:
        build()
    assert str(error.value).startswith(message)


def test_every_savable_class_checks_its_keywords():
    from blocks.hub import SAVABLE_CLASSES

    for cls in SAVABLE_CLASSES:
        with pytest.raises(TypeError, match=rf"{cls.__name__} got an unexpected keyword argument 'nope'"):
            cls(nope=1)


def test_inflate_without_ndim_does_not_quote_an_ndim():
    from blocks import UNet1d, UNet3d, inflate

    with pytest.raises(ValueError) as error:
        inflate(UNet3d(channels=(4, 8), layers=1))
    assert str(error.value) == (
        "inflate: UNet3d is 3-D already; inflate makes the next dimension's twin of a 1-D or 2-D model (3-D is the "
        "highest)"
    )
    with pytest.raises(ValueError, match=r"^inflate: UNet1d is 1-D; pass ndim=2 for its 2-D twin"):
        inflate(UNet1d(channels=(4, 8), layers=1))
    assert inflate(UNet1d(channels=(4, 8), layers=1), ndim=2).ndim == 2


def test_from_pretrained_as_a_class_method(tmp_path):
    from blocks import AE2d, EncoderNet2d, UNet

    ae = AE2d(channels=(4, 8), layers=1)
    ae.save_pretrained(tmp_path / "ae")
    again = UNet.from_pretrained(tmp_path / "ae")  # an AE is a UNet
    assert type(again) is AE2d
    x = torch.randn(1, 1, 9, 7)
    assert torch.equal(again(x), ae.eval()(x))
    assert type(AE2d.from_pretrained(tmp_path / "ae", map_location="cpu")) is AE2d
    with pytest.raises(ValueError) as error:
        ResNet.from_pretrained(tmp_path / "ae")
    assert str(error.value) == (
        f"ResNet.from_pretrained: {tmp_path / 'ae'} holds a model of class AE2d, which is not ResNet or a subclass of "
        f"it; load it with blocks.from_pretrained(folder) or AE2d.from_pretrained(folder)"
    )
    with pytest.raises(ValueError, match=r"EncoderNet2d.from_pretrained: .* holds a model of class AE2d"):
        EncoderNet2d.from_pretrained(tmp_path / "ae")


def test_from_pretrained_keywords_of_the_hub_mixin(tmp_path):
    net = resnet18(num_classes=None)
    net.save_pretrained(tmp_path)
    smooth = ResNet.from_pretrained(tmp_path, activator="gelu")  # model_kwargs replace saved arguments
    assert isinstance(smooth.stem.act, nn.GELU) and torch.equal(smooth.stem.conv.weight, net.stem.conv.weight)
    with pytest.raises(ValueError, match=r"does not fit the ResNet of config.json: missing fc.weight; missing fc.bias"):
        ResNet.from_pretrained(tmp_path, num_classes=3)
    headed = ResNet.from_pretrained(tmp_path, num_classes=3, strict=False)  # the head keeps its fresh weights
    assert headed.fc.out_features == 3 and torch.equal(headed.stem.conv.weight, net.stem.conv.weight)
