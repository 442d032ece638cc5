"""Tests of blocks.conv: ConvModern2d and Upsample."""

import pytest
import torch
from torch import nn

from blocks import ConvModern2d, Upsample


def kinds(module):
    return [type(m).__name__ for m in module]


def test_new_order_is_pre_activation():
    assert kinds(ConvModern2d(4, 8)) == ["InstanceNorm2d", "PReLU", "Conv2d"]
    unit = ConvModern2d(4, 8)
    assert unit.norm.num_features == 4 and unit.act.num_parameters == 4 and unit.conv.bias is None


def test_old_order_is_conv_norm_act_on_the_output():
    unit = ConvModern2d(4, 8, layer_order="old")
    assert kinds(unit) == ["Conv2d", "InstanceNorm2d", "PReLU"]
    assert unit.norm.num_features == 8 and unit.act.num_parameters == 8


@pytest.mark.parametrize("order", ["new", "old"])
def test_no_normalizer_gives_a_conv_bias(order):
    unit = ConvModern2d(4, 8, normalizer=None, activator="prelu", layer_order=order)
    assert kinds(unit) == ["Conv2d", "PReLU"]  # conv -> act in either order, as MDNC
    assert unit.conv.bias is not None and unit.act.num_parameters == 8
    up = ConvModern2d(4, 8, stride=2, normalizer=None, activator="relu", layer_order=order, scaler="up")
    assert kinds(up) == ["Upsample", "Conv2d", "ReLU"]


def test_down_scaler_strides_the_conv():
    unit = ConvModern2d(4, 8, stride=(1, 2))
    assert unit.conv.stride == (1, 2)
    assert unit(torch.randn(2, 4, 5, 255)).shape == (2, 8, 5, 128)


@pytest.mark.parametrize("order, position", [("new", 2), ("old", 0)])
def test_up_scaler_upsamples_right_before_the_conv(order, position):
    unit = ConvModern2d(4, 8, stride=2, scaler="up", layer_order=order)
    assert kinds(unit)[position : position + 2] == ["Upsample", "Conv2d"]
    assert unit.conv.stride == (1, 1)
    up = unit.up
    assert up.mode == "bilinear" and up.align_corners is True
    assert unit(torch.randn(2, 4, 5, 7)).shape == (2, 8, 10, 14)


def test_output_size_at_construction_and_at_call_time():
    unit = ConvModern2d(4, 8, stride=2, output_size=(11, 15), scaler="up")
    x = torch.randn(1, 4, 5, 7)
    assert unit(x).shape == (1, 8, 11, 15)
    assert unit(x, output_size=(9, 13)).shape == (1, 8, 9, 13)


def test_upsample_equals_bilinear_align_corners():
    x = torch.randn(1, 3, 4, 5)
    expected = nn.functional.interpolate(x, size=(7, 9), mode="bilinear", align_corners=True)
    assert torch.equal(Upsample(size=(7, 9))(x), expected)
    assert torch.equal(Upsample(scale_factor=(2, 2))(x, output_size=(7, 9)), expected)


def test_output_size_needs_an_upsampling_unit():
    with pytest.raises(ValueError, match=r"output_size=\(4, 4\) needs scaler='up'"):
        ConvModern2d(4, 8, output_size=(4, 4))
    with pytest.raises(ValueError, match="does not up-sample"):
        ConvModern2d(4, 8)(torch.randn(1, 4, 3, 3), output_size=(6, 6))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"in_planes": 0}, r"in_planes=0 must be a positive int"),
        ({"out_planes": -3}, r"out_planes=-3 must be a positive int"),
        ({"stride": 0}, r"stride=0 must be an int >= 1"),
        ({"stride": (1, 2, 3)}, r"stride=\(1, 2, 3\)"),
        ({"kernel_size": "3"}, r"kernel_size='3'"),
        ({"padding": -1}, r"padding=-1 must be an int >= 0"),
        ({"layer_order": "pre"}, r"layer_order='pre' is not allowed; use one of \['new', 'old'\]"),
        ({"scaler": "upsample"}, r"scaler='upsample' is not allowed; use one of \['down', 'up'\]"),
        ({"normalizer": "bn"}, r"normalizer='bn'"),
        ({"activator": "tanh"}, r"activator='tanh'"),
    ],
)
def test_bad_arguments(kwargs, message):
    args = {"in_planes": 4, "out_planes": 8, **kwargs}
    with pytest.raises(ValueError, match=message):
        ConvModern2d(**args)


def test_wrong_input_names_the_unit_and_shapes():
    with pytest.raises(ValueError, match=r"ConvModern2d expects input of shape \(B, 4, H, W\), got \(1, 3, 8, 8\)"):
        ConvModern2d(4, 8)(torch.randn(1, 3, 8, 8))


# ---- the unit's named variants: a network's stem (bare) and head (linear_output) -------------------------


@pytest.mark.parametrize(
    "order, normalizer, expected, bias",
    [
        ("new", "pinst", ["Conv2d"], False),  # a pre-activation stem: the next block normalizes
        ("new", None, ["Conv2d"], True),  # the bias rule still reads the normalizer
        ("old", "batch", ["Conv2d"], False),
    ],
)
def test_bare_unit_is_the_conv_alone(order, normalizer, expected, bias):
    unit = ConvModern2d(4, 8, 7, 2, 3, normalizer=normalizer, layer_order=order, bare=True)
    assert kinds(unit) == expected and (unit.conv.bias is not None) is bias
    assert unit(torch.zeros(1, 4, 9, 9)).shape == (1, 8, 5, 5)


@pytest.mark.parametrize(
    "order, normalizer, expected",
    [
        ("new", "batch", ["BatchNorm2d", "ReLU", "Conv2d"]),
        ("new", None, ["ReLU", "Conv2d"]),  # the activation first even without a norm: nothing after the conv
        ("old", "batch", ["Conv2d", "BatchNorm2d"]),  # no activation after the conv
        ("old", None, ["Conv2d"]),
    ],
)
def test_linear_output_unit_ends_without_activation(order, normalizer, expected):
    unit = ConvModern2d(8, 2, 1, padding=0, normalizer=normalizer, activator="relu", layer_order=order,
                        linear_output=True)
    assert kinds(unit) == expected
    x = torch.randn(1, 8, 5, 5)
    assert unit(x).shape == (1, 2, 5, 5)
    if order == "old":
        assert (unit(x) < 0).any()  # not rectified


@pytest.mark.parametrize("name", ["bare", "linear_output"])
def test_variant_switches_are_bools(name):
    with pytest.raises(TypeError, match=rf"{name}=1 must be True or False"):
        ConvModern2d(4, 8, **{name: 1})


def test_unit_records_its_arguments_as_given():
    unit = ConvModern2d(4, 8, stride=2, linear_output=True)
    assert unit.config == {"blocks_class": "ConvModern2d", "in_planes": 4, "out_planes": 8, "stride": 2,
                           "linear_output": True}
