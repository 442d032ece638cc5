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

from .checks import LAYER_ORDERS, check_choice, check_ints, check_odd_kernel, named_class
from .conv import ConvModern, same_padding
from .layers import LayerSpec, check_layer_spec
from .residual import BLOCKS, BlockSpec

__all__ = ["DEFAULT_CHANNELS", "Encoder", "check_channels", "family_spec", "make_unet_stem"]

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

    In ``'new'`` order it is a bare unit (``bare=True``: every block starts with its own norm and
    activation), with a bias (``bias=True``, 0.1.0's layout, unlike `ResNet`'s bias-free
    pre-activation stem); in ``'old'`` order conv -> norm -> act.

    Examples:
        >>> list(make_unet_stem(1, 8, BlockSpec())._modules)
        ['conv']
    """
    kernel = check_odd_kernel(spec.kernel_size, spec.ndim)
    bare = spec.layer_order == "new"
    return named_class(ConvModern, spec.ndim)(
        in_planes, out_planes, kernel, 1, same_padding(kernel), None, spec.normalizer, spec.activator,
        spec.layer_order, bias=True if bare else None, bare=bare,
    )


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
