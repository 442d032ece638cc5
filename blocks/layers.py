"""Normalizer and activator registries.

Every block takes a ``normalizer`` and an ``activator``. Both are resolved here, and only here, from
one of these forms:

* a registered name, e.g. ``'batch'`` or ``'prelu'`` (``None`` is the same as ``'null'``);
* a ``(name, kwargs)`` pair, e.g. ``('group', {'num_groups': 8})``;
* a callable ``f(channels) -> nn.Module``, e.g. the class ``nn.BatchNorm2d``.

The built-in names build the layer of the block's dimension (``'batch'`` is ``nn.BatchNorm1d``,
``nn.BatchNorm2d`` or ``nn.BatchNorm3d``). A callable or registered factory that needs the dimension
declares a parameter named ``ndim``: it is then called as ``f(channels, ndim=ndim, **kwargs)``
(``lambda c, ndim: nn.BatchNorm3d(c) if ndim == 3 else nn.GroupNorm(1, c)``); others are called
as ``f(channels, **kwargs)``.

``register_normalizer`` and ``register_activator`` add names to the registries.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, Union

from torch import nn

from .checks import is_int

__all__ = [
    "LayerSpec",
    "NORMALIZERS",
    "ACTIVATORS",
    "register_normalizer",
    "register_activator",
    "make_normalizer",
    "make_activator",
    "make_dropout",
    "DropoutSpec",
    "check_layer_spec",
    "in_place",
    "is_null",
    "returns_new_tensor",
    "torch_layer",
]

LayerFactory = Callable[..., nn.Module]
"""A factory ``f(channels, **kwargs) -> nn.Module``."""

def torch_layer(kind: str, ndim: int) -> type[nn.Module]:
    """The ``torch.nn`` class of ``kind`` for ``ndim`` spatial dimensions: ``torch_layer('Conv', 3)`` is ``nn.Conv3d``.

    The one place where a dimension becomes a class; ``kind`` is ``'Conv'``, ``'BatchNorm'``,
    ``'InstanceNorm'``, ``'MaxPool'`` or ``'AdaptiveAvgPool'``.

    Examples:
        >>> torch_layer("InstanceNorm", 1).__name__
        'InstanceNorm1d'
    """
    return getattr(nn, f"{kind}{ndim}d")


def _layer_ndim(layer: nn.Module) -> int | None:
    """The spatial dimensions a ``torch.nn`` layer is made for (``nn.BatchNorm3d`` -> 3); None for any.

    Read from torch's own class names (``...1d``, ``...2d``, ``...3d``); other layers return None.

    Examples:
        >>> from torch import nn
        >>> _layer_ndim(nn.BatchNorm3d(4)), _layer_ndim(nn.ReLU()), _layer_ndim(nn.GroupNorm(2, 4))
        (3, None, None)
    """
    for cls in type(layer).__mro__:
        if cls.__module__.startswith("torch.nn.") and cls.__name__[-2:] in ("1d", "2d", "3d"):
            return int(cls.__name__[-2])
    return None


LayerSpec = Union[None, str, tuple[str, Mapping[str, Any]], Callable[[int], nn.Module]]
"""What ``normalizer=`` and ``activator=`` accept: a name, a ``(name, kwargs)`` pair, a callable or None."""


def _group_norm(channels: int, num_groups: int | None = None, **kwargs: Any) -> nn.Module:
    """GroupNorm with ``min(num_groups, channels)`` groups; by default the most groups (up to 32) dividing ``channels``.

    Raises:
        ValueError: If a given ``num_groups`` is not a positive int or ``min(num_groups, channels)``
            does not divide ``channels``.
    """
    if num_groups is None:
        groups = max(g for g in range(1, min(32, channels) + 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels, **kwargs)
    if not is_int(num_groups) or num_groups < 1:
        raise ValueError(f"normalizer 'group' got num_groups={num_groups!r}; it must be a positive int")
    groups = min(num_groups, channels)
    if channels % groups:
        divisors = [g for g in range(1, groups + 1) if channels % g == 0]
        raise ValueError(
            f"normalizer 'group' with num_groups={num_groups} cannot split channels={channels} into equal groups; "
            f"use a num_groups that divides {channels}, e.g. one of {divisors}"
        )
    return nn.GroupNorm(groups, channels, **kwargs)


NORMALIZERS: dict[str, LayerFactory | None] = {
    "batch": lambda channels, ndim, **kw: torch_layer("BatchNorm", ndim)(channels, **kw),
    "inst": lambda channels, ndim, **kw: torch_layer("InstanceNorm", ndim)(channels, **kw),
    "pinst": lambda channels, ndim, **kw: torch_layer("InstanceNorm", ndim)(channels, **{"affine": True, **kw}),
    "group": _group_norm,
    "layer": lambda channels, **kw: nn.GroupNorm(1, channels, **kw),
    "null": None,
}
"""Registered normalizers: name -> factory ``f(channels, [ndim,] **kwargs)``; ``None`` means no layer."""

NORMALIZER_DOCS: dict[str, str] = {
    "batch": "`nn.BatchNorm1d/2d/3d(channels)`, by the block's dimension",
    "inst": "`nn.InstanceNorm1d/2d/3d(channels)` (no affine parameters)",
    "pinst": "`nn.InstanceNorm1d/2d/3d(channels, affine=True)`",
    "group": "`nn.GroupNorm(groups, channels)`: `groups = min(num_groups, channels)` for a given `num_groups` "
    "(which must divide `channels`), else the largest divisor of `channels` up to 32",
    "layer": "`nn.GroupNorm(1, channels)`",
    "null": "no normalization (the conv gets a bias); `None` is the same",
}

ACTIVATORS: dict[str, LayerFactory | None] = {
    "relu": lambda channels, **kw: nn.ReLU(**kw),
    "prelu": lambda channels, **kw: nn.PReLU(**{"num_parameters": channels, **kw}),
    "leaky": lambda channels, **kw: nn.LeakyReLU(**kw),
    "gelu": lambda channels, **kw: nn.GELU(**kw),
    "silu": lambda channels, **kw: nn.SiLU(**kw),
    "elu": lambda channels, **kw: nn.ELU(**kw),
    "null": None,
}
"""Registered activators: name -> factory ``f(channels, **kwargs)``; ``None`` means no layer."""

ACTIVATOR_DOCS: dict[str, str] = {
    "relu": "`nn.ReLU()`",
    "prelu": "`nn.PReLU(num_parameters=channels)`: one slope per channel",
    "leaky": "`nn.LeakyReLU()` (slope 0.01)",
    "gelu": "`nn.GELU()`",
    "silu": "`nn.SiLU()`",
    "elu": "`nn.ELU()`",
    "null": "no activation; `None` is the same",
}


def _register(registry: dict[str, LayerFactory | None], kind: str, name: str, factory: LayerFactory) -> None:
    """Add ``name -> factory`` to ``registry`` after checking both."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{kind} name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise ValueError(f"{kind} factory for {name!r} must be callable f(channels) -> nn.Module, got {factory!r}")
    registry[name] = factory


def register_normalizer(name: str, factory: LayerFactory) -> None:
    """Register a normalizer name, usable as ``normalizer=name`` in every block.

    Args:
        name: The new name; an existing name is replaced.
        factory: ``f(channels, **kwargs) -> nn.Module``, called with the number of channels to normalize;
            a factory that declares a parameter ``ndim`` also gets the block's dimension.

    Examples:
        >>> from torch import nn
        >>> import blocks
        >>> blocks.register_normalizer("batch0", lambda c, **kw: nn.BatchNorm2d(c, momentum=0.0, **kw))
        >>> blocks.ConvModern2d(8, 16, normalizer="batch0").norm.momentum
        0.0
    """
    _register(NORMALIZERS, "normalizer", name, factory)


def register_activator(name: str, factory: LayerFactory) -> None:
    """Register an activator name, usable as ``activator=name`` in every block.

    Args:
        name: The new name; an existing name is replaced.
        factory: ``f(channels, **kwargs) -> nn.Module``, called with the number of channels it acts on;
            a factory that declares a parameter ``ndim`` also gets the block's dimension.

    Examples:
        >>> from torch import nn
        >>> import blocks
        >>> blocks.register_activator("tanh", lambda c, **kw: nn.Tanh())
        >>> blocks.ConvModern2d(8, 16, activator="tanh").act
        Tanh()
    """
    _register(ACTIVATORS, "activator", name, factory)


def _split(spec: LayerSpec, kind: str, registry: Mapping[str, LayerFactory | None]) -> tuple[LayerFactory | None, dict]:
    """Resolve ``spec`` into a factory (None for no layer) and its keyword arguments."""
    if spec is None:
        return None, {}
    kwargs: dict[str, Any] = {}
    if isinstance(spec, list) and len(spec) == 2 and isinstance(spec[0], str) and isinstance(spec[1], Mapping):
        spec = tuple(spec)  # a pair read back from JSON (huggingface_hub's mixin passes config.json's lists)
    if isinstance(spec, tuple):
        if len(spec) != 2 or not isinstance(spec[0], str) or not isinstance(spec[1], Mapping):
            raise ValueError(f"{kind} pair must be (name, kwargs) with a str name and a dict, got {spec!r}")
        spec, kwargs = spec[0], dict(spec[1])
    if isinstance(spec, nn.Module):  # callable too, but calling a layer with the channel count fails obscurely
        raise TypeError(
            f"{kind}={spec!r} is a layer instance; pass a name, its class (e.g. nn.{type(spec).__name__}) "
            "or a factory f(channels) -> nn.Module, so that each block gets its own layer"
        )
    if isinstance(spec, str):
        if spec not in registry:
            raise ValueError(f"{kind}={spec!r} is not a registered {kind}; valid names: {sorted(registry)}")
        return registry[spec], kwargs
    if callable(spec):
        return spec, kwargs
    raise ValueError(
        f"{kind}={spec!r} must be a name in {sorted(registry)}, a (name, kwargs) pair, a callable or None"
    )


def is_null(spec: LayerSpec, kind: str = "normalizer") -> bool:
    """True if ``spec`` builds no layer (``None``, ``'null'`` or another name registered as None).

    Examples:
        >>> is_null(None), is_null("null"), is_null("batch"), is_null("relu", "activator")
        (True, True, False, False)
    """
    return _split(spec, kind, NORMALIZERS if kind == "normalizer" else ACTIVATORS)[0] is None


def check_layer_spec(spec: LayerSpec, kind: str) -> None:
    """Validate a normalizer or activator spec without building a layer.

    Args:
        spec: The value given as ``normalizer=`` or ``activator=``.
        kind: ``'normalizer'`` or ``'activator'``.

    Raises:
        ValueError: If the name is unknown or the form is not accepted.
        TypeError: If ``spec`` is a layer instance rather than a name, class or factory.
    """
    _split(spec, kind, NORMALIZERS if kind == "normalizer" else ACTIVATORS)


def takes_ndim(factory: Callable[..., Any]) -> bool:
    """True if ``factory`` declares a parameter named ``ndim`` (then it is given the block's dimension).

    Examples:
        >>> takes_ndim(lambda c, ndim: None), takes_ndim(lambda c, **kw: None), takes_ndim(nn.BatchNorm2d)
        (True, False, False)
    """
    try:
        return "ndim" in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # some builtins have no signature
        return False


def _make(
    spec: LayerSpec, channels: int, kind: str, registry: Mapping[str, LayerFactory | None], ndim: int
) -> nn.Module | None:
    """Build the layer for ``spec`` acting on ``channels`` channels in ``ndim`` dimensions; None for no layer."""
    if not is_int(channels) or channels < 1:
        raise ValueError(f"channels={channels!r} for the {kind} must be a positive int")
    factory, kwargs = _split(spec, kind, registry)
    if factory is None:
        return None
    try:
        layer = factory(channels, ndim=ndim, **kwargs) if takes_ndim(factory) else factory(channels, **kwargs)
    except TypeError as error:  # e.g. an unknown keyword in a (name, kwargs) pair
        raise TypeError(f"{kind}={spec!r} could not build a layer for {channels} channels: {error}") from error
    if not isinstance(layer, nn.Module):
        raise ValueError(f"{kind} factory {factory!r} returned {type(layer).__name__}, not an nn.Module")
    made_for = _layer_ndim(layer) if kind == "normalizer" else None  # torch's norms check their input's rank
    if made_for not in (None, ndim):
        raise ValueError(
            f"{kind}={spec!r} built {type(layer).__name__}, a {made_for}-D layer, for a {ndim}-D block; "
            f"pass its {ndim}-D class or a registered name such as {sorted(n for n in registry if registry[n])[:4]}"
        )
    return layer


def make_normalizer(spec: LayerSpec, channels: int, ndim: int = 2) -> nn.Module | None:
    """Build a normalization layer.

    Args:
        spec: A registered name, a ``(name, kwargs)`` pair, a callable ``f(channels)`` or None.
        channels: Number of channels to normalize.
        ndim: Spatial dimensions of the input (1, 2 or 3): ``'batch'`` gives ``nn.BatchNorm{ndim}d``.

    Returns:
        The layer, or None for ``'null'`` / ``None``.

    Raises:
        ValueError: If ``spec`` is an unknown name or not an accepted form, or ``channels`` is not a
            positive int.
        TypeError: If ``spec`` is a layer instance, or its keyword arguments do not fit the layer.

    Examples:
        >>> make_normalizer(("group", {"num_groups": 4}), 16).num_groups
        4
        >>> type(make_normalizer("batch", 16, ndim=3)).__name__
        'BatchNorm3d'
    """
    return _make(spec, channels, "normalizer", NORMALIZERS, ndim)


def make_activator(spec: LayerSpec, channels: int, ndim: int = 2) -> nn.Module | None:
    """Build an activation layer.

    Args:
        spec: A registered name, a ``(name, kwargs)`` pair, a callable ``f(channels)`` or None.
        channels: Number of channels it acts on (used by ``'prelu'``).
        ndim: Spatial dimensions of the input, for a factory that declares ``ndim``.

    Returns:
        The layer, or None for ``'null'`` / ``None``.

    Raises:
        ValueError: If ``spec`` is an unknown name or not an accepted form, or ``channels`` is not a
            positive int.
        TypeError: If ``spec`` is a layer instance, or its keyword arguments do not fit the layer.

    Examples:
        >>> make_activator("prelu", 16)
        PReLU(num_parameters=16)
    """
    return _make(spec, channels, "activator", ACTIVATORS, ndim)


DropoutSpec = Union[None, float, Callable[[], nn.Module]]
"""What ``dropout=`` accepts: None (none), a probability ``p`` (``nn.Dropout(p)``) or a factory ``f() -> nn.Module``."""


def make_dropout(spec: DropoutSpec) -> nn.Module | None:
    """Build the dropout that follows a conv (nnU-Net's ``conv -> dropout -> norm -> act``).

    Args:
        spec: None or 0 for none; a probability ``0 < p < 1`` for ``nn.Dropout(p)`` (element-wise);
            or a factory called with no argument, e.g. ``lambda: nn.Dropout3d(0.2)``.

    Returns:
        The layer, or None.

    Raises:
        ValueError: If ``spec`` is a number outside ``[0, 1)`` or a factory that does not return a module.
        TypeError: If ``spec`` is a layer instance (each conv needs its own).

    Examples:
        >>> make_dropout(0.2), make_dropout(None)
        (Dropout(p=0.2, inplace=False), None)
    """
    if spec is None:
        return None
    if isinstance(spec, nn.Module):
        raise TypeError(
            f"dropout={spec!r} is a layer instance; pass its probability or a factory such as "
            f"lambda: nn.{type(spec).__name__}(...), so that each conv gets its own"
        )
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        if not 0 <= spec < 1:
            raise ValueError(f"dropout={spec!r} must be a probability 0 <= p < 1, None, or a factory f() -> nn.Module")
        return nn.Dropout(float(spec)) if spec > 0 else None
    if callable(spec):
        layer = spec()
        if not isinstance(layer, nn.Module):
            raise ValueError(f"dropout factory {spec!r} returned {type(layer).__name__}, not an nn.Module")
        return layer
    raise ValueError(f"dropout={spec!r} must be None, a probability 0 <= p < 1, or a factory f() -> nn.Module")


FRESH_OUTPUT_LAYERS = (nn.modules.conv._ConvNd, nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
"""Layers whose output is a new tensor that their backward does not read: convs and torch norm layers."""


def returns_new_tensor(layer: nn.Module | None) -> bool:
    """True if ``layer`` is a conv or a torch normalization layer, so an in-place op on its output is safe.

    A user's normalizer (a callable, a registered factory) may return its input unchanged (``nn.Identity``),
    so an in-place activation would overwrite the block's input, which the shortcut still reads; or its
    backward may read its own output (``x.exp()``), which an in-place op would corrupt.
    """
    return isinstance(layer, FRESH_OUTPUT_LAYERS)


def in_place(layer: nn.Module | None, after: nn.Module | None = None) -> nn.Module | None:
    """Switch ``layer`` to work in place if it can (it has an ``inplace`` flag, as ``nn.ReLU``); return it.

    This saves a copy and memory, as torchvision's ``ReLU(inplace=True)``, where the layer's input is a
    fresh tensor that nothing else reads.

    Args:
        layer: The layer, or None.
        after: The layer whose output ``layer`` reads; then ``layer`` is switched only if
            `returns_new_tensor` holds for it. None when the caller knows the input is fresh (a residual sum).

    Examples:
        >>> in_place(nn.ReLU(), after=nn.BatchNorm2d(4)).inplace, in_place(nn.ReLU(), after=nn.Identity()).inplace
        (True, False)
    """
    if after is not None and not returns_new_tensor(after):
        return layer
    if layer is not None and isinstance(getattr(layer, "inplace", None), bool):
        layer.inplace = True
    return layer
