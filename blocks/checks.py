"""Argument and input checks shared by every constructor and network boundary: one function per rule.

Argument checks run at construction. Input checks run on every call of a unit, a block or a
network (about 2 µs each; a network checks its input once at its boundary with its own message,
then its parts check theirs), and step aside while ``torch.fx`` traces (the input is a
``torch.fx.Proxy``) or TorchScript runs, so that ``torch.fx.symbolic_trace`` and torchvision's
``create_feature_extractor`` see only torch ops. Under ``torch.compile`` and ``torch.export`` they
run as guards. See the Design page of the docs (``docs/design.md``).
"""

from __future__ import annotations

import difflib
import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
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


def is_tracing(x: Any) -> bool:
    """True while ``torch.fx`` traces (``x``, a module's input, is a ``torch.fx.Proxy``) or TorchScript runs.

    Input checks then step aside. Under ``torch.export`` and ``torch.compile`` they run: dynamo
    traces them, sizes become symbolic ints and a size rule becomes a guard.

    Examples:
        >>> is_tracing(torch.zeros(1))
        False
    """
    return torch.jit.is_scripting() or isinstance(x, torch.fx.Proxy)


def resolve_annotations(owner: Any) -> Any:
    """Turn the string annotations of a function or class (postponed: ``from __future__ import annotations``) into objects.

    ``torch.fx`` copies a traced ``forward``'s annotations into the code it writes, so string
    annotations come out as names no one defines (``x : _Tensor_``), which ``torch.jit.script`` of the
    traced module refuses; TorchScript reads a module's attribute types from its class annotations
    as objects too (an empty list attribute needs one). Returns ``owner``.

    Examples:
        >>> def f(x: "int") -> "list[int]":
        ...     return [x]
        >>> resolve_annotations(f).__annotations__
        {'x': <class 'int'>, 'return': list[int]}
    """
    owner.__annotations__.update(typing.get_type_hints(owner))
    return owner


def is_int(value: Any) -> bool:
    """True for an int that is not a bool.

    Examples:
        >>> is_int(3), is_int(True), is_int(3.0)
        (True, False, False)
    """
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """Return ``value`` if it is an int (not a bool) >= ``minimum``, else raise a ValueError naming ``name``.

    Examples:
        >>> check_int("layers", 0, minimum=0)
        0
    """
    if not is_int(value) or value < minimum:
        what = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{name}={value!r} must be {what}")
    return value


def check_ints(
    name: str, values: Any, count: int | None = None, minimum: int = 1, meaning: str = "", example: Any = None
) -> tuple[int, ...]:
    """Return ``values`` as a tuple if it is a sequence of ints >= ``minimum`` (exactly ``count`` of them, if given).

    Raises:
        ValueError: Naming ``name``, the value and what is allowed (with ``meaning`` and ``example``).

    Examples:
        >>> check_ints("channels", [4, 8])
        (4, 8)
    """
    if (
        isinstance(values, (str, bytes))
        or not isinstance(values, Sequence)
        or (count is not None and len(values) != count)
        or any(not is_int(v) or v < minimum for v in values)
    ):
        raise ValueError(
            f"{name}={values!r} must be {_ints(count, minimum)}{meaning}"
            f"{'' if example is None else f', e.g. {example}'}"
        )
    return tuple(values)


def _ints(count: int | None, minimum: int) -> str:
    """``'4 positive ints'``, ``'a sequence of ints >= 0'``: how messages name a run of ints."""
    kind = "positive ints" if minimum == 1 else f"ints >= {minimum}"
    return f"{count} {kind}" if count is not None else f"a sequence of {kind}"


def check_per_level(name: str, value: Any, levels: int, minimum: int = 1) -> tuple[int, ...]:
    """Return ``value`` as one int >= ``minimum`` per level: an int (the same for every level) or ``levels`` of them.

    Examples:
        >>> check_per_level("layers", 2, 3), check_per_level("layers", (1, 2, 3), 3)
        ((2, 2, 2), (1, 2, 3))
    """
    counts = (value,) * levels if is_int(value) else value
    try:
        return check_ints(name, counts, levels, minimum)
    except ValueError:
        one = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(
            f"{name}={value!r} must be {one} or a sequence of {_ints(levels, minimum)}, one per level"
        ) from None


def compact(values: Sequence[int]) -> int | tuple[int, ...]:
    """One int when every dimension has the same value, else the tuple: how blocks reports per-dimension sizes.

    Examples:
        >>> compact((2, 2)), compact((1, 2, 2))
        (2, (1, 2, 2))
    """
    values = tuple(values)
    return values[0] if len(set(values)) == 1 else values


def check_keywords(owner: str, signature: inspect.Signature, keywords: Mapping[str, Any]) -> None:
    """Raise a TypeError for a keyword that ``signature`` does not take, suggesting the closest argument names.

    Python's own message names only the bad keyword; this one also says what was meant (``chanels`` ->
    ``channels``). Signatures with ``**kwargs`` take every keyword and are not checked.

    Examples:
        >>> check_keywords("UNet2d", inspect.signature(lambda channels=None, layers=2: None), {"chanels": 8})
        Traceback (most recent call last):
        ...
        TypeError: UNet2d got an unexpected keyword argument 'chanels'; did you mean 'channels'?
    """
    parameters = signature.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    names = [n for n, p in parameters.items() if n != "self" and p.kind is not inspect.Parameter.VAR_POSITIONAL]
    for key in keywords:
        if key not in parameters:
            close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
            hint = f"did you mean {' or '.join(map(repr, close))}?" if close else f"it takes {', '.join(names)}"
            raise TypeError(f"{owner} got an unexpected keyword argument {key!r}; {hint}")


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise a ValueError naming ``name``."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; use one of {list(allowed)}")
    return value


def check_ndim(ndim: Any) -> int:
    """Return ``ndim`` if it is 1, 2 or 3, else raise a ValueError."""
    if not is_int(ndim) or ndim not in NDIMS:
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


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` if it is an int >= 1, else raise a ValueError naming ``name`` (`check_int` with minimum 1)."""
    return check_int(name, value)


def check_tuple(name: str, value: Any, ndim: int, minimum: int = 1) -> tuple[int, ...]:
    """Return ``value`` as one int per dimension if every entry is an int >= ``minimum``, else raise ValueError.

    Examples:
        >>> check_tuple("stride", 2, 3), check_tuple("stride", (1, 2), 2)
        ((2, 2, 2), (1, 2))
    """
    values = (value,) * ndim if is_int(value) else value
    if (
        not isinstance(values, (tuple, list))
        or len(values) != ndim
        or any(not is_int(v) or v < minimum for v in values)
    ):
        what = PER_DIMENSION[ndim].split(" (")[0]
        raise ValueError(f"{name}={value!r} must be an int >= {minimum} or {what} of such ints")
    return tuple(values)


def check_odd_kernel(kernel_size: Any, ndim: int = 2) -> tuple[int, ...]:
    """Return ``kernel_size`` as one odd int per dimension, else raise a ValueError (blocks need 'same' padding).

    Examples:
        >>> check_odd_kernel(3, 2), check_odd_kernel((1, 3, 3), 3)
        ((3, 3), (1, 3, 3))
    """
    kernel = check_tuple("kernel_size", kernel_size, ndim)
    if any(k % 2 == 0 for k in kernel):
        raise ValueError(
            f"kernel_size={kernel_size!r} must be odd (an int or {PER_DIMENSION[ndim].split(' (')[0]}), "
            "so blocks keep the size"
        )
    return kernel


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
    if value is None or is_tracing(value):
        return value
    sizes = (value,) * ndim if is_int(value) else value
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


def check_tensor(module: nn.Module, x: Any, shape: Sequence[int | None], expected: str) -> None:
    """Raise unless ``x`` is a floating-point tensor of ``shape`` (None: any size there), described as ``expected``.

    The one input check of every unit, block and network; errors name ``module`` and the shape
    received. Steps aside while fx traces or TorchScript runs (see `is_tracing`).

    Raises:
        TypeError: If ``x`` is not a tensor, or not a floating-point one.
        ValueError: If ``x`` does not have the rank or sizes of ``shape``.
    """
    if is_tracing(x):
        return
    if not isinstance(x, Tensor):
        raise TypeError(f"{type(module).__name__} expects a tensor of shape {expected}, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{type(module).__name__} expects a floating-point tensor, got dtype {x.dtype}")
    if x.dim() != len(shape) or any(n is not None and x.shape[i] != n for i, n in enumerate(shape)):
        raise ValueError(f"{type(module).__name__} expects input of shape {expected}, got {tuple(x.shape)}")


def check_input(module: nn.Module, x: Tensor, in_planes: int, ndim: int = 2) -> None:
    """Raise unless ``x`` is a floating-point (B, in_planes, *spatial) tensor of ``ndim`` spatial dimensions.

    Errors name ``module``. Steps aside while fx traces (see `is_tracing`).

    Raises:
        TypeError: If ``x`` is not a tensor, or not a floating-point one.
        ValueError: If ``x`` does not have ``ndim + 2`` dimensions or ``in_planes`` channels.
    """
    expected = f"(B, {in_planes}, {SPATIAL[ndim]})"
    check_tensor(module, x, (None, None) + (None,) * ndim, expected)
    if not is_tracing(x) and x.shape[1] != in_planes:
        raise ValueError(
            f"{type(module).__name__} expects input of shape {expected}, got {tuple(x.shape)}: its channel count "
            f"is {x.shape[1]}, but it was built with in_planes={in_planes} (build it with "
            f"in_planes={x.shape[1]}, or pass {in_planes}-channel inputs)"
        )


def check_min_size(
    module: nn.Module,
    x: Tensor,
    min_size: int | Sequence[int],
    reduction: int | Sequence[int],
    one_pixel: Callable[[int], str | None] | None = None,
) -> None:
    """Raise a ValueError unless some spatial size of ``x`` reaches ``min_size`` or its one-pixel deepest level works.

    The deepest level of a network, at ``1 / reduction`` of the input, is one pixel exactly when no
    side reaches ``min_size`` (`blocks.levels.min_size` is the rule). That works where every
    normalizer has more than one value per group: ``one_pixel(batch)`` (`blocks.levels.one_pixel_problem`
    on the network) returns None then, else why not; without it a one-pixel level is refused.
    The message names the smallest size. Steps aside while fx traces.
    """
    if is_tracing(x):
        return
    spatial = x.shape[2:]
    mins = (min_size,) * len(spatial) if isinstance(min_size, int) else tuple(min_size)
    if all(n < m for n, m in zip(spatial, mins)):
        problem = "needs more than one pixel for normalization" if one_pixel is None else one_pixel(x.shape[0])
        if problem is None:
            return
        ndim = x.dim() - 2
        if len(set(mins)) == 1:
            sides = {1: "length", 2: "height or width", 3: "depth, height or width"}[ndim]
            need, at = f"{sides} >= {mins[0]}", max(reduction) if not isinstance(reduction, int) else reduction
        else:
            names = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}[ndim]
            need = ", ".join(f"{n} >= {m}" for n, m in zip(names[:-1], mins)) + f" or {names[-1]} >= {mins[-1]}"
            at = tuple(reduction)
        why = problem if one_pixel is None else f"would be one pixel, and {problem}"
        raise ValueError(
            f"{type(module).__name__} needs an input of {need} (its deepest level, at 1/{at}, {why}), got input "
            f"of shape {tuple(x.shape)}"
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
    if is_tracing(x):
        return output_size
    check_input(module, x, module.in_planes, module.ndim)
    output_size = check_call_output_size(module, output_size, module.ndim)
    if output_size is not None and not module.upsamples:
        raise ValueError(
            f"output_size={output_size!r} given to a {type(module).__name__} that does not {verb} "
            "(build it with scaler='up' and a stride or output_size)"
        )
    return output_size
