"""UNet2d: a U-Net of residual blocks that takes any input size and returns exactly that size.

Layout (``L`` levels; level ``i`` is at ``1 / 2**i`` of the input, sizes rounded up)::

    x -> stem -> encoder[0] -> encoder[1] -> ... -> encoder[L-1]
    y <- head <- decoder[L-2] <- ... <- decoder[0] <-------+

``decoder`` is deepest first: ``decoder[j]`` is level ``L-2-j`` and fuses the output of
``encoder[L-2-j]`` (its skip).

* ``stem``: one unit at the input resolution, ``in_planes -> channels[0]``. In ``'new'`` order it is
  a bare conv (with bias), since every block starts with its own norm and activation
  (pre-activation ResNet); in ``'old'`` order it is conv -> norm -> act.
* ``encoder[i]``: ``layers[i]`` blocks; from level 1 on, the first block halves the size (a stride-2
  block, so ``n -> ceil(n / 2)``) and changes the channels.
* ``decoder`` stage of level ``i``: an up-scaling block (``scaler='up'``) from ``channels[i + 1]`` to
  ``channels[i]`` channels, to exactly the skip's size read at run time; then the skip is
  concatenated (``torch.cat``) and ``layers[i]`` blocks fuse ``2 * channels[i] -> channels[i]``.
* ``head``: a 1x1 conv with bias to ``out_planes``, preceded by norm + act in ``'new'`` order (the
  blocks leave their sum un-normalized) and by nothing in ``'old'`` order.
* Every block has hidden width ``min(in, out)``, so a bottleneck is never wider than its ends; plain
  blocks down-scale in their first unit (as torchvision's BasicBlock) and up-scale in their last.

Because every up-scaling goes to a size read from a tensor, any height and width work and the
output has exactly the input's size, with nothing cropped or padded. The only limit is the deepest
level: normalization needs more than one pixel there, so an input must be larger than the deepest
reduction in height or width (``max(H, W) >= min_size``); this rule holds for every normalizer.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .checks import LAYER_ORDERS, IntPair, check_choice, check_pair, check_positive_int
from .checks import check_input as check_shape
from .conv import ConvModern2d
from .layers import LayerSpec, check_layer_spec, make_activator, make_normalizer
from .residual import BlockBottleneck2d, BlockPlain2d, GradCheckpointing

__all__ = ["BLOCKS", "DecoderStage", "UNet2d", "shape_table"]

BLOCKS: dict[str, type[nn.Module]] = {"bottleneck": BlockBottleneck2d, "plain": BlockPlain2d}
"""``block=`` values of the U-Net: name -> residual block class."""

DEFAULT_CHANNELS = (64, 128, 256, 512, 1024)
"""Channels per level of the default U-Net."""


# ------------------------------------------------------------------------------------------ checks


def check_odd_kernel(kernel_size: Any) -> tuple[int, int]:
    """Return ``kernel_size`` as a pair of odd ints, else raise a ValueError (blocks need 'same' padding)."""
    kernel = check_pair("kernel_size", kernel_size)
    if any(k % 2 == 0 for k in kernel):
        raise ValueError(f"kernel_size={kernel_size!r} must be odd (an int or a pair), so blocks keep the size")
    return kernel


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


def backbone_levels(encoder: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Read (channels, reductions) per feature from a backbone's ``feature_info`` (timm's convention).

    Raises:
        ValueError: If ``encoder`` is not an ``nn.Module`` with ``forward_features`` and a
            ``feature_info`` of at least two dicts with increasing ``'reduction'`` and positive ``'num_chs'``.
    """
    expected = (
        "an nn.Module with forward_features(x) -> list[Tensor] and feature_info, a list of dicts with "
        "'num_chs' and 'reduction' per feature (timm's convention), such as blocks.resnet34(num_classes=None)"
    )
    if not isinstance(encoder, nn.Module) or not callable(getattr(encoder, "forward_features", None)):
        raise ValueError(f"encoder={type(encoder).__name__} must be {expected}")
    try:
        info = list(encoder.feature_info)
        channels = tuple(int(f["num_chs"]) for f in info)
        reductions = tuple(int(f["reduction"]) for f in info)
    except (AttributeError, TypeError, KeyError, ValueError) as error:
        raise ValueError(f"encoder={type(encoder).__name__} must be {expected} ({error!r})") from None
    if (
        len(info) < 2
        or min(channels) < 1
        or reductions[0] < 1
        or any(a >= b for a, b in zip(reductions, reductions[1:]))
    ):
        raise ValueError(
            f"encoder={type(encoder).__name__} has feature channels {channels} at reductions {reductions}; "
            "a U-Net needs at least 2 features with positive channels at increasing reductions"
        )
    return channels, reductions


# ---------------------------------------------------------------------------------------- building


def make_block(
    block: str,
    in_planes: int,
    out_planes: int,
    options: dict[str, Any],
    stride: int = 1,
    scaler: str = "down",
) -> nn.Module:
    """The U-Net's block rule: hidden width ``min(in, out)``; plain blocks down-scale in their first unit."""
    kernel = options["kernel_size"]
    extra = {"scale_first": True} if block == "plain" and scaler == "down" and stride != 1 else {}
    return BLOCKS[block](
        in_planes,
        out_planes,
        kernel,
        stride,
        tuple((k - 1) // 2 for k in kernel),
        None,
        options["normalizer"],
        options["activator"],
        options["layer_order"],
        scaler,
        hidden_planes=min(in_planes, out_planes),
        **extra,
    )


def make_head(in_planes: int, out_planes: int, options: dict[str, Any]) -> nn.Sequential:
    """The head: [norm -> act in 'new' order] -> 1x1 conv with bias."""
    layers: dict[str, nn.Module | None] = {}
    if options["layer_order"] == "new":
        layers["norm"] = make_normalizer(options["normalizer"], in_planes)
        layers["act"] = make_activator(options["activator"], in_planes)
    layers["conv"] = nn.Conv2d(in_planes, out_planes, 1)
    return nn.Sequential(OrderedDict((name, layer) for name, layer in layers.items() if layer is not None))


class DecoderStage(nn.Module):
    """One decoder level: up-scale to the skip's exact size, concatenate the skip, fuse with blocks.

    ``up`` is a residual block built with ``scaler='up', stride=2`` (``in_planes -> out_planes``),
    called with the skip's size, so it up-samples bilinearly to exactly that size in its branch and
    its shortcut. Then ``torch.cat((up, skip))`` and ``blocks``: ``layers`` blocks, the first from
    ``out_planes + skip_planes`` to ``out_planes``. With ``skip_planes=0`` there is no skip and the
    stage up-scales to the ``output_size`` given at call time.

    Args:
        in_planes: Channels of the deeper input.
        skip_planes: Channels of the skip (0 for none).
        out_planes: Channels of the output.
        layers: Number of blocks after the fusion (0 allowed).
        block: ``'bottleneck'`` or ``'plain'``.
        kernel_size: Odd kernel size of the blocks.
        normalizer: Normalizer spec, see `blocks.layers`.
        activator: Activator spec, see `blocks.layers`.
        layer_order: ``'new'`` or ``'old'``.

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
        block: str = "bottleneck",
        kernel_size: IntPair = 3,
        normalizer: LayerSpec = "pinst",
        activator: LayerSpec = "prelu",
        layer_order: str = "new",
    ) -> None:
        super().__init__()
        check_choice("block", block, tuple(BLOCKS))
        for name, value in (("skip_planes", skip_planes), ("layers", layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}={value!r} must be an int >= 0")
        options = {"kernel_size": check_odd_kernel(kernel_size), "normalizer": normalizer,
                   "activator": activator, "layer_order": layer_order}
        self.in_planes = in_planes
        self.skip_planes = skip_planes
        self.out_planes = out_planes
        self.up = make_block(block, in_planes, out_planes, options, stride=2, scaler="up")
        fused = [out_planes + skip_planes] + [out_planes] * (layers - 1)  # input channels of each block
        self.blocks = nn.Sequential(*(make_block(block, planes, out_planes, options) for planes in fused[:layers]))

    def forward(self, x: Tensor, skip: Tensor | None = None, output_size: Sequence[int] | None = None) -> Tensor:
        """Up-scale ``x`` to the size of ``skip`` (or to ``output_size`` without a skip), fuse, apply the blocks.

        Args:
            x: The deeper features, (B, in_planes, h, w).
            skip: The encoder features of this level, (B, skip_planes, H, W).
            output_size: (H, W) when the stage has no skip.

        Returns:
            (B, out_planes, H, W).
        """
        if skip is not None:
            output_size = skip.shape[-2:]
        x = self.up(x, output_size)
        if skip is not None:
            x = torch.cat((x, skip), dim=1)
        return self.blocks(x)


class UNet2d(GradCheckpointing, nn.Module):
    """A U-Net of residual blocks: any input height and width, output of exactly that size.

    See the module docstring for the layout. ``normalizer``, ``activator``, ``layer_order``,
    ``block`` and ``kernel_size`` reach every block, the stem and the head.

    With ``encoder=`` a backbone replaces ``stem`` and the own encoder: any ``nn.Module`` with
    ``forward_features(x) -> list[Tensor]`` and ``feature_info`` (timm's convention; e.g.
    ``blocks.resnet34(in_planes=1, num_classes=None)``). ``self.encoder`` is then the backbone,
    ``self.stem`` is None, the levels are its features (``channels`` from their ``'num_chs'``), and,
    when its first feature is below the input resolution (a ResNet's is at 1/2), a last decoder
    stage without skip (one up-scaling block, ``channels[0] -> channels[0]``) brings the output to
    the input's size. ``normalizer``, ``activator``, ``layer_order``, ``block`` and ``kernel_size``
    then build the decoder and head; the backbone keeps its own.

    Args:
        in_planes: Input channels. With ``encoder``, taken from its ``in_planes`` (or timm's
            ``in_chans``) when it has one; a value that differs from it (other than the default 1) raises.
        out_planes: Output channels (classes).
        channels: Channels per level, at least two; level ``i`` is at ``1 / 2**i`` of the input.
            With ``encoder``, the backbone's; a value that differs from them (other than the default) raises.
        layers: Blocks per level, an int or one per level: ``layers[i]`` blocks in encoder stage ``i``
            and ``layers[i]`` blocks after the fusion in the decoder stage of level ``i`` (the deepest
            level has no decoder stage; with ``encoder`` its count is unused).
        block: ``'bottleneck'`` or ``'plain'``.
        kernel_size: Odd kernel size of every block and of the stem, an int or (h, w).
        normalizer: Normalizer spec, see `blocks.layers`.
        activator: Activator spec, see `blocks.layers`.
        layer_order: ``'new'`` (pre-activation) or ``'old'``.
        encoder: A backbone to use instead of the own encoder, or None.

    Attributes:
        min_size: The input must have ``H >= min_size`` or ``W >= min_size`` (deepest reduction + 1).
        reductions: Down-scaling factor of each level.

    Raises:
        ValueError: For any argument out of its allowed values.

    Examples:
        >>> import torch
        >>> net = UNet2d(in_planes=1, out_planes=2, channels=(8, 16, 32), layers=1)
        >>> net(torch.zeros(1, 1, 37, 53)).shape
        torch.Size([1, 2, 37, 53])
        >>> [tuple(f.shape[1:]) for f in net.encode(torch.zeros(1, 1, 37, 53))]
        [(8, 37, 53), (16, 19, 27), (32, 10, 14)]
    """

    def __init__(
        self,
        in_planes: int = 1,
        out_planes: int = 1,
        channels: Sequence[int] = DEFAULT_CHANNELS,
        layers: int | Sequence[int] = 2,
        block: str = "bottleneck",
        kernel_size: IntPair = 3,
        normalizer: LayerSpec = "pinst",
        activator: LayerSpec = "prelu",
        layer_order: str = "new",
        encoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        check_positive_int("in_planes", in_planes)
        check_positive_int("out_planes", out_planes)
        check_choice("block", block, tuple(BLOCKS))
        check_layer_spec(normalizer, "normalizer")
        check_layer_spec(activator, "activator")
        check_choice("layer_order", layer_order, LAYER_ORDERS)
        kernel = check_odd_kernel(kernel_size)
        options = {"kernel_size": kernel, "normalizer": normalizer, "activator": activator,
                   "layer_order": layer_order}

        if encoder is None:
            channels = check_channels(channels)
            reductions = tuple(2**i for i in range(len(channels)))
            counts = check_layers(layers, len(channels))
            old = layer_order == "old"
            self.stem: nn.Module | None = ConvModern2d(
                in_planes, channels[0], kernel, 1, tuple((k - 1) // 2 for k in kernel), None,
                normalizer if old else None, activator if old else None, layer_order,
            )
            self.encoder = nn.ModuleList(
                nn.Sequential(
                    make_block(block, channels[max(i - 1, 0)], channels[i], options, stride=1 if i == 0 else 2),
                    *(make_block(block, channels[i], channels[i], options) for _ in range(counts[i] - 1)),
                )
                for i in range(len(channels))
            )
        else:
            given = tuple(channels) if isinstance(channels, Sequence) else channels
            channels, reductions = backbone_levels(encoder)
            if given not in (DEFAULT_CHANNELS, channels):
                raise ValueError(
                    f"channels={given!r} does not match the encoder's feature channels {channels}; "
                    "leave channels at its default when giving encoder="
                )
            declared = getattr(encoder, "in_planes", getattr(encoder, "in_chans", None))
            if declared is not None and in_planes not in (1, declared):
                raise ValueError(f"in_planes={in_planes} does not match the encoder's {declared} input channels")
            in_planes = in_planes if declared is None else int(declared)
            counts = check_layers(layers, len(channels))
            self.stem = None
            self.encoder = encoder

        stages = [
            DecoderStage(channels[i + 1], channels[i], channels[i], counts[i], block, **options)
            for i in reversed(range(len(channels) - 1))
        ]
        if reductions[0] != 1:
            stages.append(DecoderStage(channels[0], 0, channels[0], 0, block, **options))
        self.decoder = nn.ModuleList(stages)
        self.head = make_head(channels[0], out_planes, options)

        self.in_planes = in_planes
        self.out_planes = out_planes
        self.channels = channels
        self.layers = counts
        self.reductions = reductions
        self.min_size = reductions[-1] + 1

    @property
    def in_channels(self) -> int:
        """Alias of ``in_planes``."""
        return self.in_planes

    @property
    def out_channels(self) -> int:
        """Alias of ``out_planes``."""
        return self.out_planes

    def check_input(self, x: Tensor) -> None:
        """Raise a ValueError unless ``x`` is (B, in_planes, H, W) with ``H`` or ``W`` at least ``min_size``.

        Examples:
            >>> import torch
            >>> UNet2d(channels=(8, 16, 32)).check_input(torch.zeros(1, 1, 4, 4))  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            ValueError: UNet2d needs an input of height or width >= 5 ...
        """
        check_shape(self, x, self.in_planes)
        height, width = x.shape[-2:]
        if height < self.min_size and width < self.min_size:
            raise ValueError(
                f"UNet2d needs an input of height or width >= {self.min_size} (its deepest level, at "
                f"1/{self.reductions[-1]}, needs more than one pixel for normalization), got input of "
                f"shape {tuple(x.shape)}"
            )

    def encode(self, x: Tensor) -> list[Tensor]:
        """The encoder's outputs, shallowest first: one per level.

        Args:
            x: Input of shape (B, in_planes, H, W).

        Returns:
            One tensor per level, (B, channels[i], ceil(H / 2**i), ceil(W / 2**i)) for the own encoder.

        Raises:
            ValueError: If ``x`` has the wrong shape or is too small (see `check_input`).

        Examples:
            >>> import torch
            >>> net = UNet2d(channels=(8, 16), layers=1)
            >>> [tuple(f.shape) for f in net.encode(torch.zeros(1, 1, 9, 4))]
            [(1, 8, 9, 4), (1, 16, 5, 2)]
        """
        self.check_input(x)
        if self.stem is None:
            features = self.encoder.forward_features(x)
            if not isinstance(features, (list, tuple)) or len(features) != len(self.channels):
                raise ValueError(
                    f"encoder {type(self.encoder).__name__}.forward_features must return a list of "
                    f"{len(self.channels)} tensors (one per feature_info entry), got {type(features).__name__}"
                )
            return list(features)
        features = []
        x = self.stem(x)
        for stage in self.encoder:
            x = stage(x)
            features.append(x)
        return features

    def decode(self, features: Sequence[Tensor], output_size: Sequence[int]) -> Tensor:
        """Run the decoder on the encoder's outputs; return the last stage's output (before the head).

        Args:
            features: The output of `encode`.
            output_size: The input's (H, W); used by the last stage of a backbone U-Net.

        Returns:
            (B, channels[0], H, W).

        Examples:
            >>> import torch
            >>> net = UNet2d(channels=(8, 16), layers=1)
            >>> x = torch.zeros(1, 1, 9, 4)
            >>> net.decode(net.encode(x), x.shape[-2:]).shape
            torch.Size([1, 8, 9, 4])
        """
        x = features[-1]
        skips = len(features) - 1
        for i, stage in enumerate(self.decoder):
            x = stage(x, features[skips - 1 - i], None) if i < skips else stage(x, None, output_size)
        return x

    def forward(self, x: Tensor) -> Tensor:
        """Apply the U-Net.

        Args:
            x: Input of shape (B, in_planes, H, W), with ``H`` or ``W`` at least ``min_size``.

        Returns:
            (B, out_planes, H, W): exactly the input's height and width.

        Raises:
            ValueError: If ``x`` has the wrong shape or is too small (see `check_input`).
        """
        return self.head(self.decode(self.encode(x), x.shape[-2:]))


def _level(t: Tensor) -> str:
    """``C@S`` for a square map, ``C@HxW`` otherwise."""
    channels, height, width = t.shape[1:]
    return f"{channels}@{height}" if height == width else f"{channels}@{height}x{width}"


def shape_table(model: UNet2d, x: Tensor) -> str:
    """A short per-level table of the shapes a U-Net produces for ``x``: encoder, decoder, output.

    Runs the model once under ``torch.no_grad()``; use a model and input on the ``meta`` device to
    get the shapes of a full-size U-Net instantly.

    Args:
        model: The U-Net.
        x: An input, (B, in_planes, H, W).

    Returns:
        Three rows, each level as ``channels@size`` (``@H`` when square, ``@HxW`` otherwise).

    Examples:
        >>> import torch
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
            output = model.head(model.decode(features, x.shape[-2:]))
    finally:
        for hook in hooks:
            hook.remove()
    rows = {"encoder": features, "decoder": decoded, "output": [output]}
    return "\n".join(f"{name:8s} " + "  ".join(_level(t) for t in tensors) for name, tensors in rows.items())
