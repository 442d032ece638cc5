"""0.1.0 stays as it was: names, state_dict keys and shapes, summaries and outputs of a dozen 2-D models.

``tests/data/v010.pt`` was written by ``tests/data/make_v010.py`` with the 0.1.0 code; today's code
must build the same keys, load the same values with ``strict=True`` and give the same outputs.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import blocks

DATA = Path(__file__).parent / "data"
_spec = importlib.util.spec_from_file_location("make_v010", DATA / "make_v010.py")
make_v010 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_v010)
PINNED = torch.load(DATA / "v010.pt", weights_only=False)

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
