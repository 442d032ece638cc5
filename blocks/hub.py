"""Save a model with the arguments that built it; load it back without retyping the constructor.

``model.save_pretrained(folder)`` writes ``config.json`` (the constructor's arguments, and
``blocks_class``, the public class) and ``model.safetensors`` (the weights): the layout of
huggingface_hub's ``PyTorchModelHubMixin``. ``blocks.from_pretrained(folder)`` rebuilds the same
class with the same arguments and loads the weights strictly, offline, with the core install.

Every class with `Configurable` records the arguments it was called with (the outermost
constructor only). An argument that JSON cannot hold (a callable normalizer, an outside encoder)
is refused at save time, naming it; a blocks network given as an argument (a blocks ResNet as a
U-Net's encoder) is written as a nested config.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "Configurable", "from_pretrained"]

CONFIG_NAME = "config.json"
"""The file of the constructor's arguments (huggingface_hub's name)."""

WEIGHTS_NAME = "model.safetensors"
"""The file of the weights (huggingface_hub's name)."""

CLASS_KEY = "blocks_class"
"""The key of ``config.json`` that names the public class (``UNet2d``)."""

CLASSES: dict[str, type] = {}
"""Every `Configurable` class by name: what ``blocks_class`` can name (filled as the classes are defined)."""


class Configurable:
    """Mixin: record the arguments of the outermost constructor call; ``save_pretrained``; ``config``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        CLASSES.setdefault(cls.__name__, cls)
        init = cls.__dict__.get("__init__")
        if init is None:
            return

        @functools.wraps(init)
        def recording_init(self: Any, *args: Any, **kw: Any) -> None:
            depth = self.__dict__.get("_init_depth", 0)
            self.__dict__["_init_depth"] = depth + 1
            try:
                init(self, *args, **kw)
            finally:
                self.__dict__["_init_depth"] = depth
            if depth == 0:
                del self.__dict__["_init_depth"]
                bound = inspect.signature(init).bind(self, *args, **kw)
                self.__dict__["_config"] = {k: v for k, v in list(bound.arguments.items())[1:]}

        cls.__init__ = recording_init  # type: ignore[method-assign]

    @property
    def config(self) -> dict[str, Any]:
        """The arguments this model was built with (only those given), as written to ``config.json``.

        Raises:
            ValueError: If an argument cannot be written (see `save_pretrained`) or the model was
                changed after construction in a way its arguments do not say (pruned).
        """
        recorded = self.__dict__.get("_config")
        if recorded is None:
            raise ValueError(
                f"{type(self).__name__} was changed after it was built ({self.__dict__.get('_config_lost', 'unknown')}); "
                "its arguments no longer describe it: save its state_dict with torch.save instead"
            )
        config = {CLASS_KEY: type(self).__name__}
        for name, value in recorded.items():
            config[name] = _encode(type(self).__name__, name, value)
        return config

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write ``config.json`` (the constructor's arguments) and ``model.safetensors`` (the weights).

        Args:
            save_directory: The folder; made if missing.

        Returns:
            The folder.

        Raises:
            ValueError: If an argument cannot be written to JSON (a callable normalizer or activator,
                an outside encoder), naming it and what to do instead.

        Examples:
            >>> import tempfile, torch, blocks
            >>> net = blocks.UNet2d(channels=(4, 8), layers=1)
            >>> folder = net.save_pretrained(tempfile.mkdtemp())
            >>> sorted(p.name for p in folder.iterdir())
            ['config.json', 'model.safetensors']
            >>> again = blocks.from_pretrained(folder)
            >>> x = torch.randn(1, 1, 9, 7)
            >>> torch.equal(again(x), net.eval()(x))
            True
        """
        from safetensors.torch import save_file

        config = self.config
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        state = {key: tensor.detach().contiguous().cpu() for key, tensor in self.state_dict().items()}
        save_file(state, folder / WEIGHTS_NAME, metadata={"format": "pt"})
        (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        return folder


def forget_config(model: nn.Module, why: str) -> None:
    """Mark ``model``'s recorded arguments as no longer describing it (after pruning, say)."""
    model.__dict__["_config"] = None
    model.__dict__["_config_lost"] = why


def _encode(owner: str, name: str, value: Any) -> Any:
    """``value`` as JSON: tuples as lists, a blocks network as its nested config; else a ValueError naming ``name``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [_encode(owner, name, v) for v in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: _encode(owner, name, v) for k, v in value.items()}
    if isinstance(value, Configurable):
        return value.config
    if isinstance(value, nn.Module):
        raise ValueError(
            f"{owner}: {name}={type(value).__name__} is not a blocks network, so config.json cannot rebuild it; "
            "build the model from blocks' own networks to use save_pretrained, or save its state_dict with torch.save"
        )
    raise ValueError(
        f"{owner}: {name}={value!r} cannot be written to config.json; pass a registered name instead (for a "
        "normalizer or activator: blocks.register_normalizer / register_activator, then the name), "
        "or save the state_dict with torch.save"
    )


def _decode(value: Any) -> Any:
    """The inverse of `_encode`: lists as tuples, nested configs as built models."""
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
    cls = CLASSES.get(str(name))
    if cls is None:
        raise ValueError(f"config names {CLASS_KEY}={name!r}, which is not a class of blocks that can be built")
    return cls(**{key: _decode(value) for key, value in config.items() if key != CLASS_KEY})


def from_pretrained(folder: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model saved by ``save_pretrained``: the same class, the same arguments, the same weights.

    Works offline with the core install. The model is returned in eval mode, as huggingface_hub's
    mixin does.

    Args:
        folder: The folder with ``config.json`` and ``model.safetensors``.
        map_location: Where the weights go.

    Returns:
        The model.

    Raises:
        ValueError: If the folder lacks either file, or the weights do not fit the rebuilt model.
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    missing = [name for name in (CONFIG_NAME, WEIGHTS_NAME) if not (folder / name).is_file()]
    if missing:
        raise ValueError(f"from_pretrained: {folder} has no {' and no '.join(missing)} (written by save_pretrained)")
    config = json.loads((folder / CONFIG_NAME).read_text())
    with torch.device("meta"):
        model = build_from_config(config)
    state = load_file(folder / WEIGHTS_NAME, device=str(map_location))
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    problems = [f"missing {key}" for key in expected if key not in state]
    problems += [f"unexpected {key}" for key in state if key not in expected]
    problems += [f"{key} is {tuple(state[key].shape)}, expected {shape}" for key, shape in expected.items()
                 if key in state and tuple(state[key].shape) != shape]
    if problems:
        raise ValueError(f"from_pretrained: {WEIGHTS_NAME} does not fit the {config.get(CLASS_KEY)} of {CONFIG_NAME}: "
                         f"{'; '.join(problems[:10])}{' ...' if len(problems) > 10 else ''}")
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()
