"""Export and compile: ``torch.export`` with dynamic shapes, ``torch.compile(fullgraph=True)`` and ONNX.

* Every block and every ResNet preset exports with a dynamic batch dimension, UNet2d also with a
  dynamic height and width; the exported program matches eager at a second input size.
* ``torch.compile(model, fullgraph=True)`` (which raises on any graph break) compiles the blocks, a
  ResNet and a U-Net, and matches eager in training mode, forward and backward. The compile tests
  use the ``aot_eager``/``eager`` backends: graph capture (where graph breaks happen) is the same
  as with inductor, without the minutes of C++ compilation that inductor costs on a 2-core machine.
* ``torch.onnx.export`` of a ResNet and a U-Net runs in onnxruntime and matches eager.

Models are tiny (few channels, small inputs) so that the whole file runs in about a minute.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.export import Dim

import blocks
from blocks import BlockBottleneck2d, BlockPlain2d, ConvModern2d, UNet2d

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


BLOCKS = {
    "conv-down": lambda: ConvModern2d(3, 8, stride=2, normalizer="batch", activator="relu", layer_order="old"),
    "conv-up": lambda: ConvModern2d(3, 8, stride=(2, 3), scaler="up"),
    "conv-up-to-size": lambda: ConvModern2d(
        3, 8, output_size=(11, 13), scaler="up", normalizer="group", activator="gelu"
    ),
    "plain-down": lambda: BlockPlain2d(3, 8, stride=(1, 2)),
    "plain-identity": lambda: BlockPlain2d(3, 3, normalizer="layer", activator="leaky"),
    "plain-up-first": lambda: BlockPlain2d(
        3, 8, stride=2, scaler="up", scale_first=True, normalizer="inst", activator="silu", layer_order="old"
    ),
    "bottleneck-down": lambda: BlockBottleneck2d(
        3, 8, stride=2, normalizer="batch", activator="relu", layer_order="old"
    ),
    "bottleneck-up": lambda: BlockBottleneck2d(3, 8, stride=2, scaler="up", normalizer=None, activator="elu"),
}
UPSCALING = ["conv-up", "plain-up-first", "bottleneck-up"]
PRESETS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]


def tiny_unet() -> UNet2d:
    return UNet2d(in_planes=1, out_planes=2, channels=(4, 8, 16), layers=1)


def built(make, seed=0):
    torch.manual_seed(seed)
    return make()


def size_dims(minimum: int = 4) -> dict[int, Dim]:
    """Dynamic batch, height and width.

    ``torch.export`` specializes sizes 0 and 1, so every size inside the model must stay >= 2 over
    the whole range: a stride-2 block needs ``minimum >= 3``, a U-Net its ``min_size``.
    """
    return {0: Dim("batch", max=64), 2: Dim("h", min=minimum, max=512), 3: Dim("w", min=minimum, max=512)}


@pytest.fixture(autouse=True)
def fresh_dynamo():
    """Each test compiles from scratch, so recompile limits and caches never carry over."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


# -------------------------------------------------------------------------------------- torch.export


@pytest.mark.parametrize("name", list(BLOCKS))
def test_blocks_export_with_dynamic_batch_height_and_width(name):
    model = built(BLOCKS[name]).eval()
    program = torch.export.export(model, (torch.randn(2, 3, 6, 7),), dynamic_shapes={"x": size_dims()})
    for shape in [(5, 3, 9, 13), (1, 3, 4, 5)]:
        x = torch.randn(shape)
        torch.testing.assert_close(program.module()(x), model(x))


class UpToReference(nn.Module):
    """Up-scale to the size of a second tensor read at run time, as a U-Net decoder stage does."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        return self.block(x, reference.shape[-2:])


@pytest.mark.parametrize("name", UPSCALING)
def test_upscaling_blocks_export_with_a_run_time_output_size(name):
    model = UpToReference(built(BLOCKS[name])).eval()
    example = (torch.randn(2, 3, 5, 6), torch.randn(2, 1, 9, 11))
    dims = {"x": size_dims()}
    dims["reference"] = {0: dims["x"][0], 2: Dim("rh", min=4, max=512), 3: Dim("rw", min=4, max=512)}
    program = torch.export.export(model, example, dynamic_shapes=dims)
    x, reference = torch.randn(4, 3, 7, 4), torch.randn(4, 1, 15, 9)
    y = program.module()(x, reference)
    assert y.shape == (4, 8, 15, 9)
    torch.testing.assert_close(y, model(x, reference))


@pytest.mark.parametrize("name", PRESETS)
def test_resnet_presets_export_with_dynamic_batch(name):
    model = built(getattr(blocks, name)).eval()
    program = torch.export.export(model, (torch.randn(2, 3, 32, 32),), dynamic_shapes={"x": {0: Dim("batch", max=64)}})
    x = torch.randn(3, 3, 32, 32)
    y = program.module()(x)
    assert y.shape == (3, 1000)
    torch.testing.assert_close(y, model(x))


def test_unet_exports_with_dynamic_batch_height_and_width():
    """One exported U-Net serves any image size (down to its minimum) and any batch."""
    model = built(tiny_unet).eval()
    dims = {"x": size_dims(minimum=model.min_size)}
    program = torch.export.export(model, (torch.randn(2, 1, 24, 20),), dynamic_shapes=dims)
    for shape in [(3, 1, 17, 29), (1, 1, 5, 64), (4, 1, 40, 33)]:
        x = torch.randn(shape)
        y = program.module()(x)
        assert y.shape == (shape[0], 2, *shape[2:])
        torch.testing.assert_close(y, model(x))


# ------------------------------------------------------------------------------------- torch.compile


def assert_compiled_matches_eager(model, inputs, backend, dynamic=None):
    """Compile a copy with fullgraph=True; forward and backward in training mode match eager."""
    compiled_model = copy.deepcopy(model)
    compiled = torch.compile(compiled_model, fullgraph=True, backend=backend, dynamic=dynamic)
    for args, kwargs in inputs:
        expected = model(*args, **kwargs)
        got = compiled(*args, **kwargs)
        torch.testing.assert_close(got, expected)
        weights = torch.linspace(-1, 1, expected.numel()).reshape(expected.shape)
        (expected * weights).sum().backward()
        (got * weights).sum().backward()
    for (name, p), q in zip(model.named_parameters(), compiled_model.parameters()):
        # Gradients through instance norms reach ~1e2: compare relative to their scale.
        scale = p.grad.abs().max().item()
        torch.testing.assert_close(
            q.grad, p.grad, rtol=1e-5, atol=1e-6 * scale + 1e-6, msg=lambda m, name=name: f"{name}: {m}"
        )
    for (name, b), c in zip(model.named_buffers(), compiled_model.buffers()):
        torch.testing.assert_close(c, b, msg=lambda m, name=name: f"{name}: {m}")  # e.g. BatchNorm running statistics


@pytest.mark.parametrize("name", list(BLOCKS))
def test_blocks_compile_without_graph_breaks(name):
    model = built(BLOCKS[name])
    inputs = [((torch.randn(2, 3, 6, 7),), {}), ((torch.randn(3, 3, 9, 5),), {})]
    if name in UPSCALING:
        inputs.append(((torch.randn(2, 3, 6, 7),), {"output_size": (13, 11)}))
    assert_compiled_matches_eager(model, inputs, backend="eager")


def test_block_compiles_through_aot_autograd():
    """AOTAutograd (functionalization of in-place activations, BatchNorm's buffer updates) traces too."""
    model = built(BLOCKS["bottleneck-down"])
    assert_compiled_matches_eager(model, [((torch.randn(2, 3, 6, 7),), {})], backend="aot_eager")


def test_resnet_compiles_without_graph_breaks():
    model = built(lambda: blocks.ResNet([1, 1, 1, 1], "bottleneck", num_classes=10))
    # Non-square first input: with equal sizes, duck sizing would tie height to width and recompile.
    inputs = [((torch.randn(2, 3, 64, 56),), {}), ((torch.randn(3, 3, 48, 40),), {})]
    assert_compiled_matches_eager(model, inputs, backend="eager", dynamic=True)


def test_unet_compiles_without_graph_breaks():
    model = built(tiny_unet)
    inputs = [((torch.randn(2, 1, 24, 20),), {}), ((torch.randn(3, 1, 17, 29),), {})]
    assert_compiled_matches_eager(model, inputs, backend="eager", dynamic=True)


# ---------------------------------------------------------------------------------------------- ONNX


def run_onnx(model, example, dynamic_shapes, x):
    """Export ``model`` to ONNX and run it on ``x`` in onnxruntime."""
    import onnxruntime

    program = torch.onnx.export(model, (example,), dynamo=True, dynamic_shapes=dynamic_shapes, verbose=False)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        program.model_proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    (output,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    return torch.from_numpy(output)


def test_resnet_onnx_matches_eager():
    model = built(lambda: blocks.resnet18(num_classes=10)).eval()
    x = torch.randn(3, 3, 40, 48)
    y = run_onnx(model, torch.randn(2, 3, 40, 48), {"x": {0: Dim("batch", max=64)}}, x)
    assert y.shape == (3, 10)
    torch.testing.assert_close(y, model(x).detach(), rtol=1e-4, atol=1e-4)


def test_unet_onnx_matches_eager_at_another_size():
    model = built(tiny_unet).eval()
    x = torch.randn(3, 1, 17, 29)
    y = run_onnx(model, torch.randn(2, 1, 24, 20), {"x": size_dims(minimum=model.min_size)}, x)
    assert y.shape == (3, 2, 17, 29)
    torch.testing.assert_close(y, model(x).detach(), rtol=1e-4, atol=1e-4)
