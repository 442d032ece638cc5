"""TorchScript: every model scripts with ``torch.jit.script`` and gives the eager outputs, and so does its fx graph.

* Registry-driven (as timm's and smp's suites are): every registered model and command-line demo, in
  every dimension, at the narrow widths of ``tests/test_models.py`` (its `Plan`), in eval mode:
  ``torch.jit.script(model)`` and ``torch.jit.script(torch.fx.symbolic_trace(model))`` give the
  eager output (``assert_close``). Full-width models above `test_models.HEAVY` parameters are
  scripted on the ``meta`` device and checked for the output shape. One model per class and
  dimension runs in the quick suite, the others are ``slow``.
* The blocks and units, fast: every scaling and order, ``output_size`` at call time, the
  subsampling shortcut, a user's shortcut module.
* What steps aside for the script: ``config`` and the other Python-only properties, the input
  checks, gradient checkpointing; deep supervision switches on the scripted module; a scripted
  model saves and loads with ``torch.jit.save`` / ``torch.jit.load``.
* The fx graph's code has objects as annotations (``torch.Tensor``), not postponed strings (``_Tensor_``).

``torch.jit.script`` is deprecated in torch 2.14 (a FutureWarning, filtered here); the peers' suites
still test it and C++ deployments still use it.
"""

from __future__ import annotations

import io

import pytest
import torch
from test_models import BATCH, CASES, Plan, meta_model
from torch import nn

import blocks

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:FutureWarning"),
]


def scripted(model: nn.Module) -> torch.jit.ScriptModule:
    return torch.jit.script(model)


def traced_then_scripted(model: nn.Module) -> torch.jit.ScriptModule:
    return torch.jit.script(torch.fx.symbolic_trace(model))


def randn(*shape, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def assert_same_outputs(model: nn.Module, *args) -> None:
    """The script and the script of the fx graph give the eager output (eval mode)."""
    model = model.eval()
    with torch.no_grad():
        expected = model(*args)
        torch.testing.assert_close(scripted(model)(*args), expected)
        torch.testing.assert_close(traced_then_scripted(model)(*args), expected)


# ------------------------------------------------------------------------- every registered model

QUICK = {("conv", 2), ("plain", 3), ("bottleneck", 1), ("unet", 2), ("resnet18", 1), ("resnet18", 2),
         ("unet1d", 1), ("unet3d", 3), ("ae2d", 2), ("encodernet1d", 1), ("encodernet3d", 3), ("decodernet2d", 2),
         ("decodernet3d", 3), ("unet16", 2), ("encnet12", 2)}
"""The quick suite's share: every class in every dimension, the demos and one preset of each kind."""

SCRIPT_CASES = [case if tuple(case.values) in QUICK else pytest.param(*case.values, id=case.id, marks=pytest.mark.slow)
                for case in CASES]


@pytest.mark.parametrize("name, nd", SCRIPT_CASES)
def test_every_model_scripts_with_the_eager_outputs(name, nd):
    p = Plan(name, nd)
    if p.heavy:  # full width on meta: the script compiles and gives the eager shape
        model = meta_model(name, nd).eval()
        x = torch.empty(BATCH, *p.input, device="meta")
        with torch.no_grad():
            assert scripted(model)(x).shape == model(x).shape
        return
    assert_same_outputs(p.build(), p.example())


# ------------------------------------------------------------------------------------ blocks, fast

UNITS = {
    "down": lambda nd: blocks.ConvModern(4, 8, stride=2, ndim=nd),
    "up": lambda nd: blocks.ConvModern(4, 8, stride=2, scaler="up", ndim=nd),
    "up-to-size": lambda nd: blocks.ConvModern(4, 8, output_size=(11, 13, 12)[:nd], scaler="up", ndim=nd),
    "subsampling-1x1": lambda nd: blocks.ConvModern(4, 8, 1, 2, 0, ndim=nd),
    "old-no-norm": lambda nd: blocks.ConvModern(4, 8, layer_order="old", normalizer=None, activator="gelu", ndim=nd),
    "bare": lambda nd: blocks.ConvModern(4, 8, bare=True, ndim=nd),
    "head": lambda nd: blocks.ConvModern(4, 2, 1, 1, 0, linear_output=True, bias=True, ndim=nd),
    "plain": lambda nd: blocks.BlockPlain(4, 8, stride=2, ndim=nd),
    "plain-scale-first-old": lambda nd: blocks.BlockPlain(4, 8, stride=2, scale_first=True, layer_order="old",
                                                          normalizer="batch", activator="relu", ndim=nd),
    "plain-identity": lambda nd: blocks.BlockPlain(4, 4, normalizer=("group", {"num_groups": 2}), ndim=nd),
    "bottleneck-up": lambda nd: blocks.BlockBottleneck(4, 8, stride=2, scaler="up", ndim=nd),
    "bottleneck-own-shortcut": lambda nd: blocks.BlockBottleneck(
        4, 8, stride=2, shortcut=blocks.layers.torch_layer("Conv", nd)(4, 8, 1, stride=2), ndim=nd),
}


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kind", list(UNITS))
def test_units_and_blocks_script(kind, nd):
    torch.manual_seed(0)
    assert_same_outputs(UNITS[kind](nd), randn(2, 4, *(7, 9, 8)[:nd]))


@pytest.mark.parametrize("kind", ["up", "bottleneck-up"])
def test_output_size_at_call_time(kind):
    torch.manual_seed(0)
    model = UNITS[kind](2).eval()
    x = randn(2, 4, 5, 6)
    script = scripted(model)
    with torch.no_grad():
        out = script(x, [9, 13])
        assert out.shape == (2, 8, 9, 13)
        torch.testing.assert_close(out, model(x, output_size=(9, 13)))


@pytest.mark.parametrize("up, shape, size", [
    (blocks.conv.Upsample(scale_factor=2), (1, 3, 4, 5), [6, 7]),  # the mode from the input's rank
    (blocks.conv.Upsample(scale_factor=3), (1, 3, 4), [10]),
    (blocks.conv.Upsample(size=(7, 9), ndim=2), (1, 3, 4, 5), [6, 7]),
    (blocks.conv.Upsample(scale_factor=(1, 2, 2), nearest=True), (1, 3, 2, 4, 5), [2, 7, 9]),
])
def test_the_up_sampler_scripts(up, shape, size):
    x = randn(*shape)
    torch.testing.assert_close(scripted(up)(x), up(x))
    torch.testing.assert_close(scripted(up)(x, size), up(x, output_size=size))
    assert scripted(up)(x, size).shape[2:] == tuple(size)


# ----------------------------------------------------------------------- networks, their options

NETWORKS = {
    "unet-transpose-anisotropic": lambda: blocks.UNet3d(channels=(2, 4, 8), layers=1, upsample="transpose",
                                                        strides=(1, (1, 2, 2), 2), kernel_sizes=(3, (1, 3, 3), 3)),
    "unet-interpolate-conv-old": lambda: blocks.UNet2d(channels=(2, 4, 8), layers=1, upsample="interpolate",
                                                       block="conv", layer_order="old", normalizer="batch"),
    "unet-nearest-extra-stages": lambda: blocks.UNet2d(channels=(2, 4, 8), layers=1, upsample="nearest",
                                                       strides=(4, 2, 2), decoder_channels=(8, 4, 4, 2)),
    "unet-resnet-layout": lambda: blocks.UNet1d(channels=(2, 4, 8), layers=(1, 2, 1), decoder_block="plain",
                                                decoder_layers=(2, 1), normalizer=None),
    "ae-strided-stem": lambda: blocks.AE2d(channels=(2, 4), layers=1, strides=(2, 2)),
    "encodernet-pooled-features": lambda: blocks.EncoderNet2d(channels=(2, 4), layers=1, out_length=0),
    "encodernet-backbone": lambda: blocks.EncoderNet1d(channels=(2, 4), layers=1, out_length=None,
                                                       layer_order="old"),
    "decodernet-from-a-map": lambda: blocks.DecoderNet2d((9, 11), in_length=None, channels=(2, 4), layers=1),
    "resnet-pre-activation-backbone": lambda: blocks.ResNet([1, 1, 1, 1], "plain", in_planes=1, num_classes=None,
                                                            layer_order="new", stem_pool=False, ndim=1),
}
INPUTS = {"unet-transpose-anisotropic": (2, 1, 3, 9, 10), "unet-nearest-extra-stages": (2, 1, 18, 21), "unet-resnet-layout": (2, 1, 13),
          "decodernet-from-a-map": None, "resnet-pre-activation-backbone": (2, 1, 40),
          "encodernet-backbone": (2, 1, 9)}


@pytest.mark.parametrize("kind", list(NETWORKS))
def test_network_options_script(kind):
    torch.manual_seed(0)
    model = NETWORKS[kind]()
    shape = INPUTS.get(kind, (2, 1, 9, 11))
    x = randn(2, *model.input_size) if shape is None else randn(*shape)
    assert_same_outputs(model, x)


def test_deep_supervision_switches_on_the_scripted_model():
    torch.manual_seed(0)
    model = blocks.UNet2d(channels=(2, 4, 8), layers=1, deep_supervision=True).eval()
    x = randn(2, 1, 9, 11)
    script = scripted(model)
    with torch.no_grad():
        outputs = script(x)
        assert [tuple(o.shape) for o in outputs] == [(2, 1, 9, 11), (2, 1, 5, 6)]
        for got, expected in zip(outputs, model(x)):
            torch.testing.assert_close(got, expected)
        script.decoder.deep_supervision = False  # nnU-Net's switch works on the script too
        model.deep_supervision = False
        torch.testing.assert_close(script(x), model(x))
        torch.testing.assert_close(traced_then_scripted(model)(x), model(x))


def test_python_only_features_step_aside():
    """``config`` is neither compiled nor read, the checks and checkpointing are Python's; the script runs alone."""
    torch.manual_seed(0)
    model = blocks.UNet2d(channels=(2, 4), layers=1, normalizer=nn.BatchNorm2d)  # config raises: a callable
    with pytest.raises(ValueError, match="cannot be written to config.json"):
        _ = model.config
    model.set_grad_checkpointing(True)
    script = scripted(model.eval())
    assert not hasattr(script, "config")
    x = randn(2, 1, 9, 11)
    with torch.no_grad():
        torch.testing.assert_close(script(x), model(x))
    with pytest.raises(ValueError, match=r"UNet2d expects input of shape \(B, 1, H, W\), got \(2, 3, 9, 11\)"):
        model(randn(2, 3, 9, 11))  # eager: blocks' message
    with pytest.raises(RuntimeError):  # scripted: torch's own error, from the first conv
        script(randn(2, 3, 9, 11))


def test_a_scripted_model_saves_and_loads():
    torch.manual_seed(0)
    model = blocks.EncoderNet3d(channels=(2, 4), layers=1, out_length=3).eval()
    buffer = io.BytesIO()
    torch.jit.save(scripted(model), buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    x = randn(2, 1, 5, 6, 7)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_the_fx_graph_annotates_with_objects():
    """Postponed annotations are strings; fx would write them as undefined names (``x : _Tensor_``)."""
    code = torch.fx.symbolic_trace(blocks.UNet1d(channels=(2, 4), layers=1)).code
    assert "def forward(self, x : torch.Tensor) -> typing_Union[torch.Tensor,typing_List[torch.Tensor]," in code
    assert "_Tensor_" not in code
    code = torch.fx.symbolic_trace(blocks.BlockPlain2d(2, 4)).code
    assert "def forward(self, x : torch.Tensor, output_size : typing_Union[list[int],NoneType] = None) -> torch.Tensor:" in code
