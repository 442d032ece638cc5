"""0.1.0 and 0.2.0 stay as they were: names, state_dict keys and shapes, summaries and outputs.

``tests/data/v010.pt`` was written by ``tests/data/make_v010.py`` with the 0.1.0 code (a dozen 2-D
models); today's code must build the same keys, load the same values with ``strict=True`` and give the
same outputs.

``tests/data/v020.pt`` and ``tests/data/v020_saved/`` were written by ``tests/data/make_v020.py``, run
with the 0.2.0 code (commit ec9c16083c6ee86d7ed99334555180d3b1f408e7) and ``make_v010``'s fill rule.
They pin, the same way, 18 models of 0.2.0: ResNets, U-Nets, AEs, encoder and decoder networks in 1-D
and 3-D, two MDNC presets, U-Nets on a blocks encoder and 2-D U-Nets with options new in 0.2.0
(``decoder_channels``, ``upsample``, group norm); and two folders written by ``save_pretrained`` (a
3-D U-Net, a 1-D U-Net whose encoder is a blocks network, written as a nested config) that
``blocks.from_pretrained`` must load as the same class with the same outputs; and 0.2.0's public
names (``blocks.__all__``) stay exported. These tests use the
public API only: ``blocks.<Name>``, expressions evaluated in ``vars(blocks)``, ``from_pretrained``.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import pytest
import torch

import blocks

# Small models: one thread is as fast, and immune to a busy second core (2 threads then took 2-4x as long).
pytestmark = pytest.mark.usefixtures("one_thread")

DATA = Path(__file__).parent / "data"
_spec = importlib.util.spec_from_file_location("make_v010", DATA / "make_v010.py")
make_v010 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_v010)
PINNED = torch.load(DATA / "v010.pt", weights_only=False)
_spec = importlib.util.spec_from_file_location("make_v020", DATA / "make_v020.py")
make_v020 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_v020)
PINNED_V020 = torch.load(DATA / "v020.pt", weights_only=False)
V020_MODELS = PINNED_V020["models"]
V020_SAVED = PINNED_V020["saved"]

V010_NAMES = [
    "BlockBottleneck2d", "BlockPlain2d", "ConvModern2d", "ResNet", "UNet2d", "Upsample", "register_activator",
    "register_normalizer", "from_torchvision", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "summary",
]


def test_every_v010_name_is_still_exported():
    assert set(V010_NAMES) <= set(blocks.__all__)
    assert all(hasattr(blocks, name) for name in V010_NAMES)


def test_the_data_covers_every_model_of_the_script():
    assert list(PINNED) == list(make_v010.MODELS)


@pytest.mark.parametrize("name", list(make_v010.MODELS))
def test_v010_model_is_unchanged(name):
    pinned = PINNED[name]
    model = eval(pinned["expression"], vars(blocks))
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == pinned["shapes"]
    assert list(model.state_dict()) == list(pinned["shapes"])  # the same order too
    assert sum(p.numel() for p in model.parameters()) == pinned["parameters"]
    model.load_state_dict(make_v010.filled_state(model), strict=True)
    model.eval()
    with torch.no_grad():
        output = model(make_v010.model_input(name, pinned["input_shape"]))
    expected = pinned["output"]
    assert output.shape == expected.shape
    scale = expected.abs().max().item()
    assert 0.5 < scale < 100  # the fill rule keeps outputs of order one
    assert (output - expected).abs().max().item() <= 1e-5 * scale


@pytest.mark.parametrize("name", list(make_v010.MODELS))
def test_v010_summary_is_unchanged(name, capsys):
    pinned = PINNED[name]
    model = eval(pinned["expression"], vars(blocks))
    shape = pinned["input_shape"]
    assert blocks.summary(model, shape[1:], batch_size=shape[0]) == pinned["summary"]


def assert_close_to_pinned(output, expected):
    """The v010 rule: same shape, outputs of order one, equal within 1e-5 of the largest."""
    assert output.shape == expected.shape
    scale = expected.abs().max().item()
    assert 0.5 < scale < 100  # the fill rule keeps outputs of order one
    assert (output - expected).abs().max().item() <= 1e-5 * scale


def test_every_v020_name_is_still_exported():
    assert set(PINNED_V020["names"]) <= set(blocks.__all__)
    assert all(hasattr(blocks, name) for name in PINNED_V020["names"])


@functools.cache
def v020_model(name):
    """The pinned model ``name`` built once by today's code from its expression.

    Its keys, shapes, parameter count and summary do not depend on its weights or mode, so the output
    test may load the filled weights into it and switch it to eval mode.
    """
    return eval(V020_MODELS[name]["expression"], vars(blocks))


@pytest.fixture(scope="module", autouse=True)
def v020_models_forgotten_at_the_end():
    """Let the models `v020_model` keeps (a 3-D ResNet-18 is 130 MB) go when the module is done."""
    yield
    v020_model.cache_clear()


def test_the_v020_data_covers_every_model_and_folder_of_the_script():
    assert PINNED_V020["version"] == "0.2.0"
    assert list(V020_MODELS) == list(make_v020.MODELS)
    assert list(V020_SAVED) == list(make_v020.SAVED)
    for pinned, script in ((V020_MODELS, make_v020.MODELS), (V020_SAVED, make_v020.SAVED)):
        assert {name: (entry["expression"], entry["input_shape"]) for name, entry in pinned.items()} == script
    assert sorted(path.name for path in (DATA / "v020_saved").iterdir()) == sorted(make_v020.SAVED)


@pytest.mark.parametrize("name", list(make_v020.MODELS))
def test_v020_state_dict_keys_and_order_are_unchanged(name):
    assert list(v020_model(name).state_dict()) == list(V020_MODELS[name]["shapes"])


@pytest.mark.parametrize("name", list(make_v020.MODELS))
def test_v020_shapes_and_parameter_counts_are_unchanged(name):
    model = v020_model(name)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == V020_MODELS[name]["shapes"]
    assert sum(p.numel() for p in model.parameters()) == V020_MODELS[name]["parameters"]


@pytest.mark.parametrize("name", list(make_v020.MODELS))
def test_v020_outputs_are_unchanged(name):
    pinned = V020_MODELS[name]
    model = v020_model(name)
    model.load_state_dict(make_v010.filled_state(model), strict=True)
    model.eval()
    with torch.no_grad():
        output = model(make_v010.model_input(name, pinned["input_shape"]))
    assert_close_to_pinned(output, pinned["output"])


@pytest.mark.parametrize("name", list(make_v020.MODELS))
def test_v020_summary_is_unchanged(name, capsys):
    pinned = V020_MODELS[name]
    shape = pinned["input_shape"]
    assert blocks.summary(v020_model(name), shape[1:], batch_size=shape[0]) == pinned["summary"]


@pytest.mark.parametrize("name", list(make_v020.SAVED))
def test_v020_saved_folder_loads_with_the_same_class_and_outputs(name):
    pinned = V020_SAVED[name]
    model = blocks.from_pretrained(DATA / "v020_saved" / name)
    assert type(model).__name__ == pinned["class"]
    assert not model.training  # from_pretrained returns the model in eval mode
    with torch.no_grad():
        output = model(make_v020.saved_input(name, pinned["input_shape"]))
    assert_close_to_pinned(output, pinned["output"])
