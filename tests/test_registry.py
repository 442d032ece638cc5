"""Models by name (blocks/registry.py): ``list_models``, ``create_model``, ``register_model``, in timm's vocabulary.

The registry is the one list of models: these tests read it (every name, every dimension) rather
than a copy of it, and pin what its names must build.
"""

from __future__ import annotations

import contextlib
import io
import math
import re

import pytest
import torch

import blocks
import blocks.__main__ as cli
from blocks.networks import DecoderNet, EncoderNet
from blocks.presets import PRESETS
from blocks.registry import (
    _MODELS,
    ModelEntry,
    create_model,
    list_models,
    model_entry,
    register_model,
)
from blocks.resnet import ARCHS, ResNet
from blocks.unet import AE, UNet

pytestmark = pytest.mark.usefixtures("one_thread")

RESNETS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
NETWORKS = (UNet, AE, EncoderNet, DecoderNet)


def public_class(name: str) -> type:
    return getattr(blocks, name)


def network_classes(nd: int) -> list[str]:
    """The public per-dimension network classes of ``nd`` dimensions, lower-cased (``unet3d``, ...)."""
    return [c.lower() for c in blocks.__all__
            if c.endswith(f"{nd}d") and issubclass(public_class(c), NETWORKS)]


# ------------------------------------------------------------------------------------------ list_models


def test_list_models_with_shell_patterns():
    assert list_models("resnet*") == RESNETS
    assert list_models(filter="resnet*") == RESNETS  # timm's keyword
    assert list_models("*3d") == ["unet3d", "ae3d", "encodernet3d", "decodernet3d"]
    for nd in (1, 2, 3):  # every public network class of that dimension has its name
        assert sorted(list_models(f"*{nd}d")) == sorted(network_classes(nd)) and len(network_classes(nd)) == 4
    assert list_models("unet*") == ["unet1d", "unet2d", "unet3d", "unet16", "unet32", "unet44", "unet65", "unet83"]
    assert list_models("decnet??") == ["decnet13", "decnet33", "decnet48", "decnet63"]
    assert list_models("encnet[14]*") == ["encnet12", "encnet47"]
    assert list_models("RESNET*") == [] and list_models("nothing*") == []
    assert list_models("resnet18") == ["resnet18"]


def test_list_models_names_everything_once_in_registration_order():
    names = list_models()
    assert names == list(_MODELS) and len(set(names)) == len(names) == 35
    assert names[:6] == [*RESNETS, "unet1d"]
    assert names[-4:] == ["decnet13", "decnet33", "decnet48", "decnet63"]
    assert [n for n in names if n in PRESETS] == list(PRESETS)
    assert [n for n in names if n in ARCHS] == list(ARCHS) == RESNETS
    assert sorted(network_classes(1) + network_classes(2) + network_classes(3)) == sorted(list_models("*[123]d"))


# ---------------------------------------------------------------------------------------- create_model


def expected_class(name: str, nd: int) -> str:
    """The class a name builds in ``nd`` dimensions with its defaults, from the sources, not the registry."""
    if name in PRESETS:
        return f"{PRESETS[name].network.__name__}{nd}d"
    if name in ARCHS:
        return "ResNet"
    (cls,) = [c for c in blocks.__all__ if c.lower() == name]
    return cls


def test_create_model_examples():
    with torch.device("meta"):
        resnet = create_model("resnet18", ndim=3)
        assert type(resnet) is ResNet and resnet.ndim == 3
        assert resnet.stem.conv.kernel_size == (7, 7, 7) and resnet.num_classes == 1000
        assert sum(p.numel() for p in create_model("resnet18").parameters()) == 11_689_512
        assert type(create_model("unet16")) is blocks.UNet2d
        assert type(create_model("unet16", ndim=3)) is blocks.UNet3d
        assert create_model("unet16").layers == (2, 1, 1) and create_model("unet16").channels == (64, 128, 256)
        assert type(create_model("ae1d")) is blocks.AE1d
        decoder = create_model("decodernet2d")
        assert type(decoder) is blocks.DecoderNet2d and decoder.out_size == (256, 256) and decoder.input_size == (2,)
        assert create_model("decnet13", ndim=1).out_size == (4096,)
        assert create_model("decnet13", ndim=3).out_size == (64, 64, 64)
        assert create_model("decodernet2d", out_size=(97, 31)).out_size == (97, 31)  # a keyword beats a default
    assert model_entry("resnet18").describe(3) == "ResNet(2, 2, 2, 2), plain blocks, ndim=3"
    assert model_entry("resnet50").describe() == "ResNet(3, 4, 6, 3), bottleneck blocks"
    assert model_entry("unet16").describe() == (
        "MDNC's unet16: a 3-level U-Net of plain blocks, [2, 1, 1] per level, 64..256 channels by default."
    )


def test_the_command_lines_demos_are_its_own_not_registered():
    assert list(cli.DEMOS) == ["conv", "plain", "bottleneck", "unet"]
    assert set(cli.DEMOS).isdisjoint(_MODELS) and set(cli.DEMOS).isdisjoint(list_models())
    for name in cli.DEMOS:
        with pytest.raises(ValueError, match=rf"^unknown model '{name}'"):
            create_model(name)
        with pytest.raises(ValueError, match=rf"^unknown model '{name}'"):
            model_entry(name)
    with pytest.raises(ValueError) as error:
        create_model("unet")
    assert str(error.value) == (
        f"unknown model 'unet'; did you mean 'unet2d', 'unet83', 'unet65'? (list_models() names all {len(_MODELS)})"
    )
    with torch.device("meta"):  # the demos build as the registry's entries did
        unet = cli.DEMOS["unet"].create(ndim=1, channels=(4, 8), layers=1)
        assert type(unet) is blocks.UNet1d and unet.in_planes == 1 and unet.out_planes == 2 and unet.channels == (4, 8)
        block = cli.DEMOS["bottleneck"].create(ndim=3)
        assert type(block) is blocks.BlockBottleneck3d and block.in_planes == 16 and block.out_planes == 32


def test_unknown_name_names_the_closest():
    with pytest.raises(ValueError) as error:
        create_model("unet3")
    assert str(error.value) == (
        f"unknown model 'unet3'; did you mean 'unet83', 'unet3d', 'unet32'? (list_models() names all {len(_MODELS)})"
    )
    with pytest.raises(ValueError) as error:
        create_model("zzzz")
    assert str(error.value) == f"unknown model 'zzzz' (list_models() names all {len(_MODELS)})"
    for generic, two_d in [("AE", "ae2d"), ("encodernet", "encodernet2d")]:  # a network's 2-D name first
        with pytest.raises(ValueError, match=rf"^unknown model '{generic}'; did you mean '{two_d}'[,?]"):
            create_model(generic)


def test_a_single_dimension_entry_refuses_other_dimensions():
    with pytest.raises(ValueError) as error:
        create_model("unet3d", ndim=2)
    assert str(error.value) == "unet3d is 3-D only; got ndim=2 (use 'unet2d')"
    with pytest.raises(ValueError) as error:
        create_model("decodernet1d", ndim=3)
    assert str(error.value) == "decodernet1d is 1-D only; got ndim=3 (use 'decodernet3d')"
    with pytest.raises(ValueError) as error:
        create_model("resnet18", ndim=4)
    assert str(error.value) == "ndim=4 is not allowed; use one of [1, 2, 3] (the number of spatial dimensions)"
    with torch.device("meta"):
        assert type(create_model("unet3d", ndim=3)) is blocks.UNet3d  # its own dimension is fine


def test_presets_refuse_their_fixed_arguments():
    with pytest.raises(ValueError) as error:
        create_model("unet16", layers=3)
    assert str(error.value) == "unet16 fixes layers=(2, 1, 1); got layers=3 (build UNet for other values)"


# ------------------------------------------------------------------------------------------ register_model

TEST_NAME = "tiny_test_unet"


@pytest.fixture
def registered():
    """Register a tiny U-Net under TEST_NAME for one test, then remove it."""
    assert TEST_NAME not in _MODELS

    def tiny_test_unet(ndim=2, **kwargs):
        """A tiny U-Net for the registry tests."""
        return blocks.UNet(channels=(2, 4), layers=1, ndim=ndim, **kwargs)

    returned = register_model(input_sizes={1: (1, 9), 2: (1, 9, 10)})(tiny_test_unet)
    yield returned, tiny_test_unet
    _MODELS.pop(TEST_NAME)
    assert TEST_NAME not in list_models()


def run_cli(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = cli.main(argv)
    return status, out.getvalue()


def test_register_model_adds_a_name(registered):
    returned, builder = registered
    assert returned is builder  # the decorator gives the builder back unchanged
    assert list_models()[-1] == TEST_NAME and list_models("tiny_*") == [TEST_NAME]
    entry = model_entry(TEST_NAME)
    assert isinstance(entry, ModelEntry) and entry.ndims == (1, 2)
    assert entry.describe() == "A tiny U-Net for the registry tests."  # the docstring's first line
    model = create_model(TEST_NAME, out_planes=3)
    assert type(model) is blocks.UNet and model.ndim == 2 and model.out_planes == 3 and model.channels == (2, 4)
    assert create_model(TEST_NAME, ndim=1).ndim == 1
    with pytest.raises(ValueError) as error:
        create_model(TEST_NAME, ndim=3)
    assert str(error.value).startswith(f"{TEST_NAME} is 1-D only; got ndim=3")

    status, out = run_cli(["list"])
    assert status == 0
    lines = out.splitlines()
    assert lines[-1] == f"{TEST_NAME:12s} A tiny U-Net for the registry tests.  (input [1, 9, 10])"
    registered = out.split("\n\n")[1].splitlines()
    assert registered[0] == "Registered models (blocks.create_model):"
    assert len(registered) - 1 == sum(2 in model_entry(n).ndims for n in list_models())
    status, out = run_cli(["list", "--ndim", "1"])
    assert out.splitlines()[-1] == f"{TEST_NAME:12s} A tiny U-Net for the registry tests.  (input [1, 9])"
    status, out = run_cli(["list", "--ndim", "3"])
    assert TEST_NAME not in out and out.splitlines()[-1].startswith("decnet63 ")

    status, out = run_cli(["summary", TEST_NAME, "--batch", "2"])
    count = sum(p.numel() for p in create_model(TEST_NAME).parameters())
    assert status == 0
    assert out.splitlines()[0] == f"{TEST_NAME}: UNet, input [1, 9, 10], batch 2"
    assert f"Total params: {count:,}\n" in out


def test_register_model_with_a_name_defaults_and_descriptions():
    name = "tiny_test_block"
    try:
        register_model(name, input_sizes={3: (2, 5, 6, 7)}, defaults=lambda ndim: {"in_planes": 2, "out_planes": 4},
                       description="a {ndim}-D block")(lambda **kw: blocks.BlockPlain3d(**kw))
        entry = model_entry(name)
        assert entry.ndims == (3,) and entry.input_size() == (2, 5, 6, 7) and entry.describe() == "a 3-D block"
        block = create_model(name, stride=2)
        assert type(block) is blocks.BlockPlain3d and (block.in_planes, block.out_planes) == (2, 4)
        assert block(torch.randn(1, 2, 5, 6, 7)).shape == (1, 4, 3, 3, 4)
        names = list_models()
        register_model(name, input_sizes={3: (2, 5, 5, 5)}, replace=True)(lambda **kw: blocks.BlockPlain3d(2, 2, **kw))
        assert list_models(name) == [name] and model_entry(name).input_size() == (2, 5, 5, 5)  # replaced
        assert list_models() == names  # in its place
        assert create_model(name).out_planes == 2
    finally:
        _MODELS.pop(name, None)
    assert name not in list_models()


def test_register_model_refuses_a_taken_name_unless_replace(registered):
    _, builder = registered
    names, entry = list_models(), model_entry(TEST_NAME)
    message = f"register_model got name='{TEST_NAME}', which is already registered; pass replace=True to replace it"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        register_model(TEST_NAME, input_sizes={3: (1, 8, 8, 8)})(lambda **kw: blocks.UNet3d(**kw))
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):  # the name taken from the builder
        register_model(input_sizes={3: (1, 8, 8, 8)})(builder)
    assert model_entry(TEST_NAME) is entry and entry.ndims == (1, 2) and entry.build is builder  # unchanged
    assert list_models() == names
    message = "register_model got name='resnet18', which is already registered; pass replace=True to replace it"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):  # the package's own names too
        register_model("resnet18", input_sizes={2: (3, 32, 32)})(builder)
    assert model_entry("resnet18").input_size() == (3, 224, 224) and type(create_model("resnet18")) is ResNet

    with pytest.raises(TypeError):  # keyword-only
        register_model(TEST_NAME, {2: (1, 9, 9)}, None, "", True)
    for bad in (1, "yes", None):
        message = f"register_model got replace={bad!r}; it must be True or False"
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            register_model(TEST_NAME, input_sizes={2: (1, 9, 9)}, replace=bad)
    assert model_entry(TEST_NAME) is entry

    assert register_model(TEST_NAME, input_sizes={2: (1, 9, 9)}, replace=True)(builder) is builder
    assert model_entry(TEST_NAME) is not entry and model_entry(TEST_NAME).ndims == (2,)
    assert list_models() == names  # replaced in its place
    assert create_model(TEST_NAME).channels == (2, 4)
    new_name = f"{TEST_NAME}_new"
    try:  # replace=True on a free name simply registers it
        register_model(new_name, input_sizes={2: (1, 9, 9)}, replace=True)(builder)
        assert list_models() == [*names, new_name]
    finally:
        _MODELS.pop(new_name, None)


# ------------------------------------------------------------------------------------ default inputs


def expected_output(model, size):
    batch = 2
    if isinstance(model, DecoderNet):
        return (batch, model.out_planes, *model.out_size)
    if isinstance(model, EncoderNet):
        return (batch, model.out_length)
    if isinstance(model, UNet):
        return (batch, model.out_planes, *size[1:])
    if isinstance(model, ResNet):
        return (batch, model.num_classes)
    stride = model.config.get("stride", 1)
    strides = (stride,) * model.ndim if isinstance(stride, int) else tuple(stride)
    return (batch, model.out_planes, *(math.ceil(n / s) for n, s in zip(size[1:], strides)))


@pytest.mark.parametrize(
    "name, nd", [pytest.param(n, d, id=f"{n}-{d}d") for n in list_models() for d in model_entry(n).ndims]
)
def test_create_model_on_meta_runs_its_default_input(name, nd):
    """Every name in every dimension: the right class, and its ``input_size(ndim)`` runs (on meta)."""
    entry = model_entry(name)
    size = entry.input_size(nd)
    with torch.device("meta"):
        model = create_model(name, ndim=nd)
    assert type(model).__name__ == expected_class(name, nd)
    assert isinstance(model, public_class(expected_class(name, nd)))
    assert model.ndim == nd
    assert all(p.device.type == "meta" for p in model.parameters()) and sum(p.numel() for p in model.parameters()) > 0
    if isinstance(model, DecoderNet):
        assert size == model.input_size == (2,)
    else:
        assert len(size) == 1 + nd
    y = model(torch.empty(2, *size, device="meta"))
    assert y.device.type == "meta"
    assert tuple(y.shape) == expected_output(model, size)
    default = 2 if 2 in entry.ndims else entry.ndims[0]
    assert entry.input_size() == entry.input_size(default)
    if nd == default:  # create_model without ndim builds this one
        with torch.device("meta"):
            assert type(create_model(name)).__name__ == type(model).__name__
