"""The decoder the U-Net family shares (`DecoderStage`, `Decoder`) and its head (`make_head`).

A decoder stage up-scales to exactly the size of its skip, read from the skip tensor at run time
(or to an ``output_size`` given at call time when it has no skip), so any input size comes out at
exactly that size, with nothing cropped or padded.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .checks import check_choice
from .conv import Layers, norm_act
from .encoder import check_odd_kernel
from .layers import torch_layer
from .residual import BLOCKS, BlockSpec

__all__ = ["Decoder", "DecoderStage", "make_head"]


class DecoderStage(nn.Module):
    """One decoder level: up-scale to the skip's exact size, concatenate the skip, fuse with blocks.

    ``up`` is a residual block built with ``scaler='up', stride=2`` (``in_planes -> out_planes``),
    called with the skip's size, so it up-samples to exactly that size in its branch and its
    shortcut. Then ``torch.cat((up, skip))`` and ``blocks``: ``layers`` blocks, the first from
    ``out_planes + skip_planes`` to ``out_planes``. With ``skip_planes=0`` there is no skip and the
    stage up-scales to the ``output_size`` given at call time.

    Args:
        in_planes: Channels of the deeper input.
        skip_planes: Channels of the skip (0 for none).
        out_planes: Channels of the output.
        layers: Number of blocks after the fusion (0 allowed).
        spec: How the blocks are built (type, kernel, normalizer, activator, order, dimension).

    Examples:
        >>> import torch
        >>> stage = DecoderStage(32, 16, 16, layers=1)
        >>> stage(torch.zeros(2, 32, 5, 7), torch.zeros(2, 16, 9, 13)).shape
        torch.Size([2, 16, 9, 13])
    """

    def __init__(
        self,
        in_planes: int,
        skip_planes: int,
        out_planes: int,
        layers: int,
        spec: BlockSpec = BlockSpec(),
    ) -> None:
        super().__init__()
        check_choice("block", spec.block, tuple(BLOCKS))
        check_odd_kernel(spec.kernel_size, spec.ndim)
        for name, value in (("skip_planes", skip_planes), ("layers", layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}={value!r} must be an int >= 0")
        self.in_planes = in_planes
        self.skip_planes = skip_planes
        self.out_planes = out_planes
        self.up = spec.build(in_planes, out_planes, stride=2, scaler="up")
        fused = [out_planes + skip_planes] + [out_planes] * (layers - 1)  # input channels of each block
        self.blocks = nn.Sequential(*(spec.build(planes, out_planes) for planes in fused[:layers]))

    def forward(self, x: Tensor, skip: Tensor | None = None, output_size: Sequence[int] | None = None) -> Tensor:
        """Up-scale ``x`` to the size of ``skip`` (or to ``output_size`` without a skip), fuse, apply the blocks.

        Args:
            x: The deeper features, (B, in_planes, *spatial).
            skip: The encoder features of this level, (B, skip_planes, *spatial').
            output_size: The spatial size when the stage has no skip.

        Returns:
            (B, out_planes, *spatial').
        """
        if skip is not None:
            output_size = skip.shape[2:]
        x = self.up(x, output_size)
        if skip is not None:
            x = torch.cat((x, skip), dim=1)
        return self.blocks(x)


class Decoder(nn.ModuleList):
    """The decoder stages, deepest first: each up-scales to its encoder level's size (and fuses it, in a U-Net).

    ``Decoder(channels, layers, ...)`` builds, for levels ``L-2`` down to 0, a `DecoderStage` from
    ``channels[i + 1]`` to ``channels[i]`` with ``layers[i]`` blocks, then, when the first feature
    is at reduction ``first_reduction > 1`` (a ResNet's is at 1/2), one skip-less up-scaling stage
    ``channels[0] -> channels[0]`` to the input's size. With ``fuses=False`` (an auto-encoder) no
    stage concatenates its level's features: it only up-scales to their size.

    Args:
        channels: Channels per level of the encoder.
        layers: Blocks per level after each fusion.
        spec: How the blocks are built (type, kernel, normalizer, activator, order, dimension).
        first_reduction: Reduction of the encoder's first feature.
        fuses: Concatenate each level's features (U-Net) or only take their size (auto-encoder).

    Examples:
        >>> import torch
        >>> decoder = Decoder((4, 8), (1, 1), BlockSpec(ndim=1))
        >>> decoder([torch.zeros(1, 4, 9), torch.zeros(1, 8, 5)], (9,)).shape
        torch.Size([1, 4, 9])
    """

    def __init__(
        self,
        channels: Sequence[int],
        layers: Sequence[int],
        spec: BlockSpec = BlockSpec(),
        first_reduction: int = 1,
        fuses: bool = True,
    ) -> None:
        stages = [
            DecoderStage(channels[i + 1], channels[i] if fuses else 0, channels[i], layers[i], spec)
            for i in reversed(range(len(channels) - 1))
        ]
        if first_reduction != 1:
            stages.append(DecoderStage(channels[0], 0, channels[0], 0, spec))
        super().__init__(stages)
        self.levels = len(channels) - 1
        self.fuses = fuses

    def forward(self, features: Sequence[Tensor], output_size: Sequence[int]) -> Tensor:
        """Decode the encoder's features (shallowest first); ``output_size`` is the input's spatial size."""
        x = features[-1]
        for i, stage in enumerate(self):
            if i >= self.levels:
                x = stage(x, None, output_size)
            elif self.fuses:
                x = stage(x, features[self.levels - 1 - i])
            else:
                x = stage(x, None, features[self.levels - 1 - i].shape[2:])
        return x


def make_head(in_planes: int, out_planes: int, spec: BlockSpec) -> Layers:
    """The head of the U-Net family: [norm -> act in ``'new'`` order] -> 1x1 conv with bias.

    In ``'new'`` order the blocks leave their sum un-normalized, so the head pre-activates it (with
    `blocks.conv.norm_act`, the unit's own rule; without a normalizer the activation still comes
    first, as in 0.1.0); in ``'old'`` order it is the conv alone.

    Examples:
        >>> list(make_head(8, 2, BlockSpec(normalizer="batch", activator="relu"))._modules)
        ['norm', 'act', 'conv']
    """
    layers = norm_act(in_planes, spec.normalizer, spec.activator, spec.ndim) if spec.layer_order == "new" else {}
    layers["conv"] = torch_layer("Conv", spec.ndim)(in_planes, out_planes, 1)
    return Layers(OrderedDict((name, layer) for name, layer in layers.items() if layer is not None))
