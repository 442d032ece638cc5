"""The decoder the U-Net family shares (`DecoderStage`, `Decoder`) and its head (`make_head`, a unit).

A decoder stage up-scales to exactly the size of its skip, read from the skip tensor at run time
(or to an ``output_size`` given at call time when it has no skip), so any input size comes out at
exactly that size, with nothing cropped or padded by the user. Each stage up-scales by the factor
between its level and the one below (``strides[i + 1]``; 1 where two maps share a reduction).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .checks import (
    check_choice, check_int, check_ints, check_odd_kernel, check_tuple, compact, named_class, resolve_annotations,
)
from .conv import ConvModern, Upsample
from .layers import torch_layer
from .levels import scaled_size, steps_between
from .residual import STAGE_BLOCKS, BlockSpec

__all__ = ["UPSAMPLES", "Decoder", "DecoderStage", "crop_to", "make_head"]

torch.fx.wrap("scaled_size")  # sizes of a traced input are Proxies: fx records the call, the graph computes them

UPSAMPLES = ("block", "interpolate", "nearest", "transpose")
"""``upsample`` values: an up-scaling block (MDNC), a plain (bi/tri)linear interpolation, a
nearest-neighbour one (smp's), or a transposed conv with kernel = stride (nnU-Net's and MONAI's)."""


def crop_to(x: Tensor, size: list[int]) -> Tensor:
    """``x`` cut to its first ``size`` entries in each spatial dimension (a leaf of fx traces).

    A transposed conv of stride ``s`` makes ``s * m`` from ``m = ceil(n / s)``; the trailing
    ``s * m - n < s`` entries are the overhang of the down-sampling's rounding up, cut here so that
    the stage meets its skip's size ``n`` exactly. (A slice would make ``torch.export`` prove
    ``s * ceil(n / s) >= n`` for symbolic ``n``, which it cannot; an index gather needs no proof.)

    Examples:
        >>> crop_to(torch.zeros(1, 2, 10, 8), (9, 8)).shape
        torch.Size([1, 2, 9, 8])
    """
    if torch.jit.is_scripting():  # TorchScript: the same view as eager's slices
        for dim in range(len(size)):
            x = x.narrow(dim + 2, 0, size[dim])
        return x
    if torch.compiler.is_compiling():  # export and compile: a gather, which holds for every size without guards
        for dim, n in enumerate(size, start=2):
            x = x.index_select(dim, torch.arange(n, device=x.device))
        return x
    return x[(..., *(slice(0, n) for n in size))]  # eager: a view, copied once by the concatenation


torch.fx.wrap("crop_to")


class DecoderStage(nn.Module):
    """One decoder level: up-scale to the skip's exact size, concatenate the skip, fuse with blocks.

    ``up`` brings the deeper input to the skip's size, by ``upsample``:

    * ``'block'`` (MDNC's way): a block of the spec's kind built with ``scaler='up'`` and the
      stage's ``stride`` (``in_planes -> out_planes``), called with the skip's size, so it
      up-samples to exactly that size in its branch and its shortcut;
    * ``'interpolate'`` (smp's lighter way) or ``'nearest'`` (smp's): a plain `Upsample` to the
      skip's size, no learnable layer, ``in_planes`` channels kept;
    * ``'transpose'`` (nnU-Net's and MONAI's): a transposed conv ``in_planes -> out_planes`` with
      kernel = stride = ``stride`` (with a bias unless ``spec.bias`` is False), then `crop_to` the
      skip's size.

    Then ``torch.cat((up, skip))`` and ``blocks``: ``layers`` blocks (or units, for ``'conv'``), the
    first from the concatenation's channels to ``out_planes``. With ``skip_planes=0`` there is no
    skip and the stage up-scales to the ``output_size`` given at call time. A stride of 1 (two maps
    at one reduction) up-samples nothing.

    Args:
        in_planes: Channels of the deeper input.
        skip_planes: Channels of the skip (0 for none).
        out_planes: Channels of the output.
        layers: Number of blocks after the fusion (0 allowed, when the channels need no change).
        spec: How the blocks are built (type, kernel, normalizer, activator, order, dimension).
        upsample: ``'block'``, ``'interpolate'``, ``'nearest'`` or ``'transpose'``.
        stride: The up-scaling factor, an int or one per dimension.

    Examples:
        >>> import torch
        >>> stage = DecoderStage(32, 16, 16, layers=1)
        >>> stage(torch.zeros(2, 32, 5, 7), torch.zeros(2, 16, 9, 13)).shape
        torch.Size([2, 16, 9, 13])
        >>> DecoderStage(8, 4, 4, 1, BlockSpec(ndim=1), "transpose", stride=3)(torch.zeros(1, 8, 3), torch.zeros(1, 4, 8)).shape
        torch.Size([1, 4, 8])
    """

    def __init__(
        self,
        in_planes: int,
        skip_planes: int,
        out_planes: int,
        layers: int,
        spec: BlockSpec = BlockSpec(),
        upsample: str = "block",
        stride: int | Sequence[int] = 2,
    ) -> None:
        super().__init__()
        check_choice("block", spec.block, STAGE_BLOCKS)
        check_choice("upsample", upsample, UPSAMPLES)
        check_odd_kernel(spec.kernel_size, spec.ndim)
        check_int("skip_planes", skip_planes, minimum=0)
        check_int("layers", layers, minimum=0)
        stride = check_tuple("stride", stride, spec.ndim)
        self.in_planes = in_planes
        self.skip_planes = skip_planes
        self.out_planes = out_planes
        self.upsample = upsample
        self.transposes = upsample == "transpose"
        scales = any(s != 1 for s in stride)
        if upsample == "block":
            self.up: nn.Module = spec.build(in_planes, out_planes, stride=stride, scaler="up")
            first = out_planes + skip_planes
        elif upsample == "transpose":
            conv = torch_layer("ConvTranspose", spec.ndim)
            self.up = conv(in_planes, out_planes, kernel_size=stride, stride=stride, bias=spec.bias is not False)
            first = out_planes + skip_planes
        else:
            if layers == 0 and in_planes != out_planes:
                raise ValueError(
                    f"upsample={upsample!r} keeps {in_planes} channels, so a stage to {out_planes} channels "
                    "needs at least one block (layers >= 1)"
                )
            nearest = upsample == "nearest"
            self.up = Upsample(scale_factor=stride, ndim=spec.ndim, nearest=nearest) if scales else nn.Identity()
            first = in_planes + skip_planes
        if layers == 0 and skip_planes:
            raise ValueError(f"a stage that fuses a skip of {skip_planes} channels needs at least one block (layers >= 1)")
        self.sized = scales and upsample != "transpose"  # ``up`` takes the target size at call time
        fused = [first] + [out_planes] * (layers - 1)  # input channels of each block
        self.blocks = nn.Sequential(*(spec.build(planes, out_planes) for planes in fused[:layers]))

    __constants__ = ["sized", "transposes"]  # TorchScript compiles only the up-scaling call that applies

    def forward(self, x: Tensor, skip: Tensor | None = None, output_size: list[int] | None = None) -> Tensor:
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
        if self.sized:
            x = self.up(x, output_size)
        elif self.transposes:
            assert output_size is not None  # a stage without a skip is given its size
            x = crop_to(self.up(x), output_size)
        else:
            x = self.up(x)
        if skip is not None:
            x = torch.cat((x, skip), dim=1)
        return self.blocks(x)


def _extra_factors(first: Sequence[int], widths_given: bool) -> list[tuple[int, ...]]:
    """The reductions left after each stage past the skips, from the first map's reduction ``first`` down to 1.

    One stage by default; with ``decoder_channels`` given, one per factor of 2 (legacy layout),
    which needs a power-of-2 reduction in every dimension.
    """
    if all(r == 1 for r in first):
        return []
    if not widths_given:
        return [(1,) * len(first)]
    if any(r & (r - 1) for r in first):
        raise ValueError(
            f"decoder_channels needs an encoder whose first map is at a power-of-2 reduction, got {compact(first)}"
        )
    k = max(first).bit_length() - 1
    return [tuple(min(r, 2 ** (k - 1 - t)) for r in first) for t in range(k)]


class Decoder(nn.ModuleList):
    """The decoder stages, deepest first: each up-scales to its encoder level's size (and fuses it, in a U-Net).

    For levels ``L-2`` down to 0 a `DecoderStage` takes the previous stage's output (at first the
    deepest map, ``channels[-1]``), up-scales by the factor between the two levels' reductions,
    fuses ``channels[i]`` and outputs ``widths`` (by default ``channels[i]``, 0.1.0's layout) with
    ``layers`` blocks (one count per stage, deepest first). When the first map is below the input's
    resolution (a ResNet's is at 1/2, or ``strides[0] > 1``), stages without a skip bring the
    output to the input's size: by default one (an up-scaling stage ``channels[0] -> channels[0]``,
    to exactly the input's size); with ``widths`` given, one per factor of 2 (each up-scaling and
    ``layers[-1]`` blocks, at least one), so ``widths`` has one entry per level down to the input's
    size. With ``fuses=False`` (an auto-encoder) no stage concatenates its level's map: it only
    takes its size.

    While ``deep_supervision`` is True (nnU-Net's switch), `forward` returns every stage's output,
    deepest first, instead of the last one.

    Args:
        channels: Channels per level of the encoder.
        layers: Blocks after each fusion, one count per stage of the levels, deepest first.
        spec: How the blocks are built (type, kernel, normalizer, activator, order, dimension).
        reductions: The reduction of each level's map, an int or one per dimension; None for
            ``1, 2, 4, ...``.
        fuses: Concatenate each level's map (U-Net) or only take its size (auto-encoder).
        widths: Output channels of each stage, deepest first (smp's ``decoder_channels``), or None.
        upsample: How each stage up-scales (see `DecoderStage`).
        kernel_sizes: Kernel size of each level's convs (the stage of level ``i`` uses
            ``kernel_sizes[i]``), or None for ``spec.kernel_size``.
        hidden_planes: An explicit hidden width of each level's blocks (None entries: the spec's
            rule), or None.

    Raises:
        ValueError: If ``widths`` has the wrong length or the reductions do not fit.

    Examples:
        >>> import torch
        >>> decoder = Decoder((4, 8), (1,), BlockSpec(ndim=1))
        >>> decoder([torch.zeros(1, 4, 9), torch.zeros(1, 8, 5)], (9,)).shape
        torch.Size([1, 4, 9])
        >>> [s.out_planes for s in Decoder((4, 8, 16), (1, 1), reductions=(4, 8, 16), widths=(12, 6, 3, 2))]
        [12, 6, 3, 2]
    """

    extra_factors: list[list[int]]
    """The reductions left after each stage past the skips (see `_extra_factors`), one list per stage."""

    def __init__(
        self,
        channels: Sequence[int],
        layers: Sequence[int],
        spec: BlockSpec = BlockSpec(),
        reductions: Sequence[int | Sequence[int]] | None = None,
        fuses: bool = True,
        widths: Sequence[int] | None = None,
        upsample: str = "block",
        kernel_sizes: Sequence[Sequence[int]] | None = None,
        hidden_planes: Sequence[int | None] | None = None,
    ) -> None:
        check_choice("upsample", upsample, UPSAMPLES)
        levels = len(channels) - 1
        ndim = spec.ndim
        if reductions is None:
            reductions = [2**i for i in range(len(channels))]
        per_dim = [check_tuple("reduction", r, ndim) for r in reductions]
        steps = steps_between(per_dim)
        kernels = (spec.kernel_size,) * len(channels) if kernel_sizes is None else kernel_sizes
        hidden = (None,) * len(channels) if hidden_planes is None else hidden_planes
        extra = _extra_factors(per_dim[0], widths is not None)
        if widths is None:
            widths = [channels[i] for i in reversed(range(levels))] + [channels[0]] * len(extra)
            extra_blocks = 0
        else:
            expected = levels + len(extra)
            try:
                widths = check_ints("decoder_channels", widths, expected)
            except ValueError:
                raise ValueError(
                    f"decoder_channels={widths!r} must be {expected} positive ints, one per decoder stage deepest "
                    f"first: {levels} fusing the encoder's maps and {expected - levels} up to the input's size "
                    f"(the first map is at 1/{max(per_dim[0])})"
                ) from None
            extra_blocks = max(1, layers[-1])
        ins = [channels[-1], *widths[:-1]]
        stages = [
            DecoderStage(ins[j], channels[levels - 1 - j] if fuses else 0, widths[j], layers[j],
                         spec.at_level(kernels[levels - 1 - j], hidden[levels - 1 - j]), upsample, steps[levels - 1 - j])
            for j in range(levels)
        ]
        before = [per_dim[0], *extra[:-1]]
        stages += [
            DecoderStage(ins[j], 0, widths[j], extra_blocks, spec.at_level(kernels[0], hidden[0]), upsample,
                         tuple(b // a for b, a in zip(before[t], extra[t])))
            for t, j in enumerate(range(levels, len(widths)))
        ]
        super().__init__(stages)
        self.levels = levels
        self.fuses = fuses
        self.out_planes = widths[-1]
        self.extra_factors = [list(factor) for factor in extra]
        self.deep_supervision = False

    @property
    @torch.jit.unused
    def stage_planes(self) -> list[int]:
        """Output channels of each stage, deepest first (what deep-supervision heads read)."""
        return [stage.out_planes for stage in self]

    def forward(self, features: list[Tensor], output_size: list[int]) -> Tensor | list[Tensor]:
        """Decode the encoder's maps (shallowest first); ``output_size`` is the input's spatial size.

        Returns:
            The last stage's output; every stage's, deepest first, while ``deep_supervision`` is True.
        """
        sizes = [scaled_size(output_size, factor) for factor in self.extra_factors]
        if not self.fuses:
            return self.expand(features[-1], [features[self.levels - 1 - i].shape[2:] for i in range(self.levels)] + sizes)
        x = features[-1]
        outputs: list[Tensor] = []
        for i, stage in enumerate(self):
            if i < self.levels:
                x = stage(x, features[self.levels - 1 - i])
            else:
                x = stage(x, None, sizes[i - self.levels])
            outputs.append(x)
        if self.deep_supervision:
            return outputs
        return x

    def expand(self, x: Tensor, sizes: list[list[int]]) -> Tensor | list[Tensor]:
        """Apply the stages without skips, stage ``j`` up-scaling to exactly ``sizes[j]``.

        Args:
            x: The deepest map, (B, channels[-1], *spatial).
            sizes: One spatial size per stage, deepest first.

        Returns:
            The last stage's output, (B, out_planes, *sizes[-1]); every stage's, deepest first,
                while ``deep_supervision`` is True.
        """
        outputs: list[Tensor] = []
        for j, stage in enumerate(self):
            x = stage(x, None, sizes[j])
            outputs.append(x)
        if self.deep_supervision:
            return outputs
        return x


# TorchScript reads attribute types from class annotations as objects (``extra_factors`` may be empty).
resolve_annotations(Decoder)


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
