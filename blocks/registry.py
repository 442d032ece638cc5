"""Models by name, in timm's vocabulary: `create_model`, `list_models`, `register_model`.

The one list of models of the project: the command line, the docs' model tables and the
registry-driven tests all read it. Each entry carries its builder, its default keywords and a
default input per dimension (without the batch). Names: the ResNets (``resnet18`` ...
``resnet152``), the networks per dimension (``unet1d`` ... ``decodernet3d``) and MDNC's presets
(``unet16`` ... ``decnet63``); every name but the per-dimension ones takes ``ndim=``. The command
line's demos (``conv``, ``plain``, ``bottleneck``, ``unet``) are its own, not registered.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .checks import check_ndim, named_class
from .networks import DecoderNet, EncoderNet
from .presets import PRESETS, preset
from .resnet import ARCHS, ResNet
from .unet import AE, UNet

__all__ = ["ModelEntry", "create_model", "list_models", "model_entry", "register_model"]


@dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    Attributes:
        name: The registered name.
        build: ``build(**kwargs)`` returns the model; it takes ``ndim=`` unless ``ndims`` has one entry.
        input_sizes: The default input (channels and sizes, without the batch) per dimension.
        defaults: Keywords the registry passes unless the caller gives them (per dimension: a
            callable ``ndim -> dict``).
        description: One line for ``python -m blocks list`` and the docs, or one per dimension;
            ``{ndim}`` stands for the dimension.
    """

    name: str
    build: Callable[..., nn.Module]
    input_sizes: Mapping[int, tuple[int, ...]]
    defaults: Callable[[int], dict[str, Any]] = field(default=lambda ndim: {})
    description: str | Mapping[int, str] = ""

    @property
    def ndims(self) -> tuple[int, ...]:
        """The dimensions this model exists in."""
        return tuple(sorted(self.input_sizes))

    def input_size(self, ndim: int | None = None) -> tuple[int, ...]:
        """The default input of one sample in ``ndim`` dimensions (the entry's only one, or 2, by default)."""
        return self.input_sizes[self._ndim(ndim)]

    def _ndim(self, ndim: int | None) -> int:
        """``ndim``, or the default: 2 where the model has it, else its only dimension."""
        if ndim is None:
            return 2 if 2 in self.input_sizes else self.ndims[0]
        if check_ndim(ndim) not in self.input_sizes:
            twin = f"{self.name[:-2]}{ndim}d" if self.name.endswith(f"{self.ndims[0]}d") else None
            hint = f" (use {twin!r})" if twin in _MODELS else ""
            raise ValueError(f"{self.name} is {self.ndims[0]}-D only; got ndim={ndim}{hint}")
        return ndim

    def describe(self, ndim: int | None = None) -> str:
        """The description in ``ndim`` dimensions."""
        ndim = self._ndim(ndim)
        text = self.description[ndim] if isinstance(self.description, Mapping) else self.description
        return text.replace("{ndim}", str(ndim))

    def create(self, **kwargs: Any) -> nn.Module:
        """Build the model with the entry's defaults under ``kwargs``."""
        ndim = self._ndim(kwargs.pop("ndim", None))
        dimension = {"ndim": ndim} if len(self.input_sizes) > 1 else {}
        return self.build(**{**self.defaults(ndim), **kwargs, **dimension})


_MODELS: dict[str, ModelEntry] = {}


def register_model(
    name: str | None = None,
    *,
    input_sizes: Mapping[int, tuple[int, ...]],
    defaults: Callable[[int], dict[str, Any]] | None = None,
    description: str | Mapping[int, str] = "",
    replace: bool = False,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register a builder under ``name`` (its ``__name__`` by default), timm's way.

    A name already taken is refused (torchvision's registry refuses it too; timm's only warns), so a
    model cannot silently replace another; ``replace=True`` replaces it, keeping its place in
    `list_models`.

    Args:
        name: The name; by default the builder's ``__name__``.
        input_sizes: The default input without the batch, per dimension the builder supports.
        defaults: ``ndim -> keywords`` the registry passes unless the caller gives them.
        description: One line for listings (or one per dimension; ``{ndim}`` stands for the dimension).
        replace: Replace the entry already registered under the name; without it, a taken name
            is a ``ValueError``.

    Returns:
        The decorator; it returns the builder unchanged.

    Raises:
        ValueError: If ``replace`` is not a bool, or (when the decorator is applied) if the name is
            already registered and ``replace`` is False; the registry is then left unchanged.

    Examples:
        >>> import blocks
        >>> @blocks.register_model("tiny_unet", input_sizes={2: (1, 32, 32)})
        ... def tiny_unet(**kwargs):
        ...     return blocks.UNet(channels=(4, 8), layers=1, **kwargs)
        >>> type(blocks.create_model("tiny_unet")).__name__
        'UNet'
        >>> blocks.register_model("tiny_unet", input_sizes={2: (1, 64, 64)})(tiny_unet)
        Traceback (most recent call last):
        ...
        ValueError: register_model got name='tiny_unet', which is already registered; pass replace=True to replace it
        >>> blocks.register_model("tiny_unet", input_sizes={2: (1, 64, 64)}, replace=True)(tiny_unet) is tiny_unet
        True
    """

    if not isinstance(replace, bool):
        raise ValueError(f"register_model got replace={replace!r}; it must be True or False")

    def decorate(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or build.__name__
        if key in _MODELS and not replace:
            raise ValueError(
                f"register_model got name={key!r}, which is already registered; pass replace=True to replace it"
            )
        first_doc = (build.__doc__ or "").strip().split("\n")[0]
        _MODELS[key] = ModelEntry(key, build, dict(input_sizes), defaults or (lambda ndim: {}),
                                  description or first_doc)
        return build

    return decorate


def model_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``.

    Raises:
        ValueError: For an unknown name, with the closest registered names; a network's generic
            name (``unet``, ``AE``) suggests its 2-D name (``unet2d``, ``ae2d``) first.
    """
    if name not in _MODELS:
        close = difflib.get_close_matches(name, list(_MODELS), n=3, cutoff=0.5)
        two_d = f"{name.lower()}2d"
        if two_d in _MODELS:
            close = [two_d, *(other for other in close if other != two_d)][:3]
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown model {name!r}{hint} (list_models() names all {len(_MODELS)})")
    return _MODELS[name]


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model by name, as ``timm.create_model``: ``create_model('resnet18', ndim=3)``.

    Args:
        name: A name of `list_models`.
        **kwargs: Keyword arguments of the model (and ``ndim=`` for the names that take it).

    Returns:
        The model.

    Raises:
        ValueError: For an unknown name (with the closest names) or a bad argument.

    Examples:
        >>> type(create_model("unet3d", channels=(4, 8), layers=1)).__name__
        'UNet3d'
        >>> create_model("unet3")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: unknown model 'unet3'; did you mean 'unet83', 'unet3d', 'unet32'? ...
    """
    return model_entry(name).create(**kwargs)


def list_models(filter: str = "*") -> list[str]:  # noqa: A002 - timm's keyword
    """The registered names matching the shell pattern ``filter`` (timm's keyword), in registration order.

    Examples:
        >>> list_models("resnet*")
        ['resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152']
    """
    return [name for name in _MODELS if fnmatch.fnmatchcase(name, filter)]


# ----------------------------------------------------------------------------------------- entries


def _per_ndim(one: tuple[int, ...], two: tuple[int, ...], three: tuple[int, ...]) -> dict[int, tuple[int, ...]]:
    """A default input per dimension."""
    return {1: one, 2: two, 3: three}


for _arch, (_layers, _block) in ARCHS.items():
    register_model(_arch, input_sizes=_per_ndim((3, 4096), (3, 224, 224), (3, 16, 112, 112)),
                   description={ndim: f"ResNet{tuple(_layers)}, {_block} blocks" + ("" if ndim == 2 else f", ndim={ndim}")
                                for ndim in (1, 2, 3)})(
        lambda ndim, _layers=_layers, _block=_block, **kw: ResNet(_layers, _block, ndim=ndim, **kw))

_NETWORK_INPUTS = {
    UNet: _per_ndim((1, 4096), (1, 256, 256), (1, 64, 64, 64)),
    AE: _per_ndim((1, 4096), (1, 256, 256), (1, 64, 64, 64)),
    EncoderNet: _per_ndim((1, 4096), (1, 256, 256), (1, 64, 64, 64)),
    DecoderNet: _per_ndim((2,), (2,), (2,)),
}
_OUT_SIZES = {1: (4096,), 2: (256, 256), 3: (64, 64, 64)}
"""The default ``out_size`` of a registered DecoderNet per dimension (the others' default input sizes)."""


def _network_defaults(network: type) -> Callable[[int], dict[str, Any]]:
    """A DecoderNet needs an ``out_size``; the other networks need nothing."""
    return (lambda ndim: {"out_size": _OUT_SIZES[ndim]}) if network is DecoderNet else (lambda ndim: {})


for _network, _inputs in _NETWORK_INPUTS.items():
    for _ndim in (1, 2, 3):
        _cls = named_class(_network, _ndim)
        register_model(_cls.__name__.lower(), input_sizes={_ndim: _inputs[_ndim]},
                       defaults=_network_defaults(_network), description=f"{_cls.__name__} with its defaults")(_cls)

for _name, _preset in PRESETS.items():
    register_model(_name, input_sizes=_NETWORK_INPUTS[_preset.network], defaults=_network_defaults(_preset.network),
                   description=(preset(_name).__doc__ or "").split("\n")[0])(preset(_name))
