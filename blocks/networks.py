"""EncoderNet1d/2d/3d (a map down to a vector) and DecoderNet1d/2d/3d (a vector up to a map of exact size).

Both are built from the U-Net family's parts (`blocks.encoder`, `blocks.decoder`) with the U-Net's
defaults: ``channels=(64, 128, 256, 512, 1024)``, ``layers=2``, bottleneck blocks of kernel 3,
``'pinst'`` + ``'prelu'`` in ``'new'`` order, PyTorch's default initialisation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import ClassVar

import torch
from torch import Tensor, nn

from .checks import (
    IntOrTuple,
    check_input,
    check_min_size,
    check_per_level,
    check_positive_int,
    check_tensor,
    check_tuple,
    compact,
    resolve_ndim,
)
from .configurable import Configurable, records_config
from .conv import NormAct
from .decoder import Decoder, make_head
from .encoder import DEFAULT_CHANNELS, Encoder, check_channels, family_levels, family_spec, make_unet_stem
from .features import FeatureAPI, FeatureInfo, check_global_pool, check_num_classes
from .layers import LayerSpec
from .levels import PerLevel, dilated_levels, level_sizes, min_sizes, one_pixel_problem, reductions_of
from .residual import GradCheckpointing

__all__ = [
    "DecoderNet", "DecoderNet1d", "DecoderNet2d", "DecoderNet3d", "EncoderNet", "EncoderNet1d", "EncoderNet2d",
    "EncoderNet3d",
]


INPUT_SIZES = {1: (4096,), 2: (256, 256), 3: (64, 64, 64)}
"""The input size an `EncoderNet`'s ``pretrained_cfg`` names per dimension (the registry's default input)."""


class EncoderNet(Configurable, FeatureAPI, GradCheckpointing, nn.Module):
    """The U-Net family's encoder, then global average pooling and a linear layer: (B, C, *spatial) -> (B, out_length).

    ``stem`` (one unit at the input resolution) -> ``encoder`` (one stage per level, each next one
    halving the size) -> ``norm_act`` (``'new'`` order only, as the pre-activation ResNet) ->
    ``avgpool`` -> ``fc``. Any input size works (the deepest level needs more than one pixel). It has
    timm's feature API (`blocks.features.FeatureAPI`): ``forward_features`` is the last map,
    ``forward_intermediates`` the map of every level (the last one after ``norm_act``).
    `EncoderNet1d`, `EncoderNet2d` and `EncoderNet3d` are this class with ``ndim`` fixed.

    Args:
        in_planes: Input channels.
        out_length: Length of the output vector; 0 for the pooled features (B, channels[-1]);
            None for the last feature map.
        channels: Channels per level, at least two; None means (64, 128, 256, 512, 1024).
        layers: Blocks per level, an int or one per level.
        block: ``'bottleneck'`` or ``'plain'``.
        kernel_size: Odd kernel size of every block and of the stem, an int or one per dimension.
        normalizer: Normalizer spec, see `blocks.layers`.
        activator: Activator spec, see `blocks.layers`.
        layer_order: ``'new'`` (pre-activation) or ``'old'``.
        strides: One entry per level, an int or one per dimension (see `UNet`); None for ``(1, 2, 2, ...)``.
        kernel_sizes: One entry per level, an int or one per dimension; None for ``kernel_size`` everywhere.
        global_pool: The head's global pooling (timm's values): ``'avg'``, ``'max'``, ``'avgmax'``
            (half the sum of both) or ``''`` (none; only with ``out_length=0`` or None).
        output_stride: 8, 16 or 32: the last map at most at this reduction, the levels past it
            dilated instead of strided, as in `blocks.ResNet` (a level's first block keeps the
            dilation of the level before); None (or a value at or above the deepest reduction,
            16 with five levels) changes nothing.
        ndim: Spatial dimensions, 1, 2 or 3 (fixed by the named classes; 2 by default here).

    Attributes:
        feature_info: Channels, reduction (the largest of the dimensions), reductions (per
            dimension) and module of each level's map.
        num_features: Channels of the last map.
        strides: The stride of each level, one int per dimension (1 in a dilated level).
        dilations: The dilation of each level's later blocks, one int per dimension.
        global_pool: The head's global pooling (`reset_classifier` changes it).
        head_hidden_size: Width of the features that reach ``fc`` (``num_features``; timm's name).
        pretrained_cfg: timm's description (`blocks.features.timm_cfg`), at the registry's default
            input (256 x 256 in 2-D); ``default_cfg`` is the same.
        min_size: An input with a spatial size of at least ``min_size`` always works, smaller ones where every
            normalizer can take a one-pixel deepest map (`blocks.levels.one_pixel_problem`); an int, or one per
            dimension.

    Raises:
        ValueError: For any argument out of its allowed values.

    Examples:
        >>> import torch
        >>> net = EncoderNet2d(in_planes=1, out_length=3, channels=(4, 8, 16), layers=1)
        >>> net(torch.zeros(2, 1, 37, 53)).shape
        torch.Size([2, 3])
        >>> net.forward_features(torch.zeros(2, 1, 37, 53)).shape
        torch.Size([2, 16, 10, 14])
    """

    fixed_ndim: ClassVar[int | None] = None
    """The dimension of the named classes; None for the generic class."""

    head_argument = "out_length"

    @records_config
    def __init__(
        self,
        in_planes: int = 1,
        out_length: int | None = 2,
        channels: Sequence[int] | None = None,
        layers: int | Sequence[int] = 2,
        block: str = "bottleneck",
        kernel_size: IntOrTuple = 3,
        normalizer: LayerSpec = "pinst",
        activator: LayerSpec = "prelu",
        layer_order: str = "new",
        *,
        strides: PerLevel | None = None,
        kernel_sizes: PerLevel | None = None,
        global_pool: str = "avg",
        output_stride: int | None = None,
        ndim: int | None = None,
    ) -> None:
        super().__init__()
        self.ndim = ndim = resolve_ndim(type(self), ndim)
        self.in_planes = check_positive_int("in_planes", in_planes)
        out_length = check_num_classes(out_length)
        check_global_pool(global_pool)
        spec = family_spec(block, kernel_size, normalizer, activator, layer_order, ndim)
        channels = DEFAULT_CHANNELS if channels is None else check_channels(channels)
        counts = check_per_level("layers", layers, len(channels))
        strides, self.kernel_sizes = family_levels(len(channels), strides, kernel_sizes, kernel_size, ndim)
        self.strides, self.dilations = dilated_levels(strides, output_stride, (1,) * ndim)

        self.stem = make_unet_stem(in_planes, channels[0], spec.with_kernel(self.kernel_sizes[0]))
        self.encoder = Encoder(channels, counts, spec, self.strides, self.kernel_sizes, self.dilations)
        norm_act = NormAct(channels[-1], normalizer, activator, ndim) if layer_order == "new" else None
        self.norm_act = norm_act if norm_act else None
        self.chain = ["stem", *(f"encoder.{i}" for i in range(len(channels)))]
        self.feature_info = [FeatureInfo(**f) for f in self.encoder.feature_info]  # (TorchScript cannot read the type)
        if self.norm_act is not None:
            self.feature_info[-1] = FeatureInfo(**{**self.feature_info[-1], "module": "norm_act"})
        self.num_features = channels[-1]
        self.init_head(out_length, global_pool, in_planes, INPUT_SIZES[ndim], "stem.conv")

        self.channels = channels
        self.layers = counts
        self.min_size = compact(min_sizes(self.feature_info[-1]["reductions"]))

    @property
    @torch.jit.unused
    def out_length(self) -> int | None:
        """The output length (timm's ``num_classes``)."""
        return self.num_classes

    def check_input(self, x: Tensor) -> None:
        """Raise a clear error unless ``x`` is (B, in_planes, *spatial) with a spatial size of at least ``min_size``."""
        check_input(self, x, self.in_planes, self.ndim)
        check_min_size(self, x, self.min_size, self.feature_info[-1]["reductions"], partial(one_pixel_problem, self))

    def forward_stages(self, x: Tensor) -> Tensor:
        """``stem`` -> each stage of ``encoder`` (``chain``), without the input check or ``norm_act``."""
        x = self.stem(x)
        for stage in self.encoder:
            x = stage(x)
        return x


class DecoderNet(Configurable, GradCheckpointing, nn.Module):
    """A vector up to a map of exactly ``out_size``: linear, reshape, then the U-Net family's up-scaling stages.

    For ``L = len(channels)`` levels of sizes ``out_size``, ``ceil(out_size / 2)``, ... (or as ``strides``
    makes them: level ``i`` is ``ceil(level[i - 1] / strides[i])``, level ``-1`` being ``out_size``): ``fc`` maps
    (B, in_length) to ``channels[-1] * prod(size of level L-1)`` values, reshaped to
    (B, channels[-1], *size of level L-1); ``bottom`` (``layers[-1]`` blocks) works at that level;
    ``decoder`` up-scales level by level, each stage to exactly its level's size (no cropping:
    odd and prime sizes come out exactly), with ``layers[i]`` blocks at level ``i``; ``head`` maps to
    ``out_planes``. With ``in_length=None`` the input is that deepest map itself. `DecoderNet1d`,
    `DecoderNet2d` and `DecoderNet3d` are this class with ``ndim`` fixed.

    Args:
        out_size: Spatial size of the output, an int or one per dimension.
        in_length: Length of the input vector; None to take the deepest map (see ``input_size``).
        out_planes: Output channels.
        channels: Channels per level, shallowest first, at least two; None means (64, ..., 1024).
        layers: Blocks per level, an int or one per level.
        block: ``'bottleneck'`` or ``'plain'``.
        kernel_size: Odd kernel size of every block, an int or one per dimension.
        normalizer: Normalizer spec, see `blocks.layers`.
        activator: Activator spec, see `blocks.layers`.
        layer_order: ``'new'`` (pre-activation) or ``'old'``.
        strides: One entry per level, an int or one per dimension (see `UNet`); None for ``(1, 2, 2, ...)``.
        kernel_sizes: One entry per level, an int or one per dimension; None for ``kernel_size`` everywhere.
        ndim: Spatial dimensions, 1, 2 or 3 (fixed by the named classes; 2 by default here).

    Attributes:
        input_size: The expected input shape without the batch (MDNC's name): ``(in_length,)``, or
            ``(channels[-1], *size of level L-1)``.
        sizes: The size of each level, shallowest first.

    Raises:
        ValueError: For any argument out of its allowed values, or an ``out_size`` too small for
            the depth (the deepest level needs more than one pixel).

    Examples:
        >>> import torch
        >>> net = DecoderNet2d((97, 31), in_length=5, out_planes=2, channels=(4, 8, 16), layers=1)
        >>> net.input_size, net.sizes[-1]
        ((5,), (25, 8))
        >>> net(torch.zeros(3, 5)).shape
        torch.Size([3, 2, 97, 31])
    """

    fixed_ndim: ClassVar[int | None] = None
    """The dimension of the named classes; None for the generic class."""

    @records_config
    def __init__(
        self,
        out_size: IntOrTuple,
        in_length: int | None = 2,
        out_planes: int = 1,
        channels: Sequence[int] | None = None,
        layers: int | Sequence[int] = 2,
        block: str = "bottleneck",
        kernel_size: IntOrTuple = 3,
        normalizer: LayerSpec = "pinst",
        activator: LayerSpec = "prelu",
        layer_order: str = "new",
        *,
        strides: PerLevel | None = None,
        kernel_sizes: PerLevel | None = None,
        ndim: int | None = None,
    ) -> None:
        super().__init__()
        self.ndim = ndim = resolve_ndim(type(self), ndim)
        out_size = check_tuple("out_size", out_size, ndim)
        if in_length is not None:
            check_positive_int("in_length", in_length)
        self.out_planes = check_positive_int("out_planes", out_planes)
        spec = family_spec(block, kernel_size, normalizer, activator, layer_order, ndim)
        channels = DEFAULT_CHANNELS if channels is None else check_channels(channels)
        counts = check_per_level("layers", layers, len(channels))
        self.strides, self.kernel_sizes = family_levels(len(channels), strides, kernel_sizes, kernel_size, ndim)
        reductions = reductions_of(self.strides)
        self.sizes = level_sizes(out_size, strides=self.strides)
        if max(self.sizes[-1]) < 2:
            need = compact(min_sizes(reductions[-1]))
            raise ValueError(
                f"out_size={out_size!r} is too small for {len(channels)} levels: the deepest level would be "
                f"{self.sizes[-1]}, and normalization needs more than one pixel; use an out_size with a side "
                f">= {need} or fewer channels (levels)"
            )

        deepest = (channels[-1], *self.sizes[-1])
        self.fc = None if in_length is None else nn.Linear(in_length, math.prod(deepest))
        self.bottom = spec.with_kernel(self.kernel_sizes[-1]).stage(channels[-1], channels[-1], counts[-1])
        self.decoder = Decoder(channels, tuple(reversed(counts[:-1])), spec, reductions, fuses=False,
                               kernel_sizes=self.kernel_sizes)
        self.head = make_head(channels[0], out_planes, spec)
        self.stage_sizes = [*self.sizes[-2::-1], *([out_size] if self.sizes[0] != out_size else [])]

        self.in_length = in_length
        self.input_size = (in_length,) if in_length is not None else deepest
        self.out_size = out_size
        self.channels = channels
        self.layers = counts

    def check_input(self, x: Tensor) -> None:
        """Raise a ValueError unless ``x`` is (B, *input_size); steps aside while fx traces."""
        check_tensor(self, x, (None, *self.input_size), f"(B, {', '.join(map(str, self.input_size))})")

    def forward(self, x: Tensor) -> Tensor:
        """Decode ``x`` to (B, out_planes, *out_size).

        Args:
            x: (B, in_length), or (B, *input_size) with ``in_length=None``.

        Returns:
            (B, out_planes, *out_size): exactly ``out_size``.

        Raises:
            ValueError: If ``x`` does not have the shape (B, *input_size).
        """
        if not torch.jit.is_scripting():
            self.check_input(x)
        if self.fc is not None:
            x = self.fc(x).unflatten(1, [self.channels[-1]] + list(self.sizes[-1]))
        decoded = self.decoder.expand(self.bottom(x), [list(size) for size in self.stage_sizes])
        if isinstance(decoded, list):
            raise ValueError("decoder.deep_supervision is True, but a DecoderNet has no deep-supervision heads")
        return self.head(decoded)


class EncoderNet1d(EncoderNet):
    """`EncoderNet` in 1-D: inputs (B, C, L)."""

    fixed_ndim = 1


class EncoderNet2d(EncoderNet):
    """`EncoderNet` in 2-D: inputs (B, C, H, W)."""

    fixed_ndim = 2


class EncoderNet3d(EncoderNet):
    """`EncoderNet` in 3-D: inputs (B, C, D, H, W)."""

    fixed_ndim = 3


class DecoderNet1d(DecoderNet):
    """`DecoderNet` in 1-D: outputs (B, C, L)."""

    fixed_ndim = 1


class DecoderNet2d(DecoderNet):
    """`DecoderNet` in 2-D: outputs (B, C, H, W)."""

    fixed_ndim = 2


class DecoderNet3d(DecoderNet):
    """`DecoderNet` in 3-D: outputs (B, C, D, H, W)."""

    fixed_ndim = 3
