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


def check_output_size(value: Any) -> tuple[int, int] | None:
    """Return ``output_size`` as a pair (or None), else raise a ValueError."""
    return None if value is None else check_pair("output_size", value)


def check_input(module: nn.Module, x: Tensor, in_planes: int) -> None:
    """Raise a ValueError naming ``module`` unless ``x`` is a 4-D (B, in_planes, H, W) tensor."""
    if x.dim() != 4 or x.shape[1] != in_planes:
        raise ValueError(
            f"{type(module).__name__} expects input of shape (B, {in_planes}, H, W), got {tuple(x.shape)}"
        )
