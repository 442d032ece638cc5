"""Argument and input checks shared by every constructor: one function per rule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

from torch import Tensor, nn

IntPair = Union[int, tuple[int, int]]
"""An int, or a pair of ints for (height, width)."""

LAYER_ORDERS = ("new", "old")
"""``layer_order`` values: ``'new'`` is pre-activation (norm, act, conv), ``'old'`` is conv, norm, act."""

SCALERS = ("down", "up")
"""``scaler`` values: ``'down'`` strides the conv, ``'up'`` up-samples before it."""


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise a ValueError naming ``name``."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; use one of {list(allowed)}")
    return value


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` if it is an int >= 1, else raise a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive int")
    return value


def check_pair(name: str, value: Any, minimum: int = 1) -> tuple[int, int]:
    """Return ``value`` as an (int, int) pair if both entries are ints >= ``minimum``, else raise ValueError."""
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(pair, (tuple, list))
        or len(pair) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in pair)
    ):
        raise ValueError(f"{name}={value!r} must be an int >= {minimum} or a pair of such ints")
    return (pair[0], pair[1])


def check_output_size(value: Any, name: str = "output_size") -> tuple[int, int] | None:
    """Return ``output_size`` (or the argument ``name``) as a pair (or None), else raise a ValueError."""
    return None if value is None else check_pair(name, value)


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool, else raise a TypeError naming ``name``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name}={value!r} must be True or False")
    return value


def check_call_output_size(module: nn.Module, value: Any) -> tuple[Any, Any] | None:
    """Return an ``output_size`` given at call time as a pair (or None), else raise a ValueError.

    Accepts None, an int >= 1, or a pair of sizes. Sizes read from a tensor's shape are accepted as
    they are (under ``torch.export`` and ``torch.compile`` they are symbolic ints); plain ints must be >= 1.
    """
    if value is None:
        return None
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(pair, (tuple, list))  # torch.Size is a tuple
        or len(pair) != 2
        or any(isinstance(v, (bool, float)) or (isinstance(v, int) and v < 1) for v in pair)
    ):
        raise ValueError(
            f"{type(module).__name__} got output_size={value!r}; it must be None, an int >= 1 or a pair (h, w) of them"
        )
    return (pair[0], pair[1])


def check_input(module: nn.Module, x: Tensor, in_planes: int) -> None:
    """Raise unless ``x`` is a floating-point 4-D (B, in_planes, H, W) tensor; errors name ``module``.

    Raises:
        TypeError: If ``x`` is not a tensor, or not a floating-point one.
        ValueError: If ``x`` is not 4-D or does not have ``in_planes`` channels.
    """
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{type(module).__name__} expects a tensor of shape (B, {in_planes}, H, W), got {type(x).__name__}"
        )
    if not x.is_floating_point():
        raise TypeError(f"{type(module).__name__} expects a floating-point tensor, got dtype {x.dtype}")
    if x.dim() != 4 or x.shape[1] != in_planes:
        raise ValueError(
            f"{type(module).__name__} expects input of shape (B, {in_planes}, H, W), got {tuple(x.shape)}"
        )
