"""The decoder the U-Net family shares (`DecoderStage`, `Decoder`) and its head (`make_head`, a unit).

A decoder stage up-scales to exactly the size of its skip, read from the skip tensor at run time
(or to an ``output_size`` given at call time when it has no skip), so any input size comes out at
exactly that size, with nothing cropped or padded.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .checks import check_choice, check_int, check_ints, check_odd_kernel, named_class
from .conv import ConvModern, Upsample
from .levels import scaled_size
from .residual import BLOCKS, BlockSpec

__all__ = ["UPSAMPLES", "Decoder", "DecoderStage", "make_head"]

torch.fx.wrap("scaled_size")  # sizes of a traced input are Proxies: fx records the call, the graph computes them

UPSAMPLES = ("block", "interpolate", "nearest")
"""``upsample`` values: a residual up-scaling block (MDNC), a plain (bi/tri)linear interpolation, or a
nearest-neighbour one (smp's)."""


class DecoderStage(nn.Module):
    """One decoder level: up-scale to the skip's exact size, concatenate the skip, fuse with blocks.

    With ``upsample='block'`` (MDNC's way), ``up`` is a residual block built with ``scaler='up',
    stride=2`` (``in_planes -> out_planes``), called with the skip's size, so it up-samples to
    exactly that size in its branch and its shortcut; then ``torch.cat((up, skip))`` and
    ``blocks``: ``layers`` blocks, the first from ``out_planes + skip_planes`` to ``out_planes``.
    With ``upsample='interpolate'`` (smp's lighter way), ``up`` is a plain `Upsample` to the skip's
    size (no learnable layer, ``in_planes`` channels kept) and the first block reads
    ``in_planes + skip_planes``; ``upsample='nearest'`` is the same with nearest-neighbour
    up-sampling, as smp's decoder. With ``skip_planes=0`` there is no skip and the stage up-scales to
    the ``output_size`` given at call time.

    Args:
        in_planes: Channels of the deeper input.
        skip_planes: Channels of the skip (0 for none).
        out_planes: Channels of the output.
        layers: Number of blocks after the fusion (0 allowed, when the channels need no change).
        spec: How the blocks are built (type, kernel, normalizer, activator, order, dimension).
        upsample: ``'block'``, ``'interpolate'`` or ``'nearest'``.

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
        upsample: str = "block",
    ) -> None:
        super().__init__()
        check_choice("block", spec.block, tuple(BLOCKS))
        check_choice("upsample", upsample, UPSAMPLES)
        check_odd_kernel(spec.kernel_size, spec.ndim)
        check_int("skip_planes", skip_planes, minimum=0)
        check_int("layers", layers, minimum=0)
        self.in_planes = in_planes
        self.skip_planes = skip_planes
        self.out_planes = out_planes
        if upsample == "block":
            self.up: nn.Module = spec.build(in_planes, out_planes, stride=2, scaler="up")
            fused = [out_planes + skip_planes] + [out_planes] * (layers - 1)  # input channels of each block
        else:
            if layers == 0 and in_planes != out_planes:
                raise ValueError(
                    f"upsample={upsample!r} keeps {in_planes} channels, so a stage to {out_planes} channels "
                    "needs at least one block (layers >= 1)"
                )
            self.up = Upsample(scale_factor=2, ndim=spec.ndim, nearest=upsample == "nearest")
            fused = [in_planes + skip_planes] + [out_planes] * (layers - 1)
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

    For levels ``L-2`` down to 0 a `DecoderStage` takes the previous stage's output (at first the
    deepest map, ``channels[-1]``), fuses ``channels[i]`` and outputs ``widths`` (by default
    ``channels[i]``, 0.1.0's layout) with ``layers[i]`` blocks. When the first map is at a reduction
    ``first_reduction > 1`` (a ResNet's is at 1/2), stages without a skip bring the output to the
    input's size: by default one (an up-scaling block ``channels[0] -> channels[0]``, to exactly the
    input's size); with ``widths`` given, one per factor of 2 (each up-scaling and ``layers[0]``
    blocks, at least one), so ``widths`` has one entry per level down to the input's size. With
    ``fuses=False`` (an auto-encoder) no stage concatenates its level's map: it only takes its size.

    Args:
        channels: Channels per level of the encoder.
        layers: Blocks per level after each fusion.
        spec: How the blocks are built (type, kernel, normalizer, activator, order, dimension).
        first_reduction: Reduction of the encoder's first map.
        fuses: Concatenate each level's map (U-Net) or only take its size (auto-encoder).
        widths: Output channels of each stage, deepest first (smp's ``decoder_channels``), or None.
        upsample: How each stage up-scales: ``'block'``, ``'interpolate'`` or ``'nearest'`` (see `DecoderStage`).

    Raises:
        ValueError: If ``widths`` has the wrong length or ``first_reduction`` is not a power of 2.

    Examples:
        >>> import torch
        >>> decoder = Decoder((4, 8), (1, 1), BlockSpec(ndim=1))
        >>> decoder([torch.zeros(1, 4, 9), torch.zeros(1, 8, 5)], (9,)).shape
        torch.Size([1, 4, 9])
        >>> [s.out_planes for s in Decoder((4, 8, 16), (1, 1, 1), first_reduction=4, widths=(12, 6, 3, 2))]
        [12, 6, 3, 2]
    """

    def __init__(
        self,
        channels: Sequence[int],
        layers: Sequence[int],
        spec: BlockSpec = BlockSpec(),
        first_reduction: int = 1,
        fuses: bool = True,
        widths: Sequence[int] | None = None,
        upsample: str = "block",
    ) -> None:
        check_choice("upsample", upsample, UPSAMPLES)
        levels = len(channels) - 1
        if widths is None:
            widths = [channels[i] for i in reversed(range(levels))] + ([channels[0]] if first_reduction != 1 else [])
            extra_blocks = 0
        else:
            if first_reduction & (first_reduction - 1):
                raise ValueError(
                    f"decoder_channels needs an encoder whose first map is at a power-of-2 reduction, got "
                    f"{first_reduction}"
                )
            expected = levels + first_reduction.bit_length() - 1
            try:
                widths = check_ints("decoder_channels", widths, expected)
            except ValueError:
                raise ValueError(
                    f"decoder_channels={widths!r} must be {expected} positive ints, one per decoder stage deepest "
                    f"first: {levels} fusing the encoder's maps and {expected - levels} up to the input's size "
                    f"(the first map is at 1/{first_reduction})"
                ) from None
            extra_blocks = max(1, layers[0])
        ins = [channels[-1], *widths[:-1]]
        stages = [
            DecoderStage(ins[j], channels[levels - 1 - j] if fuses else 0, widths[j], layers[levels - 1 - j], spec,
                         upsample)
            for j in range(levels)
        ]
        stages += [DecoderStage(ins[j], 0, widths[j], extra_blocks, spec, upsample) for j in range(levels, len(widths))]
        super().__init__(stages)
        self.levels = levels
        self.fuses = fuses
        self.out_planes = widths[-1]

    def forward(self, features: Sequence[Tensor], output_size: Sequence[int]) -> Tensor:
        """Decode the encoder's maps (shallowest first); ``output_size`` is the input's spatial size."""
        if not self.fuses:
            sizes = [features[self.levels - 1 - i].shape[2:] for i in range(self.levels)]
            return self.expand(features[-1], sizes + self._extra_sizes(output_size))
        x = features[-1]
        extra = self._extra_sizes(output_size)
        for i, stage in enumerate(self):
            x = stage(x, features[self.levels - 1 - i]) if i < self.levels else stage(x, None, extra[i - self.levels])
        return x

    def expand(self, x: Tensor, sizes: Sequence[Sequence[int]]) -> Tensor:
        """Apply the stages without skips, stage ``j`` up-scaling to exactly ``sizes[j]``.

        Args:
            x: The deepest map, (B, channels[-1], *spatial).
            sizes: One spatial size per stage, deepest first.

        Returns:
            The last stage's output, (B, out_planes, *sizes[-1]).
        """
        for stage, size in zip(self, sizes):
            x = stage(x, None, size)
        return x

    def _extra_sizes(self, output_size: Sequence[int]) -> list[Sequence[int]]:
        """The sizes of the stages past the skips: each halves the remaining factor, ending at the input's size."""
        extra = len(self) - self.levels
        return [scaled_size(output_size, 2 ** (extra - 1 - j)) for j in range(extra)]


def make_head(in_planes: int, out_planes: int, spec: BlockSpec) -> ConvModern:
    """The head of the U-Net family: a 1x1 unit with bias and a linear output (``linear_output=True``).

    In ``'new'`` order the blocks leave their sum un-normalized, so the head pre-activates it:
    norm -> act -> conv (the activation first even without a normalizer, as in 0.1.0); in ``'old'``
    order it is the conv alone.

    Examples:
        >>> list(make_head(8, 2, BlockSpec(normalizer="batch", activator="relu"))._modules)
        ['norm', 'act', 'conv']
    """
    new = spec.layer_order == "new"
    return named_class(ConvModern, spec.ndim)(
        in_planes, out_planes, 1, 1, 0, None, spec.normalizer if new else None, spec.activator if new else None,
        spec.layer_order, bias=True, linear_output=True,
    )
