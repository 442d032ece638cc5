"""Configuration recorded on the classes users build, and their ``save_pretrained``.

``model.save_pretrained(folder)`` writes ``config.json`` (the constructor's arguments, and
``blocks_class``, the public class) and ``model.safetensors`` (the weights): the layout of
huggingface_hub's ``PyTorchModelHubMixin``. `blocks.hub.from_pretrained` rebuilds the same class
with the same arguments and loads the weights strictly, offline, with the core install.

Recording is explicit: the public classes (units, blocks, networks) decorate their own
``__init__`` with `records_config`, which keeps the arguments of the outermost call. Only the
classes in `SAVABLE` can be written: blocks' own are listed in one table (`blocks.hub`); a user's
subclass joins with `register_savable`. An argument that JSON cannot hold (a callable normalizer,
an outside encoder) is refused at save time, naming it; a blocks network given as an argument (a
blocks ResNet as a U-Net's encoder) is written as a nested config.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from .checks import check_keywords

__all__ = [
    "CLASS_KEY", "CONFIG_NAME", "SAVABLE", "WEIGHTS_NAME", "Configurable", "forget_config", "recorded_config",
    "records_config", "register_savable", "update_config",
]

CONFIG_NAME = "config.json"
"""The file of the constructor's arguments (huggingface_hub's name)."""

WEIGHTS_NAME = "model.safetensors"
"""The file of the weights (huggingface_hub's name)."""

CLASS_KEY = "blocks_class"
"""The key of ``config.json`` that names the public class (``UNet2d``)."""

SAVABLE: dict[str, type] = {}
"""The classes ``save_pretrained`` writes and ``from_pretrained`` rebuilds, by the name ``config.json`` holds.

Filled by `register_savable`: blocks' own classes from the table `blocks.hub.SAVABLE_CLASSES`."""

Init = TypeVar("Init", bound=Callable[..., None])
Model = TypeVar("Model", bound="Configurable")


def register_savable(cls: type, *, replace: bool = False) -> type:
    """Let ``save_pretrained`` write ``cls`` and ``from_pretrained`` rebuild it, under its class name.

    A user's subclass of a blocks network is savable once registered, if its own ``__init__`` is
    decorated with `records_config` (else the recorded arguments are its parent's, which do not
    rebuild it). Usable as a class decorator.

    Args:
        cls: A class with `Configurable` among its bases.
        replace: Replace another class registered under the same name.

    Returns:
        ``cls``.

    Raises:
        ValueError: If ``cls`` is not `Configurable`, or its name is taken by another class.

    Examples:
        >>> import blocks
        >>> from blocks.configurable import register_savable, records_config
        >>> @register_savable
        ... class Tiny(blocks.UNet2d):
        ...     @records_config
        ...     def __init__(self, width: int = 4) -> None:
        ...         super().__init__(channels=(width, 2 * width), layers=1)
        >>> Tiny(width=2).config
        {'blocks_class': 'Tiny', 'width': 2}
    """
    if not (isinstance(cls, type) and issubclass(cls, Configurable)):
        raise ValueError(f"register_savable takes a subclass of a blocks class, got {cls!r}")
    taken = SAVABLE.get(cls.__name__)
    if taken is not None and taken is not cls and not replace:
        raise ValueError(
            f"register_savable: the name {cls.__name__!r} is taken by {taken.__module__}.{taken.__qualname__}; "
            "rename the class or pass replace=True"
        )
    SAVABLE[cls.__name__] = cls
    return cls


def records_config(init: Init) -> Init:
    """Decorator of a public class's ``__init__``: keep the arguments it was called with, as given.

    The outermost decorated ``__init__`` of a call wins (a subclass's over its parent's, since it
    returns last). A keyword the ``__init__`` does not take raises a TypeError that suggests the
    closest argument names (`blocks.checks.check_keywords`), for every public class at once.

    Examples:
        >>> import blocks
        >>> blocks.BlockPlain2d(4, 8, stride=2).config
        {'blocks_class': 'BlockPlain2d', 'in_planes': 4, 'out_planes': 8, 'stride': 2}
    """
    signature = inspect.signature(init)

    @functools.wraps(init)
    def recording_init(self: Any, *args: Any, **kwargs: Any) -> None:
        check_keywords(type(self).__name__, signature, kwargs)
        init(self, *args, **kwargs)
        arguments = signature.bind(self, *args, **kwargs).arguments
        self.__dict__["_config"] = {name: value for name, value in list(arguments.items())[1:]}

    return recording_init  # type: ignore[return-value]


class Configurable:
    """Mixin: the ``config`` recorded by `records_config`, and ``save_pretrained``."""

    @property
    def config(self) -> dict[str, Any]:
        """The arguments this model was built with (only those given), as written to ``config.json``.

        Raises:
            ValueError: If the class is not savable (a subclass not registered with
                `register_savable`), an argument cannot be written (see `save_pretrained`), or the
                model was changed after construction in a way its arguments do not say (pruned).
        """
        name = type(self).__name__
        if SAVABLE.get(name) is not type(self):
            raise ValueError(
                f"{name} is not a class save_pretrained can write (a subclass of a blocks class); register it "
                "with blocks.configurable.register_savable (and decorate its own __init__, if it has one, with "
                "records_config), or save its state_dict with torch.save"
            )
        return recorded_config(self)

    @classmethod
    def from_pretrained(
        cls: type[Model],
        pretrained_model_name_or_path: str | os.PathLike,
        *,
        map_location: str | torch.device = "cpu",
        strict: bool = True,
        **model_kwargs: Any,
    ) -> Model:
        """Rebuild a model that ``save_pretrained`` wrote, if it is this class or a subclass (an `AE` is a `UNet`).

        `blocks.from_pretrained` without the class check; huggingface_hub's mixin's keywords that make
        sense offline (the folder's name, ``strict``, ``model_kwargs``), plus ``map_location``.
        Downloading from the Hub (``revision``, ``token``, ...) needs huggingface_hub's mixin: a subclass
        that also has ``PyTorchModelHubMixin`` among its bases gets the mixin's loader here.

        Args:
            pretrained_model_name_or_path: The folder with ``config.json`` and ``model.safetensors``.
            map_location: Where the weights go.
            strict: Refuse weights with missing or unexpected keys.
            **model_kwargs: Constructor arguments that replace the saved ones.

        Returns:
            The model, in eval mode.

        Raises:
            ValueError: If the folder holds another class (naming it and the call that loads it), lacks a
                file, or its weights do not fit.

        Examples:
            >>> import tempfile, blocks
            >>> folder = blocks.AE2d(channels=(4, 8), layers=1).save_pretrained(tempfile.mkdtemp())
            >>> type(blocks.UNet.from_pretrained(folder)).__name__
            'AE2d'
            >>> blocks.ResNet.from_pretrained(folder)  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            ValueError: ResNet.from_pretrained: ... holds a model of class AE2d, which is not ResNet or a subclass ...
        """
        mixin = getattr(super(Configurable, cls), "from_pretrained", None)
        if mixin is not None:  # a subclass that also has huggingface_hub's mixin: its loader, which downloads too
            return mixin(pretrained_model_name_or_path, map_location=map_location, strict=strict, **model_kwargs)
        from .hub import load_pretrained  # the table of savable classes sits above this file

        return load_pretrained(pretrained_model_name_or_path, map_location, strict=strict, expected=cls,
                               **model_kwargs)

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write ``config.json`` (the constructor's arguments) and ``model.safetensors`` (the weights).

        Args:
            save_directory: The folder; made if missing.

        Returns:
            The folder.

        Raises:
            ValueError: If the class is not savable or an argument cannot be written to JSON (a
                callable normalizer or activator, an outside encoder), naming it and what to do instead.

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


def recorded_config(model: Configurable) -> dict[str, Any]:
    """``model``'s recorded arguments as JSON values, after ``blocks_class`` (its class name), savable or not.

    Raises:
        ValueError: If an argument cannot be written, or the model no longer matches its arguments.
    """
    name = type(model).__name__
    recorded = model.__dict__.get("_config")
    if recorded is None:
        raise ValueError(
            f"{name} was changed after it was built ({model.__dict__.get('_config_lost', 'unknown')}); "
            "its arguments no longer describe it: save its state_dict with torch.save instead"
        )
    return {CLASS_KEY: name, **{key: _encode(name, key, value) for key, value in recorded.items()}}


def update_config(model: nn.Module, **arguments: Any) -> None:
    """Record that ``model`` now matches these constructor arguments (after ``reset_classifier``, say)."""
    recorded = model.__dict__.get("_config")
    if recorded is not None:
        recorded.update(arguments)


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

