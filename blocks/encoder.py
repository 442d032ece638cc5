"""The encoder the U-Net family shares: its stem, its stages (`Encoder`), and the reading of outside backbones.

Own encoder: ``stem`` (one unit at the input resolution) and `Encoder`, the list of stages; level
``i`` is at ``1 / 2**i`` of the input (sizes rounded up). The stem stays a separate module at the top
of each network, so that 0.1.0's state_dict keys (``stem.*``, ``encoder.N.*``) still hold.

An outside backbone (``encoder=``) is read by `blocks.backbones.read_backbone`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from .checks import LAYER_ORDERS, PER_DIMENSION, check_choice, check_tuple, named_class
from .conv import ConvModern
from .layers import LayerSpec, check_layer_spec
from .residual import BLOCKS, BlockSpec

__all__ = ["DEFAULT_CHANNELS", "Encoder", "check_channels", "check_layers", "check_odd_kernel", "family_spec",
           "make_unet_stem", "same_padding"]

DEFAULT_CHANNELS = (64, 128, 256, 512, 1024)
"""Channels per level of the default U-Net family."""


def check_odd_kernel(kernel_size: Any, ndim: int = 2) -> tuple[int, ...]:
    """Return ``kernel_size`` as one odd int per dimension, else raise a ValueError (blocks need 'same' padding)."""
    kernel = check_tuple("kernel_size", kernel_size, ndim)
    if any(k % 2 == 0 for k in kernel):
        raise ValueError(
            f"kernel_size={kernel_size!r} must be odd (an int or {PER_DIMENSION[ndim].split(' (')[0]}), "
            "so blocks keep the size"
        )
    return kernel


def same_padding(kernel: Sequence[int]) -> tuple[int, ...]:
    """The padding that keeps the size of a stride-1 conv with an odd ``kernel``: ``(k - 1) // 2``."""
    return tuple((k - 1) // 2 for k in kernel)


def check_channels(channels: Any) -> tuple[int, ...]:
    """Return ``channels`` as a tuple of at least two positive ints, else raise a ValueError."""
    if (
        isinstance(channels, (str, bytes))
        or not isinstance(channels, Sequence)
        or len(channels) < 2
        or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in channels)
    ):
        raise ValueError(
            f"channels={channels!r} must be a sequence of at least 2 positive ints, one per level, "
            f"e.g. {DEFAULT_CHANNELS}"
        )
    return tuple(channels)


def check_layers(layers: Any, levels: int) -> tuple[int, ...]:
    """Return ``layers`` as one positive int per level, else raise a ValueError."""
    counts = (layers,) * levels if isinstance(layers, int) and not isinstance(layers, bool) else layers
    if (
        isinstance(counts, (str, bytes))
        or not isinstance(counts, Sequence)
        or len(counts) != levels
        or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in counts)
    ):
        raise ValueError(
            f"layers={layers!r} must be a positive int or a sequence of {levels} positive ints, one per level"
        )
    return tuple(counts)


def family_spec(
    block: str, kernel_size: Any, normalizer: LayerSpec, activator: LayerSpec, layer_order: str, ndim: int
) -> BlockSpec:
    """Check the block arguments every network of the U-Net family takes; return them as one `BlockSpec`.

    Raises:
        ValueError: For any argument out of its allowed values.

    Examples:
        >>> family_spec("plain", 5, "batch", "relu", "old", 1).kernel_size
        (5,)
    """
    check_choice("block", block, tuple(BLOCKS))
    check_layer_spec(normalizer, "normalizer")
    check_layer_spec(activator, "activator")
    check_choice("layer_order", layer_order, LAYER_ORDERS)
    kernel = check_odd_kernel(kernel_size, ndim)
    return BlockSpec(block, kernel, normalizer, activator, layer_order, "narrow", ndim)


def make_unet_stem(in_planes: int, out_planes: int, spec: BlockSpec) -> ConvModern:
    """The U-Net family's stem: one stride-1 unit ``in_planes -> out_planes`` at the input resolution.

    In ``'new'`` order it is a bare conv with a bias (``bias=True``: every block starts with its own
    norm and activation; 0.1.0's layout, unlike `ResNet`'s bias-free pre-activation stem); in
    ``'old'`` order conv -> norm -> act.

    Examples:
        >>> list(make_unet_stem(1, 8, BlockSpec())._modules)
        ['conv']
    """
    kernel = check_odd_kernel(spec.kernel_size, spec.ndim)
    unit, padding = named_class(ConvModern, spec.ndim), same_padding(kernel)
    if spec.layer_order == "old":
        return unit(in_planes, out_planes, kernel, 1, padding, None, spec.normalizer, spec.activator, "old")
    return unit(in_planes, out_planes, kernel, 1, padding, None, None, None, "new", bias=True)


class Encoder(nn.ModuleList):
    """The stages of the own encoder: stage ``i`` outputs level ``i``, at ``1 / 2**i`` of its input.

    Stage 0 keeps the size (``channels[0] -> channels[0]``); each next stage starts with a stride-2
    block (``n -> ceil(n / 2)``) that changes the channels, then ``layers[i] - 1`` more blocks, all
    built by ``spec``.

    Args:
        channels: Channels per level.
        layers: Blocks per level.
        spec: How the blocks are built (type, kernel, normalizer, activator, order, dimension).

    Attributes:
        feature_info: timm's description of the outputs: ``num_chs``, ``reduction`` (relative to the
            stem's input) and ``module`` (``'encoder.i'``) per level.

    Examples:
        >>> import torch
        >>> encoder = Encoder((4, 8), (1, 1), BlockSpec(ndim=1))
        >>> [tuple(f.shape) for f in encoder(torch.zeros(1, 4, 9))]
        [(1, 4, 9), (1, 8, 5)]
    """

    def __init__(self, channels: Sequence[int], layers: Sequence[int], spec: BlockSpec) -> None:
        super().__init__(
            spec.stage(channels[max(i - 1, 0)], channels[i], layers[i], stride=1 if i == 0 else 2)
            for i in range(len(channels))
        )
        self.feature_info = [
            {"num_chs": c, "reduction": 2**i, "module": f"encoder.{i}"} for i, c in enumerate(channels)
        ]

    def forward(self, x: Tensor) -> list[Tensor]:
        """Every stage's output, shallowest first."""
        features = []
        for stage in self:
            x = stage(x)
            features.append(x)
        return features
