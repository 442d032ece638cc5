"""Keras-style summary table of a PyTorch model, in the format of ``torchsummary``.

The table is computed on a *shadow copy* of the model whose parameters and buffers live on the
``meta`` device: the forward pass only propagates shapes, so it costs no arithmetic and no
activation memory even for large inputs, and the user's model is never touched (no hooks added,
no mode change, no running-statistics update, no move between devices).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Union

import torch
from torch import Tensor, nn

from .checks import SPATIAL, is_int

__all__ = ["shadow_copy", "shape_table", "summary"]

InputSize = Union[Sequence[int], Sequence[Sequence[int]]]
Device = Union[str, torch.device, None]

_RULE = "-" * 64
_DOUBLE_RULE = "=" * 64
_ROW = "{:>20}  {:>25} {:>15}"
_BYTES_PER_NUMBER = 4  # torchsummary's convention: every number counts as a float32.
_MB = 1024**2
_META = torch.device("meta")


@dataclass(frozen=True)
class _Row:
    """One line of the table: a module call."""

    name: str
    shape: list
    elements: int
    params: int


def summary(
    model: nn.Module,
    input_size: InputSize,
    batch_size: int = -1,
    device: Device = None,
    dtypes: Optional[Sequence[torch.dtype]] = None,
) -> str:
    """Print and return a table of the layers of ``model``, in ``torchsummary``'s format.

    Every module call gets a row ``ClassName-N`` (a global 1-based counter in execution order; a
    module called twice gets two rows) with its output shape and the number of parameters it owns
    directly. ``nn.Sequential`` and ``nn.ModuleList`` submodules (and their subclasses) are
    skipped, as in ``torchsummary``; unlike ``torchsummary``, the model itself is always the last
    row. The totals count every parameter of the model once (shared parameters are not counted
    twice), so ``Total params`` equals ``sum(p.numel() for p in model.parameters())``.

    Shapes are computed on the ``meta`` device from a shadow copy of the model whose parameters and
    buffers are empty meta tensors (the real weights are never copied), under ``torch.no_grad()``.
    The model passed in is left untouched. If the model cannot run on ``meta`` (for example its
    forward calls ``Tensor.item()`` or creates CPU tensors), a ``RuntimeWarning`` says so and the
    forward runs instead on a real copy of the model on ``device``; if that fails too, its error is
    raised.

    Args:
        model: The module to summarise.
        input_size: The shape of one input sample without the batch dimension, e.g.
            ``(3, 224, 224)``, or a list of such shapes for a model taking several inputs.
        batch_size: The batch size shown in the shapes. ``-1`` (the default) shows ``-1`` and gives
            per-sample sizes; the forward pass then uses a batch of 2 (so batch normalisation in
            training mode works).
        device: Accepted for ``torchsummary`` compatibility. Shapes are computed on ``meta``
            regardless; the device is only used by the fallback when the model cannot run on
            ``meta``. ``None`` means the device of the model's parameters (CPU for a model without
            parameters); ``'cuda'`` without a GPU means CPU, as in ``torchsummary``.
        dtypes: The dtype of each input (default ``torch.float32`` for all). Sizes in MB always
            count 4 bytes per number, as ``torchsummary`` does.

    Returns:
        The table, exactly as printed (without the final newline).

    Raises:
        TypeError: If ``model`` is not an ``nn.Module``.
        ValueError: If ``input_size``, ``batch_size`` or ``dtypes`` is malformed.
        Exception: Whatever the model's forward raises when it fails on ``meta`` and on ``device``
            (on Python >= 3.11 with a note giving the meta error too).

    Note:
        Forward hooks and pre-hooks the user registered are part of the copy and run on it.
        PyTorch implements the meta kernels of some layers (normalisations, activations) in
        Python: the first call in a process pays their one-time lazy imports (a couple of seconds),
        later calls take around a millisecond per such layer whatever the input size.

    Examples:
        >>> from torch import nn
        >>> from blocks.summary import summary
        >>> net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU())
        >>> table = summary(net, (1, 28, 28))
        ----------------------------------------------------------------
                Layer (type)               Output Shape         Param #
        ================================================================
                    Conv2d-1            [-1, 8, 28, 28]              80
                      ReLU-2            [-1, 8, 28, 28]               0
                Sequential-3            [-1, 8, 28, 28]               0
        ================================================================
        Total params: 80
        Trainable params: 80
        Non-trainable params: 0
        ----------------------------------------------------------------
        Input size (MB): 0.00
        Forward/backward pass size (MB): 0.14
        Params size (MB): 0.00
        Estimated Total Size (MB): 0.15
        ----------------------------------------------------------------
        >>> table.splitlines()[3].split()
        ['Conv2d-1', '[-1,', '8,', '28,', '28]', '80']
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"summary() needs an nn.Module as model, got {type(model).__name__}")
    sizes = _normalize_input_size(input_size)
    input_dtypes = _normalize_dtypes(dtypes, len(sizes))
    if not is_int(batch_size):
        raise ValueError(f"batch_size must be an int, got {batch_size!r}")
    if batch_size != -1 and batch_size < 1:
        raise ValueError(f"batch_size must be -1 or a positive int, got {batch_size}")
    run_batch = 2 if batch_size == -1 else batch_size
    _check_sample(model, sizes)
    try:
        rows, (total, trainable) = _summary_trace(model, sizes, input_dtypes, run_batch, batch_size, device)
    except ValueError as error:  # the model refused the input: show the shape the user gave, not the batch of 2
        if batch_size != -1:
            raise
        message = str(error)
        for size in sizes:
            message = message.replace(str((run_batch, *size)), str((-1, *size)))
        if message == str(error):
            raise
        raise ValueError(f"{message} (-1: summary's batch, as in its table)") from error

    table = _format(rows, total, trainable, sizes, batch_size)
    print(table)
    return table


def _check_sample(model: nn.Module, sizes: list[tuple[int, ...]]) -> None:
    """Raise a ValueError when ``input_size`` holds one size more than a blocks model's sample: a batch, by mistake."""
    ndim = getattr(model, "ndim", None)
    if is_int(ndim) and len(sizes) == 1 and len(sizes[0]) == ndim + 2:
        batch, *sample = sizes[0]
        raise ValueError(
            f"summary(): input_size={sizes[0]} has {ndim + 2} sizes, but {type(model).__name__} takes one sample's "
            f"shape, (C, {SPATIAL[ndim]}), without the batch; for a batch of {batch}, call "
            f"summary(model, {tuple(sample)}, batch_size={batch})"
        )


def _summary_trace(
    model: nn.Module,
    sizes: list[tuple[int, ...]],
    input_dtypes: list[torch.dtype],
    run_batch: int,
    batch_size: int,
    device: Device,
) -> tuple[list[_Row], tuple[int, int]]:
    """`_trace` on a meta shadow of ``model``, else (with a warning) on a real copy on ``device``."""
    try:
        return _trace(
            shadow_copy(model, _META), sizes, input_dtypes, run_batch, batch_size, _META
        )
    except (RuntimeError, NotImplementedError) as meta_error:  # meta-specific failures; ValueError etc. propagate
        fallback = _fallback_device(model, device)
        warnings.warn(
            f"summary(): {type(model).__name__} cannot run on the meta device "
            f"({type(meta_error).__name__}: {meta_error}); running a copy of it on {fallback}",
            RuntimeWarning,
            stacklevel=3,
        )
        try:
            return _trace(shadow_copy(model, fallback), sizes, input_dtypes, run_batch, batch_size, fallback)
        except Exception as error:
            if hasattr(error, "add_note"):  # Python >= 3.11
                error.add_note(
                    f"summary(): the forward of {type(model).__name__} failed on the meta device "
                    f"({type(meta_error).__name__}: {meta_error}) and on {fallback}"
                )
            raise


# --------------------------------------------------------------------------------------- arguments


def _normalize_input_size(input_size: InputSize) -> list[tuple[int, ...]]:
    """Return a list of per-sample shapes from one shape or a list of shapes."""
    error = ValueError(
        f"input_size must be a shape such as (3, 224, 224) or a list of shapes, got {input_size!r}"
    )
    if not _is_sequence(input_size) or len(input_size) == 0:
        raise error
    shapes = [input_size] if all(is_int(d) for d in input_size) else list(input_size)
    for shape in shapes:
        if not _is_sequence(shape) or not all(is_int(d) and d >= 0 for d in shape):
            raise error
    return [tuple(int(d) for d in shape) for shape in shapes]


def _is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str)


def _normalize_dtypes(
    dtypes: Union[Sequence[torch.dtype], torch.dtype, None], count: int
) -> list[torch.dtype]:
    """Return one dtype per input (float32 by default; a single dtype applies to all)."""
    if dtypes is None:
        return [torch.float32] * count
    if isinstance(dtypes, torch.dtype):
        return [dtypes] * count
    dtypes = list(dtypes)
    if len(dtypes) != count or not all(isinstance(d, torch.dtype) for d in dtypes):
        raise ValueError(
            f"dtypes must be a list of {count} torch dtype(s), one per input, got {dtypes!r}"
        )
    return dtypes


def _fallback_device(model: nn.Module, device: Device) -> torch.device:
    """The device for the non-meta fallback: ``device``, else the model's, else the CPU."""
    if device is None:
        first = next(model.parameters(), None)
        if first is None:
            first = next(model.buffers(), None)
        if first is None or first.device.type == "meta":
            return torch.device("cpu")
        return first.device
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        return torch.device("cpu")
    return device


# ----------------------------------------------------------------------------------------- tracing


def shadow_copy(model: nn.Module, device: torch.device) -> nn.Module:
    """Deep-copy ``model`` with every parameter, buffer and tensor attribute on ``device``.

    The deepcopy memo is pre-filled with the replacement tensors, so deepcopy itself never copies
    a tensor: on ``meta`` the replacements are empty, so the real weights are never copied and only
    the module structure (with its non-tensor attributes, modes and hooks) is duplicated.
    Uninitialized (lazy) parameters and buffers are recreated uninitialized on ``device``.
    """
    memo: dict[int, Any] = {}
    for parameter in model.parameters():
        if isinstance(parameter, nn.parameter.UninitializedParameter):
            memo[id(parameter)] = nn.parameter.UninitializedParameter(
                requires_grad=parameter.requires_grad, device=device, dtype=parameter.dtype
            )
        else:
            memo[id(parameter)] = nn.Parameter(
                _replacement(parameter, device), requires_grad=parameter.requires_grad
            )
    for module in model.modules():
        # Buffers, and plain tensor attributes such as the ``weight`` that
        # torch.nn.utils.weight_norm recomputes (a non-leaf, which deepcopy refuses).
        for tensor in [*module._buffers.values(), *vars(module).values()]:
            if not isinstance(tensor, torch.Tensor) or id(tensor) in memo:
                continue
            if isinstance(tensor, nn.parameter.UninitializedBuffer):
                memo[id(tensor)] = nn.parameter.UninitializedBuffer(
                    requires_grad=tensor.requires_grad, device=device, dtype=tensor.dtype
                )
            else:
                memo[id(tensor)] = _replacement(tensor, device)
    return copy.deepcopy(model, memo)


def _replacement(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """An empty meta tensor like ``tensor``, or a detached copy of it on a real device."""
    if device.type == "meta":
        return torch.empty_like(tensor, device=device)
    return tensor.detach().to(device, copy=True)


def _trace(
    shadow: nn.Module,
    sizes: list[tuple[int, ...]],
    dtypes: list[torch.dtype],
    run_batch: int,
    batch_size: int,
    device: torch.device,
) -> tuple[list[_Row], tuple[int, int]]:
    """Run ``shadow`` once with hooks; return its rows and (total, trainable) parameter counts."""
    rows: list[_Row] = []

    def hook(module: nn.Module, args: Any, output: Any) -> None:
        rows.append(
            _Row(
                name=f"{type(module).__name__}-{len(rows) + 1}",
                shape=_shape(output, batch_size),
                elements=_elements(output, batch_size),
                params=sum(p.numel() for p in module.parameters(recurse=False)),
            )
        )

    for module in shadow.modules():
        if module is shadow or not isinstance(module, (nn.Sequential, nn.ModuleList)):
            module.register_forward_hook(hook)

    inputs = [_make_input(run_batch, size, dtype, device) for size, dtype in zip(sizes, dtypes)]
    with torch.no_grad():
        shadow(*inputs)

    # After the forward, so that lazy modules have their parameters; shared ones count once.
    parameters = list(shadow.parameters())
    total = sum(p.numel() for p in parameters)
    trainable = sum(p.numel() for p in parameters if p.requires_grad)
    return rows, (total, trainable)


def _make_input(
    batch: int, size: tuple[int, ...], dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    shape = (batch, *size)
    if device.type == "meta":
        return torch.empty(shape, dtype=dtype, device=device)
    if dtype.is_floating_point or dtype.is_complex:
        return torch.rand(shape, dtype=dtype, device=device)
    return torch.zeros(shape, dtype=dtype, device=device)  # valid indices, valid booleans


def _shape(output: Any, batch_size: int) -> list:
    """The shape shown for ``output``: batch dimension replaced, nested lists for sequences."""
    if isinstance(output, torch.Tensor):
        shape = list(output.shape)
        if shape:
            shape[0] = batch_size
        return shape
    if isinstance(output, Mapping):
        output = list(output.values())
    if isinstance(output, (list, tuple)):
        return [_shape(item, batch_size) for item in output]
    return []  # None or any other non-tensor output


def _elements(output: Any, batch_size: int) -> int:
    """Number of output elements counted in the sizes (per sample when ``batch_size`` is -1)."""
    if isinstance(output, torch.Tensor):
        shape = list(output.shape)
        if shape:
            shape[0] = abs(batch_size)
        return math.prod(shape)
    if isinstance(output, Mapping):
        output = list(output.values())
    if isinstance(output, (list, tuple)):
        return sum(_elements(item, batch_size) for item in output)
    return 0


# ------------------------------------------------------------------------------------------ format


def _format(
    rows: list[_Row],
    total: int,
    trainable: int,
    sizes: list[tuple[int, ...]],
    batch_size: int,
) -> str:
    input_elements = sum(math.prod(size) for size in sizes) * abs(batch_size)
    output_elements = sum(row.elements for row in rows)
    input_mb = input_elements * _BYTES_PER_NUMBER / _MB
    forward_backward_mb = 2 * output_elements * _BYTES_PER_NUMBER / _MB  # x2 for gradients
    params_mb = total * _BYTES_PER_NUMBER / _MB
    lines = [_RULE, _ROW.format("Layer (type)", "Output Shape", "Param #"), _DOUBLE_RULE]
    lines += [_ROW.format(row.name, str(row.shape), f"{row.params:,}") for row in rows]
    lines += [
        _DOUBLE_RULE,
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
        _RULE,
        f"Input size (MB): {input_mb:0.2f}",
        f"Forward/backward pass size (MB): {forward_backward_mb:0.2f}",
        f"Params size (MB): {params_mb:0.2f}",
        f"Estimated Total Size (MB): {input_mb + forward_backward_mb + params_mb:0.2f}",
        _RULE,
    ]
    return "\n".join(lines)


def _level(t: Tensor) -> str:
    """``C@S`` for a map of equal sides, ``C@HxW`` (``C@DxHxW``) otherwise."""
    channels, *sizes = t.shape[1:]
    return f"{channels}@{sizes[0]}" if len(set(sizes)) == 1 else f"{channels}@{'x'.join(map(str, sizes))}"


def shape_table(model: nn.Module, x: Tensor) -> str:
    """A short per-level table of the shapes a U-Net produces for ``x``: encoder, decoder, output.

    Runs the model once under ``torch.no_grad()``; use a model and input on the ``meta`` device to
    get the shapes of a full-size U-Net instantly.

    Args:
        model: A network of the U-Net family (``encode``, ``decoder``, ``head``).
        x: An input, (B, in_planes, *spatial).

    Returns:
        Three rows, each level as ``channels@size`` (``@H`` when square, ``@HxW`` otherwise).

    Examples:
        >>> import torch
        >>> from blocks import UNet2d
        >>> print(shape_table(UNet2d(channels=(8, 16, 32), layers=1), torch.zeros(1, 1, 20, 20)))
        encoder  8@20  16@10  32@5
        decoder  16@10  8@20
        output   1@20
    """
    decoded: list[Tensor] = []
    hooks = [stage.register_forward_hook(lambda module, args, out: decoded.append(out)) for stage in model.decoder]
    try:
        with torch.no_grad():
            features = model.encode(x)
            output = model.head(model.decode(features, x.shape[2:]))
    finally:
        for hook in hooks:
            hook.remove()
    rows = {"encoder": features, "decoder": decoded, "output": [output]}
    return "\n".join(f"{name:8s} " + "  ".join(_level(t) for t in tensors) for name, tensors in rows.items())
