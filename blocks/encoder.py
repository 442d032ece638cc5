"""The encoder the U-Net family shares: its stem and its stages (`Encoder`), and the family's argument rules.

Own encoder: ``stem`` (one unit at the input resolution) and `Encoder`, the list of stages; level
``i`` is made by ``strides[i]`` from level ``i - 1`` (by default ``(1, 2, 2, ...)``: level ``i`` at
``1 / 2**i`` of the input, sizes rounded up), with ``kernel_sizes[i]`` in every conv. The stem
stays a separate module at the top of each network, so that 0.1.0's state_dict keys (``stem.*``,
``encoder.N.*``) still hold. An outside backbone (``encoder=``) is read by `blocks.backbones.read_backbone`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from .checks import LAYER_ORDERS, check_bool, check_choice, check_ints, check_odd_kernel, is_int, named_class
from .conv import ConvModern, same_padding
from .layers import DropoutSpec, LayerSpec, check_layer_spec, make_dropout
from .levels import check_kernel_sizes, check_strides, default_strides, reductions_of
from .residual import HIDDEN_WIDTHS, SHORTCUTS, STAGE_BLOCKS, BlockSpec

__all__ = [
    "DEFAULT_CHANNELS", "Encoder", "check_channels", "check_hidden_planes", "family_levels", "family_spec",
    "make_unet_stem",
]

DEFAULT_CHANNELS = (64, 128, 256, 512, 1024)
"""Channels per level of the default U-Net family."""


def check_channels(channels: Any) -> tuple[int, ...]:
    """Return ``channels`` as a tuple of at least two positive ints, else raise a ValueError.

    Examples:
        >>> check_channels([4, 8])
        (4, 8)
    """
    try:
        values = check_ints("channels", channels)
    except ValueError:
        values = ()
    if len(values) < 2:
        raise ValueError(
            f"channels={channels!r} must be a sequence of at least 2 positive ints, one per level, "
            f"e.g. {DEFAULT_CHANNELS}"
        )
    return values


def family_spec(
    block: str,
    kernel_size: Any,
    normalizer: LayerSpec,
    activator: LayerSpec,
    layer_order: str,
    ndim: int,
    *,
    width: str = "narrow",
    bias: bool | None = None,
    dropout: DropoutSpec = None,
    shortcut: str = "auto",
) -> BlockSpec:
    """Check the block arguments every network of the U-Net family takes; return them as one `BlockSpec`.

    Raises:
        ValueError: For any argument out of its allowed values.

    Examples:
        >>> family_spec("plain", 5, "batch", "relu", "old", 1).kernel_size
        (5,)
    """
    check_choice("block", block, STAGE_BLOCKS)
    check_layer_spec(normalizer, "normalizer")
    check_layer_spec(activator, "activator")
    check_choice("layer_order", layer_order, LAYER_ORDERS)
    check_choice("shortcut", shortcut, SHORTCUTS)
    if bias is not None:
        check_bool("bias", bias)
    make_dropout(dropout)  # checks the spec
    kernel = check_odd_kernel(kernel_size, ndim)
    return BlockSpec(block, kernel, normalizer, activator, layer_order, width, ndim, bias, dropout, shortcut)


def check_hidden_planes(value: Any, levels: int) -> tuple[str, tuple[int | None, ...]]:
    """The hidden width of a network's blocks: a rule of `HIDDEN_WIDTHS`, or explicit per level.

    Args:
        value: None (the family's ``'narrow'`` rule), a rule name, or ``levels`` positive ints
            (nnU-Net's ``bottleneck_channels``: every block of level ``i`` is ``value[i]`` wide).
        levels: The number of levels.

    Returns:
        The rule and one explicit width (or None) per level.

    Raises:
        ValueError: For an unknown rule or a wrong count of widths.

    Examples:
        >>> check_hidden_planes("output", 2), check_hidden_planes((4, 8), 2)
        (('output', (None, None)), ('narrow', (4, 8)))
    """
    if value is None or isinstance(value, str):
        rule = check_choice("hidden_planes", "narrow" if value is None else value, tuple(HIDDEN_WIDTHS))
        return rule, (None,) * levels
    if is_int(value):
        value = (value,) * levels
    try:
        return "narrow", check_ints("hidden_planes", value, levels)
    except ValueError:
        raise ValueError(
            f"hidden_planes={value!r} must be a rule in {sorted(HIDDEN_WIDTHS)}, or {levels} positive ints "
            "(the blocks' width at each level)"
        ) from None


def make_unet_stem(in_planes: int, out_planes: int, spec: BlockSpec) -> ConvModern:
    """The U-Net family's stem: one stride-1 unit ``in_planes -> out_planes`` at the input resolution.

    In ``'new'`` order it is a bare unit (``bare=True``: every block starts with its own norm and
    activation), with a bias (``bias=True``, 0.1.0's layout, unlike `ResNet`'s bias-free
    pre-activation stem); in ``'old'`` order conv -> [dropout] -> norm -> act (nnU-Net's stem).
    The spec's ``bias``, when not None, decides the bias in either order.

    Examples:
        >>> list(make_unet_stem(1, 8, BlockSpec())._modules)
        ['conv']
    """
    kernel = check_odd_kernel(spec.kernel_size, spec.ndim)
    bare = spec.layer_order == "new"
    bias = spec.bias if spec.bias is not None else (True if bare else None)
    return named_class(ConvModern, spec.ndim)(
        in_planes, out_planes, kernel, 1, same_padding(kernel), None, spec.normalizer, spec.activator,
        spec.layer_order, bias=bias, dropout=spec.dropout, bare=bare,
    )


def family_levels(
    levels: int, strides: Any, kernel_sizes: Any, kernel_size: Any, ndim: int
) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
    """The per-level strides and kernel sizes of a network of the family, checked.

    ``strides=None`` is the default layout ``(1, 2, 2, ...)``; ``kernel_sizes=None`` is
    ``kernel_size`` at every level. Giving ``kernel_sizes`` with a ``kernel_size`` other than its
    default (3) is refused: one of them would be ignored.

    Raises:
        ValueError: For a malformed ``strides`` or ``kernel_sizes`` (see `blocks.levels`), or both
            kernel arguments.

    Examples:
        >>> family_levels(2, [1, (1, 2)], None, 5, 2)
        (((1, 1), (1, 2)), ((5, 5), (5, 5)))
    """
    strides = default_strides(levels, ndim) if strides is None else check_strides(strides, levels, ndim)
    if kernel_sizes is None:
        return strides, (check_odd_kernel(kernel_size, ndim),) * levels
    if kernel_size != 3:
        raise ValueError(
            f"kernel_sizes={kernel_sizes!r} and kernel_size={kernel_size!r} were both given; give kernel_sizes "
            "(one per level) or kernel_size (every level), not both"
        )
    return strides, check_kernel_sizes(kernel_sizes, levels, ndim)


class Encoder(nn.ModuleList):
    """The stages of the own encoder: stage ``i`` outputs level ``i``, made by ``strides[i]`` from its input.

    Stage 0 starts from ``in_planes`` (the stem's output, by default ``channels[0]``); each stage
    starts with a block of stride ``strides[i]`` (``n -> ceil(n / s)`` per side) that changes the
    channels, then ``layers[i] - 1`` more blocks, all built by ``spec`` with level ``i``'s kernel
    size (and hidden width, if given). By default stage 0 keeps the size and each next one halves
    it. A stage of 0 blocks (the identity) is allowed where nothing changes.

    Args:
        channels: Channels per level.
        layers: Blocks per level.
        spec: How the blocks are built (type, kernel, normalizer, activator, order, dimension).
        strides: One stride per level and dimension; None for ``(1, 2, 2, ...)``.
        kernel_sizes: One kernel size per level and dimension; None for ``spec.kernel_size`` everywhere.
        in_planes: Input channels of stage 0; None for ``channels[0]``.
        hidden_planes: An explicit hidden width per level (None entries: the spec's rule), or None.
        dilations: One dilation per level and dimension (`blocks.levels.dilated_levels`; a level's
            first block keeps the level before's); None for no dilation.

    Attributes:
        feature_info: timm's description of the outputs: ``num_chs``, ``reduction`` (relative to the
            stem's input, the largest of the dimensions), ``reductions`` (per dimension) and
            ``module`` (``'encoder.i'``) per level.

    Examples:
        >>> import torch
        >>> encoder = Encoder((4, 8), (1, 1), BlockSpec(ndim=1))
        >>> [tuple(f.shape) for f in encoder(torch.zeros(1, 4, 9))]
        [(1, 4, 9), (1, 8, 5)]
        >>> encoder = Encoder((2, 4), (1, 1), BlockSpec(ndim=2), strides=((1, 1), (1, 2)))
        >>> [tuple(f.shape) for f in encoder(torch.zeros(1, 2, 5, 9))]
        [(1, 2, 5, 9), (1, 4, 5, 5)]
    """

    def __init__(
        self,
        channels: Sequence[int],
        layers: Sequence[int],
        spec: BlockSpec,
        strides: Sequence[Sequence[int]] | None = None,
        kernel_sizes: Sequence[Sequence[int]] | None = None,
        dilations: Sequence[Sequence[int]] | None = None,
        *,
        in_planes: int | None = None,
        hidden_planes: Sequence[int | None] | None = None,
    ) -> None:
        strides = default_strides(len(channels), spec.ndim) if strides is None else strides
        kernels = (spec.kernel_size,) * len(channels) if kernel_sizes is None else kernel_sizes
        dilated = ((1,) * spec.ndim,) * len(channels) if dilations is None else dilations
        hidden = (None,) * len(channels) if hidden_planes is None else hidden_planes
        ins = [channels[0] if in_planes is None else in_planes, *channels[:-1]]
        super().__init__(
            spec.at_level(kernels[i], hidden[i]).stage(
                ins[i], channels[i], layers[i], stride=strides[i], dilation=dilated[i],
                first_dilation=dilated[max(i - 1, 0)],
            )
            for i in range(len(channels))
        )
        self.feature_info = [
            {"num_chs": c, "reduction": max(r), "reductions": r, "module": f"encoder.{i}"}
            for i, (c, r) in enumerate(zip(channels, reductions_of(strides)))
        ]

    def forward(self, x: Tensor) -> list[Tensor]:
        """Every stage's output, shallowest first."""
        features = []
        for stage in self:
            x = stage(x)
            features.append(x)
        return features
