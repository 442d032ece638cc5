"""Every registered model, in every dimension it supports (timm's and smp's model tests, sized for CI).

The cases come from the registry (`blocks.list_models`) and the command line's demos
(`blocks.__main__.DEMOS`): a model registered, or shown by the command line, is a model tested.
Each registered model runs at reduced width where it takes ``channels=`` (the level count kept,
widths 2, 4, 8, ...) on an input just large enough for its depth; a model without ``channels=``
(a ResNet, a block) runs at full width, and a full-width one heavier than `HEAVY` parameters only
on the ``meta`` device. Checks:

* cheap, every model and dimension: forward without NaN/inf and of the expected shape; backward
  with a gradient on every parameter; ``save_pretrained`` / ``from_pretrained`` round trip (exact
  ``config.json``, equal state_dicts and outputs); ``torchsummary``, ``torchinfo`` and
  ``blocks.summary`` totals equal the parameter count;
* full width on ``meta``: parameter counts equal building the underlying class directly;
* timm's feature API of every feature backbone (EncoderNets, the smallest ResNet per dimension);
* ``torch.fx`` (torchvision's ``create_feature_extractor``), ``torch.compile(fullgraph=True,
  dynamic=True)`` and ``torch.export`` on one small model per class and dimension.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json
import math
import re

import pytest
import timm.models
import torch
import torchinfo
import torchsummary
from torch import nn
from torch.export import Dim
from torchvision.models.feature_extraction import (
    create_feature_extractor,
    get_graph_node_names,
)

import blocks
from blocks.__main__ import DEMOS
from blocks.checks import named_class
from blocks.conv import ConvModern
from blocks.features import FeatureAPI
from blocks.networks import DecoderNet, EncoderNet
from blocks.presets import PRESETS
from blocks.registry import ModelEntry, list_models, model_entry
from blocks.residual import BlockBottleneck, BlockPlain, ResidualBlock
from blocks.resnet import ARCHS, ResNet
from blocks.unet import AE, UNet

pytestmark = pytest.mark.usefixtures("one_thread")

BATCH = 2
HEAVY = 20_000_000
"""Full-width models with more parameters than this run only on ``meta`` (3-D ResNets, ResNet-101 ...)."""

NAMES = [*DEMOS, *list_models()]
"""The command line's demos (blocks and a U-Net), then every registered name."""


def entry_of(name: str) -> ModelEntry:
    """The demo or the registry's entry of ``name``."""
    return DEMOS[name] if name in DEMOS else model_entry(name)


CASES = [pytest.param(name, nd, id=f"{name}-{nd}d") for name in NAMES for nd in entry_of(name).ndims]
"""(name, ndim) of every demo and registered model in every dimension it supports."""

RESNET_SIZES = {1: (64,), 2: (32, 40), 3: (16, 32, 33)}
"""Full-width ResNets: at 1/32 the deepest map keeps 2 x BATCH values per channel for batch norm."""

BLOCK_SIZES = {1: (9,), 2: (7, 9), 3: (5, 6, 7)}


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@functools.cache
def meta_model(name: str, nd: int) -> nn.Module:
    """The registered model with its defaults (full width), on ``meta``; read-only in the tests."""
    with torch.device("meta"):
        return entry_of(name).create(ndim=nd)


def spatial(levels: int, nd: int) -> tuple[int, ...]:
    """Just large enough for ``levels`` levels (the deepest keeps 2 pixels per side), and not square."""
    base = 2 ** (levels - 1) + 1
    return (base, base + 2, base + 1)[:nd]


class Plan:
    """How one registered model runs here: its keywords (the narrow ``channels``), input and output shapes."""

    def __init__(self, name: str, nd: int) -> None:
        entry, meta = entry_of(name), meta_model(name, nd)
        self.name, self.nd, self.entry = name, nd, entry
        self.overrides: dict = {}
        channels_in = entry.input_size(nd)[0]
        if isinstance(meta, (UNet, EncoderNet, DecoderNet)):
            levels = len(meta.channels)
            self.size = spatial(levels, nd)
            self.overrides["channels"] = tuple(2 * 2**i for i in range(levels))
            if isinstance(meta, DecoderNet):
                self.overrides["out_size"] = self.size
                self.input = entry.input_size(nd)
                self.output = (BATCH, meta.out_planes, *self.size)
            else:
                self.input = (channels_in, *self.size)
                if isinstance(meta, EncoderNet):
                    self.output = (BATCH, meta.out_length)
                else:
                    self.output = (BATCH, meta.out_planes, *self.size)
            self.heavy = False
        elif isinstance(meta, ResNet):
            self.size = RESNET_SIZES[nd]
            self.input = (channels_in, *self.size)
            self.output = (BATCH, meta.num_classes)
            self.heavy = count(meta) > HEAVY
        elif isinstance(meta, (ResidualBlock, ConvModern)):
            self.size = BLOCK_SIZES[nd]
            self.input = (channels_in, *self.size)
            stride = entry.defaults(nd).get("stride", 1)
            strides = (stride,) * nd if isinstance(stride, int) else tuple(stride)
            self.output = (BATCH, meta.out_planes, *(math.ceil(n / s) for n, s in zip(self.size, strides)))
            self.heavy = count(meta) > HEAVY
        else:  # a new kind of model: give it a plan here rather than leave it untested
            pytest.fail(f"{name}: no test plan for {type(meta).__name__}; extend tests/test_models.py")

    def build(self, seed: int = 0) -> nn.Module:
        torch.manual_seed(seed)
        return self.entry.create(ndim=self.nd, **self.overrides)

    def example(self, batch: int = BATCH, seed: int = 1) -> torch.Tensor:
        return torch.randn(batch, *self.input, generator=torch.Generator().manual_seed(seed))

    def expected_config(self, model: nn.Module) -> dict:
        """``config.json`` as the registry builds the model: its defaults and our narrow channels (lists for tuples)."""
        kwargs = {**self.entry.defaults(self.nd), **self.overrides}
        if self.name in PRESETS:
            kwargs.update(layers=PRESETS[self.name].layers, block=PRESETS[self.name].block)
        if self.name in ARCHS:
            layers, block = ARCHS[self.name]
            kwargs.update(layers=layers, block=block, ndim=self.nd)
        return json.loads(json.dumps({"blocks_class": type(model).__name__, **kwargs}))


def plan(name: str, nd: int) -> Plan:
    result = Plan(name, nd)
    if result.heavy:
        pytest.skip(f"{name} in {nd}-D has {count(meta_model(name, nd)):,} parameters at full width: meta only")
    return result


def total_from_table(text: str) -> int:
    """``Total params: N`` of a torchsummary-format table."""
    found = re.findall(r"^Total params: ([\d,]+)$", text, flags=re.MULTILINE)
    assert len(found) == 1, text[-500:]
    return int(found[0].replace(",", ""))


# ------------------------------------------------------------------------------------------ cheap checks


@pytest.mark.parametrize("name, nd", CASES)
def test_forward_backward(name, nd):
    p = plan(name, nd)
    model = p.build().train()
    x = p.example()
    y = model(x)
    assert tuple(y.shape) == p.output
    assert torch.isfinite(y).all()
    (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
    no_grad = [n for n, q in model.named_parameters() if q.grad is None]
    assert no_grad == []
    assert sum(q.grad.numel() for q in model.parameters()) == count(model)
    assert all(torch.isfinite(q.grad).all() for q in model.parameters())


@pytest.mark.parametrize("name, nd", CASES)
def test_save_and_load_round_trip(name, nd, tmp_path):
    p = plan(name, nd)
    model = p.build().eval()
    assert model.config == p.expected_config(model)
    folder = model.save_pretrained(tmp_path / "saved")
    assert sorted(f.name for f in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert json.loads((folder / "config.json").read_text()) == p.expected_config(model)
    again = blocks.from_pretrained(folder)
    assert type(again) is type(model) and not again.training
    assert again.config == model.config
    state, loaded = model.state_dict(), again.state_dict()
    assert list(loaded) == list(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    x = p.example()
    with torch.no_grad():
        assert torch.equal(again(x), model(x))


def summary_cases():
    """Each registered model once, in its lowest dimension where it runs (the tables do not depend on it)."""
    cases = []
    for name in NAMES:
        try:
            light = [nd for nd in entry_of(name).ndims if not Plan(name, nd).heavy]
        except (Exception, pytest.fail.Exception):  # noqa: BLE001 - it fails in its own test, not at collection
            light = list(entry_of(name).ndims)
        if light:
            cases.append(pytest.param(name, light[0], id=f"{name}-{light[0]}d"))
    return cases


@pytest.mark.parametrize("name, nd", summary_cases())
def test_summaries_count_every_parameter(name, nd):
    p = plan(name, nd)
    model = p.build()
    total = count(model)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert torchsummary.summary(model, p.input, device="cpu") is None
        ours = blocks.summary(model, p.input)
    assert total_from_table(printed.getvalue().split(ours)[0]) == total  # torchsummary's table, printed first
    assert total_from_table(ours) == total
    assert torchinfo.summary(model, input_size=(BATCH, *p.input), verbose=0).total_params == total
    assert count(model) == total and model.training  # the summaries leave the model as it was


# --------------------------------------------------------------------------------- full width on meta

RESNET_PARAMETERS = {  # torchvision's (docs/resnet.md)
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032, "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}
COMMAND_LINE = {"conv": ConvModern, "plain": BlockPlain, "bottleneck": BlockBottleneck, "unet": UNet}


def direct(name: str, nd: int) -> nn.Module:
    """The model built from its class, not through the registry's builder (on the current device)."""
    kwargs = entry_of(name).defaults(nd)
    if name in PRESETS:
        network, layers, block = PRESETS[name]
        widths = tuple(64 * 2**i for i in range(len(layers)))
        return named_class(network, nd)(**kwargs, channels=widths, layers=layers, block=block)
    if name in ARCHS:
        return ResNet(*ARCHS[name], ndim=nd)
    if name in COMMAND_LINE:
        return named_class(COMMAND_LINE[name], nd)(**kwargs)
    classes = [getattr(blocks, c) for c in blocks.__all__ if c.lower() == name and isinstance(getattr(blocks, c), type)]
    assert len(classes) == 1, f"{name}: no class to compare with; extend direct() in tests/test_models.py"
    return classes[0](**kwargs)


@pytest.mark.parametrize("name, nd", CASES)
def test_full_width_parameters_on_meta(name, nd):
    model = meta_model(name, nd)
    assert all(q.device.type == "meta" for q in model.parameters())
    with torch.device("meta"):
        reference = direct(name, nd)
    assert type(model) is type(reference)
    assert model.ndim == nd
    assert count(model) > 0
    assert count(model) == count(reference)
    assert [(n, q.shape) for n, q in model.named_parameters()] == [(n, q.shape) for n, q in reference.named_parameters()]
    if name in RESNET_PARAMETERS and nd == 2:
        assert count(model) == RESNET_PARAMETERS[name]
    if name in PRESETS:
        assert model.layers == PRESETS[name].layers
        assert model.channels == tuple(64 * 2**i for i in range(len(PRESETS[name].layers)))


# ----------------------------------------------------------------------------------- timm's feature API


def feature_cases():
    """Every registered feature backbone at reduced width, and the smallest ResNet of each dimension."""
    cases, resnets = [], {}
    for name in NAMES:
        for nd in entry_of(name).ndims:
            try:
                model = meta_model(name, nd)
            except Exception:  # noqa: BLE001, S112 - test_full_width_parameters_on_meta reports it
                continue
            if isinstance(model, ResNet):
                if nd not in resnets or count(model) < count(meta_model(resnets[nd], nd)):
                    resnets[nd] = name
            elif isinstance(model, FeatureAPI):
                cases.append(pytest.param(name, nd, id=f"{name}-{nd}d"))
    return [pytest.param(name, nd, id=f"{name}-{nd}d") for nd, name in sorted(resnets.items())] + cases


FEATURE_SIZES = {1: (70,), 2: (35, 40), 3: (9, 17, 20)}


@pytest.mark.parametrize("name, nd", feature_cases())
def test_feature_api(name, nd):
    p = Plan(name, nd)
    model = p.build().eval()
    if isinstance(model, ResNet):
        size, channels, reductions = FEATURE_SIZES[nd], [64, 64, 128, 256, 512], [2, 4, 8, 16, 32]
        if model.feature_info[-1]["num_chs"] != 512:  # a bottleneck ResNet
            channels = [64, 256, 512, 1024, 2048]
    else:
        size, channels = p.size, list(p.overrides["channels"])
        reductions = [2**i for i in range(len(channels))]
    assert model.num_features == model.feature_info[-1]["num_chs"] == channels[-1]
    declared = copy.deepcopy(model.feature_info)  # timm's FeatureInfo adds an 'index' to each dict
    info = timm.models.FeatureInfo(declared, out_indices=range(len(declared)))
    assert info.channels() == channels
    assert info.reduction() == reductions
    for entry in model.feature_info:
        assert isinstance(model.get_submodule(entry["module"]), nn.Module)

    x = torch.randn(1, p.input[0], *size)
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        features = model.forward_features(x)
    assert [m.shape[1] for m in maps] == info.channels()
    assert [tuple(m.shape[2:]) for m in maps] == [tuple(math.ceil(n / r) for n in size) for r in info.reduction()]
    assert all(torch.isfinite(m).all() for m in maps)
    assert torch.equal(final, features) and torch.equal(maps[-1], features)

    trained = copy.deepcopy(model).train()  # checkpointing recomputes in training mode, with gradients
    batch = torch.randn(BATCH, p.input[0], *size)  # batch norm in training mode needs 2 values at 1/32
    plain_x, checked_x = batch.clone().requires_grad_(), batch.clone().requires_grad_()
    plain, _ = trained.forward_intermediates(plain_x)
    plain.sum().backward()
    trained.set_grad_checkpointing(True)
    checked, _ = trained.forward_intermediates(checked_x)
    checked.sum().backward()
    torch.testing.assert_close(checked, plain)
    torch.testing.assert_close(checked_x.grad, plain_x.grad)

    model.set_grad_checkpointing(True)  # and in eval mode, as timm checks it
    with torch.no_grad():
        again, again_maps = model.forward_intermediates(x)
    torch.testing.assert_close(again, final)
    assert len(again_maps) == len(maps) and all(torch.allclose(a, m) for a, m in zip(again_maps, maps))


# ------------------------------------------------------------------------------ fx, compile and export

SMALL = {"channels": (2, 4, 8), "layers": 1}
NET_SIZES = {1: (13,), 2: (9, 11), 3: (5, 6, 7)}
TINY_RESNET_SIZES = {1: (40,), 2: (33, 35), 3: (8, 9, 10)}
TINY = {  # class -> build(nd), input shape without the batch, smallest spatial size for export (None: fixed)
    "UNet": (lambda nd: named_class(UNet, nd)(**SMALL), lambda nd: (1, *NET_SIZES[nd]), 5),
    "AE": (lambda nd: named_class(AE, nd)(**SMALL), lambda nd: (1, *NET_SIZES[nd]), 5),
    "EncoderNet": (lambda nd: named_class(EncoderNet, nd)(out_length=3, **SMALL), lambda nd: (1, *NET_SIZES[nd]), 5),
    "DecoderNet": (lambda nd: named_class(DecoderNet, nd)(NET_SIZES[nd], **SMALL), lambda nd: (2,), None),
    "ResNet": (lambda nd: ResNet([1, 1, 1, 1], "plain", in_planes=1, num_classes=3, ndim=nd),
               lambda nd: (1, *TINY_RESNET_SIZES[nd]), 33),
    "BlockPlain": (lambda nd: named_class(BlockPlain, nd)(2, 4, stride=2), lambda nd: (2, *NET_SIZES[nd]), 4),
    "BlockBottleneck": (lambda nd: named_class(BlockBottleneck, nd)(2, 4, stride=2), lambda nd: (2, *NET_SIZES[nd]), 4),
}
TINY_CASES = [pytest.param(kind, nd, id=f"{kind}-{nd}d") for kind in TINY for nd in (1, 2, 3)
              if not (kind == "BlockPlain" and nd == 2) and not (kind == "BlockBottleneck" and nd != 2)]
"""One small model per class and dimension (a plain block in 1-D and 3-D, a bottleneck in 2-D): 18 models."""


def tiny(kind: str, nd: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return TINY[kind][0](nd)


def tiny_input(kind: str, nd: int, batch: int = BATCH, grow: int = 0, seed: int = 1) -> torch.Tensor:
    shape = TINY[kind][1](nd)
    if len(shape) > 1:
        shape = (shape[0], *(n + grow + i for i, n in enumerate(shape[1:])))
    return torch.randn(batch, *shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize("kind, nd", TINY_CASES)
def test_feature_extractor_forward_and_backward_equal_eager(kind, nd):
    model = tiny(kind, nd)
    train_nodes, eval_nodes = get_graph_node_names(model)
    extractor = create_feature_extractor(
        copy.deepcopy(model), train_return_nodes=[train_nodes[-1]], eval_return_nodes=[eval_nodes[-1]]
    )
    x = tiny_input(kind, nd)
    model.eval()
    extractor.eval()
    with torch.no_grad():
        expected = model(x)
        (got,) = extractor(x).values()
    assert got.shape == expected.shape
    assert torch.equal(got, expected)

    model.train()
    extractor.train()
    weights = torch.linspace(-1, 1, expected.numel()).reshape(expected.shape)
    (model(x) * weights).sum().backward()
    (out,) = extractor(x).values()
    (out * weights).sum().backward()
    grads = {n: q.grad for n, q in extractor.named_parameters()}
    assert sorted(grads) == sorted(n for n, _ in model.named_parameters())
    for n, q in model.named_parameters():
        assert q.grad is not None and grads[n] is not None, n
        torch.testing.assert_close(grads[n], q.grad, msg=n)


COMPILE_CASES = [("UNet", 1), ("AE", 3), ("EncoderNet", 2), ("DecoderNet", 3), ("ResNet", 2), ("BlockPlain", 3),
                 ("BlockBottleneck", 2)]
"""One dimension per class (a compile costs seconds on 2 cores; fx covers every class in every dimension)."""


@pytest.mark.slow
@pytest.mark.parametrize("kind, nd", [pytest.param(k, n, id=f"{k}-{n}d") for k, n in COMPILE_CASES])
def test_compile_fullgraph_dynamic_equals_eager(kind, nd, fresh_dynamo):
    model = tiny(kind, nd).eval()
    compiled = torch.compile(copy.deepcopy(model), fullgraph=True, dynamic=True, backend="eager")
    torch._dynamo.utils.counters.clear()
    # Batches 3 and 5: a batch equal to a channel count (2) would be duck-sized to it and specialized.
    for x in (tiny_input(kind, nd, batch=3), tiny_input(kind, nd, batch=5, grow=2, seed=2)):
        with torch.no_grad():
            expected, got = model(x), compiled(x)
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1  # the second size reuses the graph


EXPORT_CASES = [("UNet", 2), ("AE", 1), ("EncoderNet", 3), ("DecoderNet", 2), ("ResNet", 2), ("BlockBottleneck", 2)]


@pytest.mark.slow
@pytest.mark.parametrize("kind, nd", [pytest.param(k, n, id=f"{k}-{n}d") for k, n in EXPORT_CASES])
def test_export_dynamic_equals_eager_at_another_size(kind, nd):
    model = tiny(kind, nd).eval()
    minimum = TINY[kind][2]
    x = tiny_input(kind, nd)
    shapes = {0: Dim("batch", min=1, max=64)}
    if minimum is not None:  # any-size models: every spatial size too, the deepest level staying >= 2
        shapes.update({2 + i: Dim(f"size{i}", min=minimum, max=256) for i in range(nd)})
    program = torch.export.export(model, (x,), dynamic_shapes={"x": shapes})
    other = tiny_input(kind, nd, batch=3, grow=3 if minimum is not None else 0, seed=5)
    assert other.shape != x.shape
    got = program.module()(other)
    with torch.no_grad():
        expected = model(other)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected)
