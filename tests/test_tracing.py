"""Tracing, export, compile and gradient checkpointing in 1-D, 2-D and 3-D (docs/design.md, input checks and tracing).

One fixed set of tiny models per dimension: a plain block, an up-scaling bottleneck with an
``output_size``, a ResNet of one plain block per stage and a U-Net of three levels. Each must work
under ``torch.fx`` symbolic tracing (and torchvision's ``create_feature_extractor``), under
``torch.export`` with dynamic batch and spatial sizes, and under ``torch.compile(fullgraph=True)``,
giving what eager mode gives; checkpointed networks give the same outputs and gradients; and in
eager mode the input checks still raise their errors.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch.export import Dim
from torchvision.models.feature_extraction import (
    create_feature_extractor,
    get_graph_node_names,
)

from blocks import BlockBottleneck, BlockPlain, ResNet, UNet, UNet3d, Upsample

pytestmark = pytest.mark.usefixtures("one_thread")

NDIMS = (1, 2, 3)


@pytest.fixture(autouse=True)
def fresh_dynamo():
    """Each test compiles from scratch, so recompile limits and caches never carry over."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


OUTPUT_SIZE = {1: (21,), 2: (11, 13), 3: (7, 9, 11)}
MODELS = {  # name -> (build(nd), input channels, input size per dimension)
    "plain": (lambda nd: BlockPlain(2, 4, stride=2, ndim=nd), 2, {1: (12,), 2: (6, 7), 3: (4, 5, 6)}),
    "bottleneck-up": (
        lambda nd: BlockBottleneck(4, 2, stride=2, scaler="up", output_size=OUTPUT_SIZE[nd], ndim=nd),
        4,
        {1: (9,), 2: (5, 6), 3: (3, 4, 5)},
    ),
    "resnet": (
        lambda nd: ResNet([1, 1, 1, 1], "plain", in_planes=1, num_classes=3, ndim=nd),
        1,
        {1: (40,), 2: (20, 24), 3: (8, 9, 10)},
    ),
    "unet": (lambda nd: UNet(channels=(2, 4, 8), layers=1, ndim=nd), 1, {1: (13,), 2: (9, 11), 3: (5, 6, 7)}),
}
OUT_CHANNELS = {"plain": 4, "bottleneck-up": 2, "unet": 1}


def built(name, nd, seed=0):
    torch.manual_seed(seed)
    return MODELS[name][0](nd)


def example(name, nd, batch=2, size=None, seed=1):
    _, channels, sizes = MODELS[name]
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, *(sizes[nd] if size is None else size), generator=generator)


def expected_shape(name, nd, x):
    """From the rules: stride-2 down gives ceil(n / 2); the up block gives its output_size; a U-Net keeps the size."""
    batch, size = x.shape[0], tuple(x.shape[2:])
    if name == "plain":
        return (batch, 4, *((n + 1) // 2 for n in size))
    if name == "bottleneck-up":
        return (batch, 2, *OUTPUT_SIZE[nd])
    if name == "resnet":
        return (batch, 3)
    return (batch, 1, *size)


# ------------------------------------------------------------------------------------------- torch.fx


FX_CASES = [pytest.param(nd, name) for nd in NDIMS for name in MODELS]


@pytest.mark.parametrize("nd, name", FX_CASES)
def test_symbolic_trace_matches_eager(nd, name):
    model = built(name, nd).eval()
    graph = torch.fx.symbolic_trace(model)
    assert isinstance(graph, torch.fx.GraphModule)
    x = example(name, nd)
    with torch.no_grad():
        expected = model(x)
        got = graph(x)
    assert expected.shape == expected_shape(name, nd, x)
    assert got.shape == expected.shape and torch.allclose(got, expected)
    if name == "unet":  # sizes are read from tensors at run time, not frozen at trace time
        other = example(name, nd, batch=1, size=tuple(n + 3 for n in x.shape[2:]))
        with torch.no_grad():
            assert torch.allclose(graph(other), model(other))
        assert graph(other).shape == expected_shape(name, nd, other)


@pytest.mark.parametrize("nd", NDIMS)
def test_traced_upscaling_block_takes_output_size_at_call_time(nd):
    model = built("bottleneck-up", nd).eval()
    graph = torch.fx.symbolic_trace(model)
    x = example("bottleneck-up", nd)
    other = tuple(n + 2 for n in OUTPUT_SIZE[nd])
    with torch.no_grad():
        expected = model(x, output_size=other)
        assert expected.shape == (2, 2, *other)
        assert torch.allclose(graph(x, other), expected)
        # with output_size fixed to None at trace time the graph uses the constructor's size
        fixed = torch.fx.symbolic_trace(model, concrete_args={"output_size": None})
        assert torch.allclose(fixed(x), model(x))


def test_upsample_without_ndim_traces():
    module = Upsample(scale_factor=2)
    for graph in (torch.fx.symbolic_trace(module, concrete_args={"output_size": None}), torch.fx.symbolic_trace(module)):
        for x in (torch.randn(1, 2, 5), torch.randn(1, 2, 3, 4)):  # the mode follows the rank at run time
            assert torch.allclose(graph(x), module(x))


def test_traced_upsample_uses_its_own_size():
    module = Upsample(size=OUTPUT_SIZE[3], ndim=3)
    x = torch.randn(1, 2, 3, 4, 5)
    assert torch.allclose(torch.fx.symbolic_trace(module)(x), module(x))


def test_unet_on_a_resnet_encoder_traces_in_1d():
    torch.manual_seed(0)
    encoder = ResNet([1, 1, 1, 1], "plain", in_planes=1, num_classes=None, ndim=1)
    model = UNet(encoder=encoder, layers=1).eval()
    assert model.ndim == 1
    graph = torch.fx.symbolic_trace(model)
    for length in (70, 45):
        x = torch.randn(2, 1, length)
        with torch.no_grad():
            expected = model(x)
            assert expected.shape == (2, 1, length)
            assert torch.allclose(graph(x), expected)


def hooked_outputs(model, names, x):
    """The outputs of the named submodules in an eager forward, recorded by forward hooks."""
    seen = {}
    hooks = [
        model.get_submodule(n).register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, o.detach().clone()))
        for n in names
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


@pytest.mark.parametrize("name, nodes", [("resnet", ["layer2", "layer4"]), ("unet", ["decoder.1", "head"])])
@pytest.mark.parametrize("nd", NDIMS)
def test_create_feature_extractor_matches_forward_hooks(nd, name, nodes):
    model = built(name, nd).eval()
    _, eval_nodes = get_graph_node_names(model)
    for node in nodes:
        assert any(n.startswith(node + ".") for n in eval_nodes), node
    extractor = create_feature_extractor(model, return_nodes={node: node for node in nodes}).eval()
    x = example(name, nd)
    with torch.no_grad():
        features = extractor(x)
    expected = hooked_outputs(model, nodes, x)
    assert list(features) == nodes
    for node in nodes:
        assert features[node].shape == expected[node].shape, node
        assert torch.allclose(features[node], expected[node]), node
    if name == "resnet":  # layer2 at 1/8 (channels 128), layer4 at 1/32 (512), sizes rounded up
        size = x.shape[2:]
        assert tuple(features["layer2"].shape) == (2, 128, *(-(-n // 8) for n in size))
        assert tuple(features["layer4"].shape) == (2, 512, *(-(-n // 32) for n in size))
    else:  # the last decoder stage is at the input's size with channels[0]; the head gives out_planes
        assert tuple(features["decoder.1"].shape) == (2, 2, *x.shape[2:])
        assert tuple(features["head"].shape) == (2, 1, *x.shape[2:])


# ---------------------------------------------------------------------------------------- torch.export


def size_dims(nd, minimum):
    """Dynamic batch and every spatial size; ``torch.export`` specializes sizes 0 and 1, so every size in
    the model must stay >= 2 over the whole range."""
    names = {1: ["l"], 2: ["h", "w"], 3: ["d", "h", "w"]}[nd]
    return {0: Dim("batch", max=64), **{2 + i: Dim(n, min=minimum, max=256) for i, n in enumerate(names)}}


EXPORT_CASES = [  # (nd, name, minimum size, example size, another size)
    (1, "plain", 4, (12,), (17,)),
    (3, "plain", 4, (4, 5, 6), (7, 4, 5)),
    (3, "bottleneck-up", 4, (4, 5, 6), (5, 7, 4)),
    (1, "unet", 5, (13,), (22,)),
    (3, "unet", 5, (6, 7, 8), (5, 9, 6)),
]


@pytest.mark.slow
@pytest.mark.parametrize("nd, name, minimum, size, other", EXPORT_CASES)
def test_export_with_dynamic_batch_and_sizes(nd, name, minimum, size, other):
    model = built(name, nd).eval()
    program = torch.export.export(model, (example(name, nd, size=size),), dynamic_shapes={"x": size_dims(nd, minimum)})
    for batch, shape in ((3, other), (1, size)):
        x = example(name, nd, batch=batch, size=shape, seed=7)
        got = program.module()(x)
        assert got.shape == expected_shape(name, nd, x)
        with torch.no_grad():
            torch.testing.assert_close(got, model(x))


# --------------------------------------------------------------------------------------- torch.compile


@pytest.mark.slow
@pytest.mark.parametrize("name", ["plain", "bottleneck-up", "unet"])
@pytest.mark.parametrize("nd", [1, 3])
def test_compile_fullgraph_matches_eager(nd, name):
    """Training mode, forward and backward: the compiled copy gives eager's outputs and input gradients."""
    model = built(name, nd)
    compiled = torch.compile(copy.deepcopy(model), fullgraph=True, backend="eager")
    x = example(name, nd)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    expected, got = model(x1), compiled(x2)
    assert got.shape == expected_shape(name, nd, x)
    torch.testing.assert_close(got, expected)
    weights = torch.linspace(-1, 1, expected.numel()).reshape(expected.shape)
    (expected * weights).sum().backward()
    (got * weights).sum().backward()
    torch.testing.assert_close(x2.grad, x1.grad, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_compile_through_aot_autograd_in_3d():
    model = built("plain", 3)
    compiled = torch.compile(copy.deepcopy(model), fullgraph=True, backend="aot_eager")
    x = example("plain", 3)
    torch.testing.assert_close(compiled(x), model(x))


# ------------------------------------------------------------------------------ gradient checkpointing


@pytest.mark.parametrize("name", ["resnet", "unet"])
@pytest.mark.parametrize("nd", [1, 3])
def test_checkpointing_keeps_outputs_and_gradients(nd, name):
    plain = built(name, nd)
    checked = copy.deepcopy(plain)
    checked.set_grad_checkpointing(True)
    blocks_ = [m for m in checked.modules() if hasattr(m, "grad_checkpointing")]
    assert blocks_ and all(m.grad_checkpointing for m in blocks_)
    assert not any(m.grad_checkpointing for m in plain.modules() if hasattr(m, "grad_checkpointing"))
    x = example(name, nd)
    results = []
    for model in (plain, checked):
        xi = x.clone().requires_grad_()
        y = model(xi)
        (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
        results.append((y.detach(), xi.grad, {n: p.grad for n, p in model.named_parameters()}))
    (y1, gx1, g1), (y2, gx2, g2) = results
    assert y1.shape == expected_shape(name, nd, x)
    assert torch.allclose(y2, y1, atol=1e-5)
    assert torch.allclose(gx2, gx1, atol=1e-5)
    assert g1.keys() == g2.keys()
    for n in g1:
        assert g1[n] is not None and torch.allclose(g2[n], g1[n], atol=1e-5), n


# ------------------------------------------------------------------------------------ eager input checks


def test_eager_checks_still_raise_after_tracing():
    model = UNet3d(channels=(2, 4, 8), layers=1)
    torch.fx.symbolic_trace(model)
    create_feature_extractor(model, return_nodes=["head"])
    with pytest.raises(ValueError, match=r"^UNet3d expects input of shape \(B, 1, D, H, W\), got \(2, 2, 5, 6, 7\): its channel count is 2"):
        model(torch.randn(2, 2, 5, 6, 7))
    with pytest.raises(ValueError, match=r"UNet3d needs an input of depth, height or width >= 5"):
        model(torch.randn(1, 1, 4, 4, 4))
    block = built("plain", 1)
    torch.fx.symbolic_trace(block)
    with pytest.raises(ValueError, match=r"^BlockPlain expects input of shape \(B, 2, L\), got \(1, 3, 8\): its channel count is 3"):
        block(torch.randn(1, 3, 8))
