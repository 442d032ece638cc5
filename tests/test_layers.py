"""Tests of blocks.layers: the normalizer and activator registries."""

import pytest
import torch
from torch import nn

import blocks
from blocks import layers
from blocks.layers import (
    make_activator,
    make_normalizer,
    register_activator,
    register_normalizer,
)


@pytest.mark.parametrize(
    "name, cls, params",
    [
        ("batch", nn.BatchNorm2d, 16),
        ("inst", nn.InstanceNorm2d, 0),
        ("pinst", nn.InstanceNorm2d, 16),
        ("group", nn.GroupNorm, 16),
        ("layer", nn.GroupNorm, 16),
    ],
)
def test_normalizer_names(name, cls, params):
    layer = make_normalizer(name, 8)
    assert type(layer) is cls
    assert sum(p.numel() for p in layer.parameters()) == params


def test_layer_is_one_group_and_group_defaults_to_at_most_channels():
    assert make_normalizer("layer", 8).num_groups == 1
    assert make_normalizer("group", 8).num_groups == 8
    assert make_normalizer("group", 64).num_groups == 32


@pytest.mark.parametrize(
    "name, cls, params",
    [("relu", nn.ReLU, 0), ("prelu", nn.PReLU, 8), ("leaky", nn.LeakyReLU, 0), ("gelu", nn.GELU, 0),
     ("silu", nn.SiLU, 0), ("elu", nn.ELU, 0)],
)
def test_activator_names(name, cls, params):
    layer = make_activator(name, 8)
    assert type(layer) is cls
    assert sum(p.numel() for p in layer.parameters()) == params


@pytest.mark.parametrize("spec", [None, "null"])
def test_null_means_no_layer(spec):
    assert make_normalizer(spec, 8) is None
    assert make_activator(spec, 8) is None


def test_name_kwargs_pairs():
    assert make_normalizer(("group", {"num_groups": 4}), 16).num_groups == 4
    prelu = make_activator(("prelu", {"init": 0.1}), 4)
    assert torch.allclose(prelu.weight, torch.full((4,), 0.1))
    assert make_normalizer(("inst", {"affine": True}), 4).affine
    assert make_normalizer(("batch", {"momentum": 0.5}), 4).momentum == 0.5


def test_callables_and_classes():
    assert type(make_normalizer(nn.BatchNorm2d, 8)) is nn.BatchNorm2d
    assert make_normalizer(nn.BatchNorm2d, 8).num_features == 8
    assert type(make_activator(lambda c: nn.Tanh(), 8)) is nn.Tanh


def test_register_new_names():
    register_normalizer("test-bn0", lambda c, **kw: nn.BatchNorm2d(c, momentum=0.0, **kw))
    register_activator("test-tanh", lambda c, **kw: nn.Tanh())
    try:
        assert make_normalizer("test-bn0", 3).momentum == 0.0
        assert type(make_activator("test-tanh", 3)) is nn.Tanh
    finally:
        del layers.NORMALIZERS["test-bn0"], layers.ACTIVATORS["test-tanh"]


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"normalizer='bn' is not a registered normalizer.*'batch'.*'pinst'"):
        make_normalizer("bn", 8)
    with pytest.raises(ValueError, match=r"activator='Relu' is not a registered activator.*'prelu'.*'relu'"):
        make_activator("Relu", 8)


@pytest.mark.parametrize("spec", [3, ("group",), ("group", 4), (4, {})])
def test_bad_forms_are_refused(spec):
    with pytest.raises(ValueError, match="normalizer"):
        make_normalizer(spec, 8)


def test_bad_registrations_are_refused():
    with pytest.raises(ValueError, match="name"):
        register_normalizer("", nn.BatchNorm2d)
    with pytest.raises(ValueError, match="callable"):
        register_activator("x", "relu")


def test_factory_must_return_a_module():
    with pytest.raises(ValueError, match="not an nn.Module"):
        make_activator(lambda c: torch.relu, 8)


def test_docs_tables_cover_every_registered_name():
    assert set(layers.NORMALIZER_DOCS) == set(layers.NORMALIZERS)
    assert set(layers.ACTIVATOR_DOCS) == set(layers.ACTIVATORS)


class MyBatchNorm2d(nn.BatchNorm2d):
    """A user's own 2-D norm: still a 2-D layer."""


@pytest.mark.parametrize("norm, ndim", [(nn.BatchNorm2d, 3), (nn.InstanceNorm3d, 1), (MyBatchNorm2d, 3),
                                        (nn.BatchNorm1d, 2)])
def test_a_norm_class_of_another_dimension_fails_at_construction(norm, ndim):
    made_for = {nn.BatchNorm2d: 2, nn.InstanceNorm3d: 3, MyBatchNorm2d: 2, nn.BatchNorm1d: 1}[norm]
    with pytest.raises(ValueError, match=rf"built {norm.__name__}, a {made_for}-D layer, for a {ndim}-D block"):
        blocks.BlockPlain(8, 8, normalizer=norm, ndim=ndim)
    with pytest.raises(ValueError, match=rf"a {made_for}-D layer, for a {ndim}-D block"):
        blocks.UNet(1, 2, channels=(4, 8), layers=1, normalizer=norm, ndim=ndim)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_a_norm_class_of_the_right_dimension_builds(ndim):
    norm = layers.torch_layer("BatchNorm", ndim)
    block = blocks.BlockPlain(4, 4, normalizer=norm, ndim=ndim).eval()
    assert sum(type(m) is norm for m in block.modules()) == 2
    x = torch.randn(2, 4, *(5,) * ndim)
    assert block(x).shape == x.shape
    assert layers._layer_ndim(nn.GroupNorm(2, 4)) is None  # dimension-free layers are never refused
    assert blocks.BlockPlain(4, 4, normalizer=lambda c: nn.GroupNorm(2, c), ndim=ndim)(x).shape == x.shape
