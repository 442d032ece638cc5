"""Argument and input checks shared by every constructor and network boundary: one function per rule.

Argument checks run at construction. Input checks run once per call of what the user called (a
block a user builds, or a network at its boundary) and step aside while ``torch.fx`` traces, so
that ``torch.fx.symbolic_trace`` and torchvision's ``create_feature_extractor`` see only torch ops.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

import torch
from torch import Tensor, nn

IntOrTuple = Union[int, tuple[int, ...]]
"""An int, or one int per spatial dimension (``(h, w)`` in 2-D, ``(d, h, w)`` in 3-D)."""

IntPair = IntOrTuple
"""0.1.0's name of `IntOrTuple`."""

NDIMS = (1, 2, 3)
"""The spatial dimensions every unit, block and network exists for."""

LAYER_ORDERS = ("new", "old")
"""``layer_order`` values: ``'new'`` is pre-activation (norm, act, conv), ``'old'`` is conv, norm, act."""

SCALERS = ("down", "up")
"""``scaler`` values: ``'down'`` strides the conv, ``'up'`` up-samples before it."""

SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}
"""How error messages name the spatial sizes of each dimension."""

PER_DIMENSION = {1: "a 1-tuple (l,)", 2: "a pair (h, w)", 3: "a triple (d, h, w)"}
"""How error messages name one value per dimension."""


def is_tracing() -> bool:
    """True while ``torch.fx`` traces symbolically: input checks then step aside.

    Under ``torch.export`` and ``torch.compile`` the checks run: dynamo traces them, sizes become
    symbolic ints and a size rule becomes a guard.
    """
    return torch.fx._symbolic_trace.is_fx_symbolic_tracing() or torch.jit.is_scripting()


def _is_int(value: Any) -> bool:
    """True for an int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise a ValueError naming ``name``."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; use one of {list(allowed)}")
    return value


def check_ndim(ndim: Any) -> int:
    """Return ``ndim`` if it is 1, 2 or 3, else raise a ValueError."""
    if not _is_int(ndim) or ndim not in NDIMS:
        raise ValueError(f"ndim={ndim!r} is not allowed; use one of {list(NDIMS)} (the number of spatial dimensions)")
    return ndim


def resolve_ndim(cls: type, ndim: Any) -> int:
    """The dimension of a module of class ``cls``: its ``fixed_ndim`` (``BlockPlain3d``: 3), else ``ndim`` (default 2).

    Raises:
        ValueError: If ``ndim`` is not 1, 2 or 3, or disagrees with the class's own dimension.
    """
    fixed = getattr(cls, "fixed_ndim", None)
    if fixed is not None and ndim is not None and ndim != fixed:
        raise ValueError(f"{cls.__name__} is {fixed}-D; got ndim={ndim!r} (use the generic class, or leave ndim out)")
    return check_ndim(fixed if fixed is not None else 2 if ndim is None else ndim)


def named_class(generic: type, ndim: int) -> type:
    """The public class of ``generic`` for ``ndim`` dimensions: ``named_class(BlockPlain, 3)`` is ``BlockPlain3d``.

    Networks build the named classes, so summaries and reprs read ``BlockPlain2d``, as in 0.1.0.
    """
    if getattr(generic, "fixed_ndim", None) == ndim:
        return generic
    return next(cls for cls in generic.__subclasses__() if getattr(cls, "fixed_ndim", None) == ndim)


def trust_inputs(network: nn.Module) -> None:
    """Turn off the input checks of every module inside ``network``, which checks its own input once.

    Modules with an input check have a ``checks_input`` attribute (True when a user builds them).
    """
    for module in network.modules():
        if module is not network and hasattr(module, "checks_input"):
            module.checks_input = False


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` if it is an int >= 1, else raise a ValueError naming ``name``."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive int")
    return value


def check_tuple(name: str, value: Any, ndim: int, minimum: int = 1) -> tuple[int, ...]:
    """Return ``value`` as one int per dimension if every entry is an int >= ``minimum``, else raise ValueError.

    Examples:
        >>> check_tuple("stride", 2, 3), check_tuple("stride", (1, 2), 2)
        ((2, 2, 2), (1, 2))
    """
    values = (value,) * ndim if _is_int(value) else value
    if (
        not isinstance(values, (tuple, list))
        or len(values) != ndim
        or any(not _is_int(v) or v < minimum for v in values)
    ):
        what = PER_DIMENSION[ndim].split(" (")[0]
        raise ValueError(f"{name}={value!r} must be an int >= {minimum} or {what} of such ints")
    return tuple(values)


def check_pair(name: str, value: Any, minimum: int = 1) -> tuple[int, int]:
    """`check_tuple` in 2-D."""
    return check_tuple(name, value, 2, minimum)  # type: ignore[return-value]


def check_output_size(value: Any, ndim: int = 2, name: str = "output_size") -> tuple[int, ...] | None:
    """Return ``output_size`` (or the argument ``name``) as one size per dimension (or None), else raise."""
    return None if value is None else check_tuple(name, value, ndim)


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool, else raise a TypeError naming ``name``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name}={value!r} must be True or False")
    return value


def check_call_output_size(module: nn.Module, value: Any, ndim: int = 2) -> tuple[Any, ...] | None:
    """Return an ``output_size`` given at call time as one size per dimension (or None), else raise a ValueError.

    Accepts None, an int >= 1, or one size per dimension. Sizes read from a tensor's shape are
    accepted as they are (under ``torch.export`` and ``torch.compile`` they are symbolic ints);
    plain ints must be >= 1. While fx traces, the value (a Proxy) is passed on unchecked.
    """
    if value is None or is_tracing():
        return value
    sizes = (value,) * ndim if _is_int(value) else value
    if (
        not isinstance(sizes, (tuple, list))  # torch.Size is a tuple
        or len(sizes) != ndim
        or any(isinstance(v, (bool, float)) or (isinstance(v, int) and v < 1) for v in sizes)
    ):
        raise ValueError(
            f"{type(module).__name__} got output_size={value!r}; it must be None, an int >= 1 or "
            f"{PER_DIMENSION[ndim]} of them"
        )
    return tuple(sizes)


def check_input(module: nn.Module, x: Tensor, in_planes: int, ndim: int = 2) -> None:
    """Raise unless ``x`` is a floating-point (B, in_planes, *spatial) tensor of ``ndim`` spatial dimensions.

    Errors name ``module``. Steps aside while fx traces (see `is_tracing`).

    Raises:
        TypeError: If ``x`` is not a tensor, or not a floating-point one.
        ValueError: If ``x`` does not have ``ndim + 2`` dimensions or ``in_planes`` channels.
    """
    if is_tracing():
        return
    expected = f"(B, {in_planes}, {SPATIAL[ndim]})"
    if not isinstance(x, Tensor):
        raise TypeError(f"{type(module).__name__} expects a tensor of shape {expected}, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{type(module).__name__} expects a floating-point tensor, got dtype {x.dtype}")
    if x.dim() != ndim + 2 or x.shape[1] != in_planes:
        raise ValueError(f"{type(module).__name__} expects input of shape {expected}, got {tuple(x.shape)}")


def check_min_size(module: nn.Module, x: Tensor, min_size: int, reduction: int) -> None:
    """Raise a ValueError unless some spatial size of ``x`` is at least ``min_size``.

    The deepest level of a network, at ``1 / reduction`` of the input, needs more than one pixel for
    normalization. Steps aside while fx traces.
    """
    if is_tracing():
        return
    if all(n < min_size for n in x.shape[2:]):
        sides = {1: "length", 2: "height or width", 3: "depth, height or width"}[x.dim() - 2]
        raise ValueError(
            f"{type(module).__name__} needs an input of {sides} >= {min_size} (its deepest level, at "
            f"1/{reduction}, needs more than one pixel for normalization), got input of shape {tuple(x.shape)}"
        )


def check_call(module: nn.Module, x: Tensor, output_size: Any, verb: str) -> tuple[Any, ...] | None:
    """The call check of a unit or block: ``x`` is (B, in_planes, *spatial), and ``output_size`` fits.

    ``module`` has ``in_planes``, ``ndim`` and ``upsamples``; ``verb`` names what it does not do
    (``'up-sample'``, ``'up-scale'``) when it does not up-sample. Returns the checked ``output_size``.

    Raises:
        TypeError: If ``x`` is not a floating-point tensor.
        ValueError: If ``x`` has the wrong shape, or ``output_size`` is malformed or given to a module
            that does not up-sample.
    """
    check_input(module, x, module.in_planes, module.ndim)
    output_size = check_call_output_size(module, output_size, module.ndim)
    if output_size is not None and not module.upsamples:
        raise ValueError(
            f"output_size={output_size!r} given to a {type(module).__name__} that does not {verb} "
            "(build it with scaler='up' and a stride or output_size)"
        )
    return output_size
