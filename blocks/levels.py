"""The geometry of a network's levels: strides, kernel sizes, reductions, sizes and the smallest input.

Level ``i`` of a network is made by a stride of ``strides[i]`` (one int per dimension) from level
``i - 1``, level ``-1`` being the input: its size is ``ceil(n / s)`` in each dimension (a
stride-``s`` conv with 'same' padding), and its reduction, the product of the strides so far.
nnU-Net's names: ``strides`` and ``kernel_sizes``, one entry per level, each an int or one int per
dimension (anisotropic volumes, video). Every network reads its geometry here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Union

from torch import nn

from .checks import PER_DIMENSION, check_odd_kernel, check_tuple, is_int

__all__ = [
    "OUTPUT_STRIDES", "PerLevel", "check_kernel_sizes", "check_strides", "default_strides", "dilated_levels",
    "level_sizes", "min_sizes", "min_size", "one_pixel_problem", "reductions_of", "scaled_size", "steps_between",
    "values_per_group",
]

PerLevel = Sequence[Union[int, Sequence[int]]]
"""``strides=`` and ``kernel_sizes=``: one entry per level, each an int or one int per dimension."""


def default_strides(levels: int, ndim: int) -> tuple[tuple[int, ...], ...]:
    """The family's default: level 0 at the input's size, each next level halved, ``(1, 2, 2, ...)``.

    Examples:
        >>> default_strides(3, 2)
        ((1, 1), (2, 2), (2, 2))
    """
    return tuple((1 if i == 0 else 2,) * ndim for i in range(levels))


def _per_level(name: str, value: Any, levels: int, ndim: int) -> list[Any]:
    """``value`` as a list of ``levels`` entries, else a ValueError naming ``name`` (a bare int is ambiguous)."""
    if is_int(value) or isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != levels:
        raise ValueError(
            f"{name}={value!r} must be a sequence of {levels} entries, one per level, each an int or "
            f"{PER_DIMENSION[ndim]} (e.g. {name}={default_strides(levels, ndim) if name == 'strides' else (3,) * levels})"
        )
    return list(value)


def check_strides(strides: Any, levels: int, ndim: int) -> tuple[tuple[int, ...], ...]:
    """Return ``strides`` as one positive int per dimension for each of ``levels`` levels, else raise a ValueError.

    Raises:
        ValueError: If ``strides`` is a bare int, has another length than ``levels``, or an entry is
            not a positive int or one per dimension (naming the level).

    Examples:
        >>> check_strides([1, (1, 2, 2), 2], 3, 3)
        ((1, 1, 1), (1, 2, 2), (2, 2, 2))
    """
    entries = _per_level("strides", strides, levels, ndim)
    return tuple(check_tuple(f"strides[{i}]", s, ndim) for i, s in enumerate(entries))


def check_kernel_sizes(kernel_sizes: Any, levels: int, ndim: int) -> tuple[tuple[int, ...], ...]:
    """Return ``kernel_sizes`` as one odd int per dimension for each of ``levels`` levels, else raise a ValueError.

    Examples:
        >>> check_kernel_sizes([(1, 3, 3), 3], 2, 3)
        ((1, 3, 3), (3, 3, 3))
    """
    entries = _per_level("kernel_sizes", kernel_sizes, levels, ndim)
    checked = []
    for i, k in enumerate(entries):
        try:
            checked.append(check_odd_kernel(k, ndim))
        except ValueError as error:
            raise ValueError(f"kernel_sizes[{i}]: {error}") from None
    return tuple(checked)


def reductions_of(strides: Sequence[Sequence[int]]) -> list[tuple[int, ...]]:
    """The reduction of each level, per dimension: the product of the strides up to it.

    Examples:
        >>> reductions_of([(1, 1, 1), (1, 2, 2), (2, 2, 2)])
        [(1, 1, 1), (1, 2, 2), (2, 4, 4)]
    """
    out, current = [], None
    for stride in strides:
        current = tuple(stride) if current is None else tuple(r * s for r, s in zip(current, stride))
        out.append(current)
    return out


OUTPUT_STRIDES = (8, 16, 32)
"""``output_stride=`` values of `blocks.ResNet` and `blocks.EncoderNet` (None: no dilation)."""


def dilated_levels(
    strides: Sequence[Sequence[int]], output_stride: int | None, reduction: Sequence[int]
) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
    """The output-stride rule (torchvision's ``replace_stride_with_dilation``, timm's ``output_stride``).

    Going down the levels from ``reduction`` (the input's reduction before level 0: a ResNet's stem
    and max-pool), a level that starts at a reduction of ``output_stride`` or more (the largest of
    the dimensions) no longer strides: its stride multiplies the dilation instead, so the maps keep
    their size from there on and the receptive field grows as before. A dilated level's first block
    keeps the dilation of the level before (`blocks.residual.BlockSpec.stage`).

    Args:
        strides: The stride of each level, one int per dimension.
        output_stride: One of `OUTPUT_STRIDES`, or None for no dilation (the strides unchanged).
        reduction: The reduction before level 0, one int per dimension.

    Returns:
        ``(strides, dilations)``: the stride and the dilation of each level, one int per dimension.

    Raises:
        ValueError: If ``output_stride`` is not None or one of `OUTPUT_STRIDES`, or the maps cannot
            stay at it (a single stride would pass it).

    Examples:
        >>> dilated_levels([(1, 1), (2, 2), (2, 2), (2, 2)], 8, (4, 4))
        (((1, 1), (2, 2), (1, 1), (1, 1)), ((1, 1), (1, 1), (2, 2), (4, 4)))
        >>> dilated_levels([(1, 1, 1), (1, 2, 2), (1, 2, 2)], 16, (1, 8, 8))[1]
        ((1, 1, 1), (1, 1, 1), (1, 2, 2))
    """
    ones = (1,) * len(reduction)
    if output_stride is None:
        return tuple(tuple(s) for s in strides), (ones,) * len(strides)
    if not is_int(output_stride) or output_stride not in OUTPUT_STRIDES:
        raise ValueError(
            f"output_stride={output_stride!r} is not allowed; use None (no dilation) or one of {list(OUTPUT_STRIDES)}"
        )
    current, dilation = tuple(reduction), ones
    new_strides, dilations = [], []
    for stride in strides:
        if max(current) >= output_stride:
            stride, dilation = ones, tuple(d * s for d, s in zip(dilation, stride))
        else:
            current = tuple(r * s for r, s in zip(current, stride))
        new_strides.append(tuple(stride))
        dilations.append(dilation)
    if max(current) > output_stride:
        raise ValueError(
            f"output_stride={output_stride} cannot be kept: the levels reach a reduction of {max(current)} before a "
            f"level can be dilated (strides {[tuple(s) for s in strides]} after a reduction of {tuple(reduction)}); "
            "use a larger output_stride"
        )
    return tuple(new_strides), tuple(dilations)


def steps_between(reductions: Sequence[Sequence[int]], name: str = "encoder") -> list[tuple[int, ...]]:
    """The up-scaling factor from each level to the one above it: ``reductions[i + 1] / reductions[i]``.

    Raises:
        ValueError: If a ratio is not a whole number, or a level is at a smaller reduction than the one above.

    Examples:
        >>> steps_between([(1, 2, 2), (1, 4, 4), (2, 8, 8)])
        [(1, 2, 2), (2, 2, 2)]
    """
    steps = []
    for i, (low, high) in enumerate(zip(reductions, reductions[1:])):
        if any(h < lo or h % lo for lo, h in zip(low, high)):
            raise ValueError(
                f"{name}: map {i + 1} is at reduction {tuple(high)} after map {i} at {tuple(low)}; each map must be "
                "at a whole multiple of the previous one's reduction, in every dimension"
            )
        steps.append(tuple(h // lo for lo, h in zip(low, high)))
    return steps


def scaled_size(size: list[int], factor: int | list[int]) -> list[int]:
    """``ceil(n / factor)`` for each side (``factor`` an int or one per side): a map at ``1 / factor`` of an input.

    `blocks.decoder` calls it at run time on a traced input's size, as a leaf of fx traces, and it
    compiles with TorchScript (tuples work as well as lists in Python).

    Examples:
        >>> scaled_size((97, 64), 4), scaled_size((7, 97, 64), (1, 4, 4))
        ([25, 16], [7, 25, 16])
    """
    if isinstance(factor, int):
        factors = [factor] * len(size)
    else:
        factors = factor
    return [-(-size[i] // factors[i]) for i in range(len(size))]


def level_sizes(
    size: Sequence[int], levels: int | None = None, strides: Sequence[Sequence[int]] | None = None
) -> list[tuple[int, ...]]:
    """The size of each level: level ``i`` is ``ceil(level[i - 1] / strides[i])``, from the input's ``size``.

    Without ``strides``, the default layout of ``levels`` levels (level 0 the input's size, then halved).

    Examples:
        >>> level_sizes((97, 8), 3)
        [(97, 8), (49, 4), (25, 2)]
        >>> level_sizes((28, 256, 224), strides=[(1, 1, 1), (1, 2, 2), (2, 2, 2)])
        [(28, 256, 224), (28, 128, 112), (14, 64, 56)]
    """
    if strides is None:
        strides = default_strides(levels or 1, len(size))
    sizes, current = [], tuple(size)
    for stride in strides:
        current = tuple(scaled_size(current, tuple(stride)))
        sizes.append(current)
    return sizes


def min_size(reduction: int) -> int:
    """The smallest side that leaves more than one pixel at ``1 / reduction``: ``reduction + 1``.

    Normalization needs more than one value per group, so where a normalizer sees a single pixel
    (see `one_pixel_problem`), a network's deepest level must be larger than one pixel in at least
    one dimension; ``ceil(n / r) > 1`` exactly when ``n > r``.

    Examples:
        >>> min_size(16)
        17
    """
    return reduction + 1


def min_sizes(reduction: Sequence[int]) -> tuple[int, ...]:
    """`min_size` per dimension of a per-dimension reduction: the input needs one side at least this large.

    Examples:
        >>> min_sizes((2, 16, 16)), math.prod(min_sizes((1, 1)))
        ((3, 17, 17), 4)
    """
    return tuple(min_size(r) for r in reduction)


def values_per_group(norm: nn.Module, batch: int) -> int | None:
    """How many values one normalization group of ``norm`` holds on a one-pixel map of ``batch`` samples.

    The rule per normalizer: instance norm normalizes each channel of each sample over the pixels
    (1 value); batch norm in training, each channel over the batch's pixels (``batch`` values; in
    eval it uses its running statistics); group and layer norm, each sample's group of ``C / g``
    channels over the pixels (``C / g`` values). None for a module that does not normalize over
    the pixels (any other module, batch or instance norm that uses running statistics).

    Examples:
        >>> values_per_group(nn.InstanceNorm2d(8), 4), values_per_group(nn.GroupNorm(4, 8), 1)
        (1, 2)
        >>> values_per_group(nn.BatchNorm2d(8), 1), values_per_group(nn.BatchNorm2d(8).eval(), 1)
        (1, None)
    """
    if isinstance(norm, (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)):
        if not norm.training and norm.track_running_stats and norm.running_mean is not None:
            return None
        return batch if isinstance(norm, nn.modules.batchnorm._BatchNorm) else 1
    if isinstance(norm, nn.GroupNorm):
        return norm.num_channels // norm.num_groups
    return None


def one_pixel_problem(model: nn.Module, batch: int) -> str | None:
    """Why ``model`` cannot run on ``batch`` samples whose deepest level is one pixel, or None when it can.

    The deepest map needs more than one value per normalization group (`values_per_group`): with
    instance norm never, with batch norm in training from a batch of 2, with group or layer norm
    when each group has 2 or more channels. Every normalizer of ``model`` is asked (the deepest level
    holds the network's smallest maps), the first that cannot is named.

    Examples:
        >>> one_pixel_problem(nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8)), 2) is None
        True
        >>> one_pixel_problem(nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8)), 1)
        'BatchNorm2d in training needs a batch of 2 or more there (or eval mode), got a batch of 1'
    """
    for norm in model.modules():
        values = values_per_group(norm, batch)
        if values is None or values > 1:
            continue
        name = type(norm).__name__
        if isinstance(norm, nn.modules.batchnorm._BatchNorm):
            return f"{name} in training needs a batch of 2 or more there (or eval mode), got a batch of {batch}"
        if isinstance(norm, nn.GroupNorm):
            return f"{name} with one channel per group needs more than one pixel there"
        return f"{name} needs more than one pixel there"
    return None
