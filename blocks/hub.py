"""Models saved with their arguments: the table of savable classes, `build_from_config` and `from_pretrained`.

``model.save_pretrained(folder)`` (`blocks.configurable.Configurable`) writes ``config.json`` and
``model.safetensors``; `from_pretrained` rebuilds the class ``config.json`` names, from the
explicit table `SAVABLE_CLASSES`, with the same arguments, and loads the weights strictly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .configurable import CLASS_KEY, CONFIG_NAME, SAVABLE, WEIGHTS_NAME, Configurable, register_savable
from .conv import ConvModern, ConvModern1d, ConvModern2d, ConvModern3d
from .networks import (
    DecoderNet, DecoderNet1d, DecoderNet2d, DecoderNet3d, EncoderNet, EncoderNet1d, EncoderNet2d, EncoderNet3d,
)
from .residual import (
    BlockBottleneck, BlockBottleneck1d, BlockBottleneck2d, BlockBottleneck3d, BlockPlain, BlockPlain1d, BlockPlain2d,
    BlockPlain3d,
)
from .nnunet import PlainConvUNet, ResidualEncoderUNet
from .resnet import ResNet
from .unet import AE, AE1d, AE2d, AE3d, UNet, UNet1d, UNet2d, UNet3d

__all__ = ["SAVABLE_CLASSES", "build_from_config", "from_pretrained", "load_pretrained"]

SAVABLE_CLASSES: tuple[type, ...] = (
    ConvModern, ConvModern1d, ConvModern2d, ConvModern3d,
    BlockPlain, BlockPlain1d, BlockPlain2d, BlockPlain3d,
    BlockBottleneck, BlockBottleneck1d, BlockBottleneck2d, BlockBottleneck3d,
    ResNet,
    UNet, UNet1d, UNet2d, UNet3d,
    AE, AE1d, AE2d, AE3d,
    EncoderNet, EncoderNet1d, EncoderNet2d, EncoderNet3d,
    DecoderNet, DecoderNet1d, DecoderNet2d, DecoderNet3d,
    PlainConvUNet, ResidualEncoderUNet,
)
"""Every class of blocks that ``save_pretrained`` writes and `from_pretrained` rebuilds (all that 0.2.0 wrote,
and the twins of nnU-Net's networks, whose ``config.json`` holds nnU-Net's arguments)."""

for _cls in SAVABLE_CLASSES:
    register_savable(_cls)


def _decode(value: Any) -> Any:
    """The inverse of writing a config: lists as tuples, nested configs as built models."""
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    if isinstance(value, dict):
        if CLASS_KEY in value:
            return build_from_config(value)
        return {k: _decode(v) for k, v in value.items()}
    return value


def build_from_config(config: Mapping[str, Any]) -> nn.Module:
    """Build the model ``config`` describes (``blocks_class`` and the arguments), with fresh weights.

    Raises:
        ValueError: If the class is not one of blocks' public classes.
    """
    name = config.get(CLASS_KEY)
    cls = SAVABLE.get(str(name))
    if cls is None:
        raise ValueError(f"config names {CLASS_KEY}={name!r}, which is not a class of blocks that can be built")
    return cls(**{key: _decode(value) for key, value in config.items() if key != CLASS_KEY})


def from_pretrained(
    folder: str | os.PathLike, map_location: str | torch.device = "cpu", *, strict: bool = True, **model_kwargs: Any
) -> nn.Module:
    """Rebuild a model saved by ``save_pretrained``: the same class, the same arguments, the same weights.

    Works offline with the core install. The model is returned in eval mode, as huggingface_hub's
    mixin does. Each savable class has the same loader as a class method that also checks the class:
    ``blocks.UNet2d.from_pretrained(folder)``.

    Args:
        folder: The folder with ``config.json`` and ``model.safetensors``.
        map_location: Where the weights go.
        strict: Refuse weights with missing or unexpected keys (huggingface_hub's keyword); with False,
            parameters the file lacks keep their fresh initialisation. Shapes must fit either way.
        **model_kwargs: Constructor arguments that replace the saved ones (huggingface_hub's ``model_kwargs``).

    Returns:
        The model.

    Raises:
        ValueError: If the folder lacks either file, or the weights do not fit the rebuilt model.
    """
    return load_pretrained(folder, map_location, strict=strict, **model_kwargs)


def load_pretrained(
    folder: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    *,
    strict: bool = True,
    expected: type | None = None,
    **model_kwargs: Any,
) -> nn.Module:
    """`from_pretrained`, refusing a saved class that is not ``expected`` or its subclass (the class methods' check).

    Raises:
        ValueError: As `from_pretrained`, and if ``config.json`` names a class that is not ``expected`` or one of its
            subclasses, naming both and the call that loads it.
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    missing = [name for name in (CONFIG_NAME, WEIGHTS_NAME) if not (folder / name).is_file()]
    if missing:
        raise ValueError(f"from_pretrained: {folder} has no {' and no '.join(missing)} (written by save_pretrained)")
    config = json.loads((folder / CONFIG_NAME).read_text())
    saved = SAVABLE.get(str(config.get(CLASS_KEY)))
    if expected is not None and saved is not None and not issubclass(saved, expected):
        raise ValueError(
            f"{expected.__name__}.from_pretrained: {folder} holds a model of class {saved.__name__}, which is not "
            f"{expected.__name__} or a subclass of it; load it with blocks.from_pretrained(folder) or "
            f"{saved.__name__}.from_pretrained(folder)"
        )
    config = {**config, **{key: _encode_override(value) for key, value in model_kwargs.items()}}
    with torch.device("meta" if strict else map_location):
        model = build_from_config(config)
    state = load_file(folder / WEIGHTS_NAME, device=str(map_location))
    expected_shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    problems = [f"missing {key}" for key in expected_shapes if key not in state] if strict else []
    problems += [f"unexpected {key}" for key in state if key not in expected_shapes] if strict else []
    problems += [f"{key} is {tuple(state[key].shape)}, expected {shape}" for key, shape in expected_shapes.items()
                 if key in state and tuple(state[key].shape) != shape]
    if problems:
        raise ValueError(f"from_pretrained: {WEIGHTS_NAME} does not fit the {config.get(CLASS_KEY)} of {CONFIG_NAME}: "
                         f"{'; '.join(problems[:10])}{' ...' if len(problems) > 10 else ''}")
    model.load_state_dict(state, strict=strict, assign=strict)
    return model.eval()


def _encode_override(value: Any) -> Any:
    """A ``model_kwargs`` value as `build_from_config` reads it: a built blocks model as its config, else as given."""
    return value.config if isinstance(value, Configurable) else value
