"""blocks' twins of nnU-Net's networks, under nnU-Net's own names, and `from_nnunet` to carry weights over.

`PlainConvUNet` and `ResidualEncoderUNet` take the constructor of the classes of the same names in
``dynamic_network_architectures`` (nnU-Net's default network and the "ResEnc" U-Nets of nnU-Net
Revisited) and build blocks' own `blocks.unet.UNet` with the options that reproduce them: for the
same arguments the twin has exactly the original's parameters and forward FLOPs, in 1-D, 2-D and
3-D. A plan changes only the class's module path (``"network_class_name":
"blocks.nnunet.ResidualEncoderUNet"``); nnU-Net then builds, initializes and trains the twin, whose
deep-supervision switch is nnU-Net's (``network.decoder.deep_supervision``).

How the twins map onto the U-Net (``layer_order='old'``, ``upsample='transpose'``,
``decoder_block='conv'``, a head on every decoder stage):

* ``ConvDropoutNormReLU`` is a `blocks.conv.ConvModern` unit with ``dropout`` and ``bias``
  (``conv_bias``); ``StackedConvBlocks`` is a stage of ``'conv'`` units.
* `PlainConvUNet` has no stem: the twin's stem is stage 0's first conv, so level 0 holds
  ``n_conv_per_stage[0] - 1`` more units.
* `ResidualEncoderUNet`: the stem is one unit to ``stem_channels``; ``BasicBlockD`` is a plain
  block of hidden width ``'output'`` (its first conv goes in -> out, strided), ``BottleneckD`` a
  bottleneck of width ``bottleneck_channels[s]``, both with ``shortcut='pool'`` (average pooling
  when strided, a bias-free 1x1 conv and norm when the channels change).
* Each decoder stage: a transposed conv (kernel = stride, bias = ``conv_bias``), the concatenation
  with the skip, ``n_conv_per_stage_decoder`` units; a 1x1 seg conv with bias per stage
  (``heads``, and ``head`` for the last), only the last run while deep supervision is off.

Unlike the originals, the twins take any input size (nnU-Net's need sizes divisible by the stride
product): the transposed convs' overhang is cut to the skip's size, the pooled shortcuts round up.
"""

from __future__ import annotations

import json
import os
import pydoc
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .checks import check_bool, check_ints, check_positive_int
from .configurable import records_config
from .conv import ConvModern
from .residual import BlockBottleneck, BlockPlain, ResidualBlock
from .unet import UNet

__all__ = ["PlainConvUNet", "ResidualEncoderUNet", "from_nnunet", "nnunet_key_map"]

CONV_OPS = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}
"""The ``conv_op`` values a twin honours, and their dimension."""

RESIDUAL_BLOCKS = {"BasicBlockD": "plain", "BottleneckD": "bottleneck"}
"""nnU-Net's residual blocks (``block=``, a class or its dotted name) and blocks' block of each."""

HE_SLOPE = 1e-2
"""The negative slope of nnU-Net's He initialization (``InitWeights_He(1e-2)``)."""

CHILD_NAMES = {"conv": "conv", "dropout": "dropout", "norm": "norm", "act": "nonlin"}
"""The layers of a `ConvModern` unit by their names in nnU-Net's ``ConvDropoutNormReLU``."""


def locate(name: str, value: Any) -> Any:
    """A class given as itself or by its dotted name (plans.json's form); names are looked up in ``torch.nn`` only.

    Raises:
        ValueError: For a dotted name outside ``torch.nn`` or one that does not exist.

    Examples:
        >>> locate("conv_op", "torch.nn.modules.conv.Conv3d")
        <class 'torch.nn.modules.conv.Conv3d'>
    """
    if not isinstance(value, str):
        return value
    found = pydoc.locate(value) if value.startswith("torch.nn.") else None
    if not isinstance(found, type):
        raise ValueError(
            f"{name}={value!r} is not a class of torch.nn; blocks looks up torch.nn's classes by name only "
            "(e.g. 'torch.nn.modules.conv.Conv3d'), pass other classes themselves"
        )
    return found


def _per_stage(name: str, value: Any, n_stages: int, count: int | None = None) -> tuple:
    """``value`` as ``count`` (default ``n_stages``) entries: an int or scalar repeated, or a sequence of that length."""
    count = n_stages if count is None else count
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * count
    if len(values) != count:
        raise ValueError(f"{name}={value!r} must have {count} entries (one per stage), got {len(values)}")
    return tuple(tuple(v) if isinstance(v, (tuple, list)) else v for v in values)


def _layer_factories(
    conv_op: Any, norm_op: Any, norm_op_kwargs: Any, dropout_op: Any, dropout_op_kwargs: Any, nonlin: Any,
    nonlin_kwargs: Any,
) -> tuple[int, Any, Any, Any]:
    """Check nnU-Net's layer arguments; return the dimension and blocks' normalizer, activator and dropout specs.

    Layers are built as nnU-Net builds them: ``norm_op(channels, **norm_op_kwargs)``,
    ``nonlin(**nonlin_kwargs)`` (so ``nn.PReLU`` has one parameter) and ``dropout_op(**dropout_op_kwargs)``.

    Raises:
        ValueError: For a ``conv_op`` other than ``nn.Conv1d/2d/3d``, a dropout other than torch's,
            or a layer that is not a class.
    """
    conv_op, norm_op, dropout_op, nonlin = (locate(n, v) for n, v in (
        ("conv_op", conv_op), ("norm_op", norm_op), ("dropout_op", dropout_op), ("nonlin", nonlin)))
    if conv_op not in CONV_OPS:
        raise ValueError(
            f"conv_op={conv_op!r} is not one blocks can build; use torch.nn.Conv1d, Conv2d or Conv3d"
        )
    if dropout_op is not None and not (
        isinstance(dropout_op, type) and issubclass(dropout_op, nn.modules.dropout._DropoutNd)
        and dropout_op.__module__.startswith("torch.nn")
    ):
        raise ValueError(
            f"dropout_op={dropout_op!r} is not one of torch's dropouts; use None or torch.nn.Dropout, Dropout1d, "
            "Dropout2d or Dropout3d"
        )
    for name, layer in (("norm_op", norm_op), ("nonlin", nonlin)):
        if layer is not None and not (isinstance(layer, type) and issubclass(layer, nn.Module)):
            raise ValueError(f"{name}={layer!r} must be None or an nn.Module class (e.g. torch.nn.InstanceNorm3d)")
    norm_kw, drop_kw, act_kw = (dict(kw or {}) for kw in (norm_op_kwargs, dropout_op_kwargs, nonlin_kwargs))
    normalizer = None if norm_op is None else (lambda channels: norm_op(channels, **norm_kw))
    activator = None if nonlin is None else (lambda channels: nonlin(**act_kw))
    dropout = None if dropout_op is None else (lambda: dropout_op(**drop_kw))
    return CONV_OPS[conv_op], normalizer, activator, dropout


def check_stages(n_stages: Any) -> int:
    """``n_stages``, an int >= 2 (a U-Net needs a level below the input), else a ValueError."""
    if check_positive_int("n_stages", n_stages) < 2:
        raise ValueError(f"n_stages={n_stages} must be at least 2 (a U-Net needs a level below the input)")
    return n_stages


def _check_strides(strides: Sequence[Any], ndim: int) -> tuple[tuple[int, ...], ...]:
    """nnU-Net's strides, one per dimension; ``strides[0]`` must be 1 (nnU-Net's planners always give 1)."""
    per_dim = tuple(check_ints("strides", s if isinstance(s, tuple) else (s,) * ndim, ndim) for s in strides)
    if any(s != 1 for s in per_dim[0]):
        raise ValueError(
            f"strides[0]={strides[0]!r}: the twins need 1 there (nnU-Net's planners always give 1; the first stage "
            "runs at the input's resolution)"
        )
    return per_dim


class _Twin(UNet):
    """What both twins share: nnU-Net's attributes, `initialize`, `compute_conv_feature_map_size`."""

    class_arguments = ("conv_op", "norm_op", "dropout_op", "nonlin", "block")
    residual = False

    def _build(
        self,
        arguments: dict[str, Any],
        layers: tuple[int, ...],
        block: str,
        **options: Any,
    ) -> None:
        """Check the shared arguments, build the U-Net, and keep nnU-Net's view of them."""
        n_stages = arguments["n_stages"]
        ndim, normalizer, activator, dropout = _layer_factories(
            arguments["conv_op"], arguments["norm_op"], arguments["norm_op_kwargs"], arguments["dropout_op"],
            arguments["dropout_op_kwargs"], arguments["nonlin"], arguments["nonlin_kwargs"])
        features = check_ints("features_per_stage", _per_stage("features_per_stage", arguments["features_per_stage"],
                                                              n_stages), n_stages)
        kernels = _per_stage("kernel_sizes", arguments["kernel_sizes"], n_stages)
        strides = _check_strides(_per_stage("strides", arguments["strides"], n_stages), ndim)
        decoder = check_ints("n_conv_per_stage_decoder", _per_stage(
            "n_conv_per_stage_decoder", arguments["n_conv_per_stage_decoder"], n_stages, n_stages - 1), n_stages - 1)
        deep_supervision = check_bool("deep_supervision", arguments["deep_supervision"])
        conv_bias = check_bool("conv_bias", arguments["conv_bias"])
        super().__init__(
            check_positive_int("input_channels", arguments["input_channels"]),
            check_positive_int("num_classes", arguments["num_classes"]),
            features, layers, block, 3, normalizer, activator, "old",
            upsample="transpose", strides=strides, kernel_sizes=kernels, decoder_layers=decoder,
            decoder_block="conv", deep_supervision=True, bias=conv_bias, dropout=dropout, ndim=ndim, **options,
        )
        self.decoder.deep_supervision = deep_supervision
        self.nnunet_strides = strides
        self.nnunet_kernel_sizes = kernels
        self.features_per_stage = features
        self.n_conv_per_stage_decoder = decoder
        self.num_classes = self.out_planes
        self.input_channels = self.in_planes

    @staticmethod
    def initialize(module: nn.Module) -> None:
        """nnU-Net's initialization, applied by ``network.apply(network.initialize)``.

        He (Kaiming normal) initialization with nnU-Net's negative slope (``1e-2``) on 2-D and 3-D
        convs and transposed convs (not 1-D ones, as nnU-Net), biases 0; the residual twin also sets
        each residual block's last norm weight and bias to 0.
        """
        if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            nn.init.kaiming_normal_(module.weight, a=HE_SLOPE)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def compute_conv_feature_map_size(self, input_size: Sequence[int]) -> int:
        """nnU-Net's estimate of the feature maps a forward pass stores (its planners' VRAM model), the same number.

        Args:
            input_size: The spatial size, without batch and channels.

        Returns:
            The sum of the conv outputs' sizes, as nnU-Net counts them.

        Raises:
            ValueError: If ``input_size`` does not have one entry per dimension.
        """
        size = check_ints("input_size", input_size, self.ndim, minimum=0)
        total = self._encoder_map_size(size)
        sizes = []
        for stride in self.nnunet_strides[:-1]:
            size = tuple(n // s for n, s in zip(size, stride))
            sizes.append(size)
        for j, convs in enumerate(self.n_conv_per_stage_decoder):
            level = len(sizes) - 1 - j
            volume = int(np.prod(sizes[level], dtype=np.int64))
            total += (convs + 1) * self.features_per_stage[level] * volume  # the stage's convs and its transposed conv
            if self.decoder.deep_supervision or j == len(sizes) - 1:
                total += self.num_classes * volume
        return total

    def _encoder_map_size(self, size: tuple[int, ...]) -> int:
        """The encoder's share of `compute_conv_feature_map_size`."""
        raise NotImplementedError


class PlainConvUNet(_Twin):
    """blocks' twin of nnU-Net's ``PlainConvUNet``: the same constructor, parameters and FLOPs.

    Stages of ``n_conv_per_stage`` conv -> [dropout] -> [norm] -> [nonlin] units (the first of a
    stage strided), a decoder of transposed convs and conv units, a 1x1 seg conv per decoder stage.
    See the module docstring for the mapping; `from_nnunet` carries an original's weights over.

    Args:
        input_channels: Input channels.
        n_stages: Resolution stages (levels), at least 2.
        features_per_stage: Channels per stage, an int or one per stage.
        conv_op: ``nn.Conv1d``, ``nn.Conv2d`` or ``nn.Conv3d`` (or its dotted name): the dimension.
        kernel_sizes: Odd kernel size per stage, an int or one per stage (each an int or one per dimension).
        strides: Stride per stage (each an int or one per dimension); ``strides[0]`` must be 1.
        n_conv_per_stage: Convs per encoder stage, an int or one per stage, at least 1.
        num_classes: Output channels.
        n_conv_per_stage_decoder: Convs per decoder stage (deepest first), an int or ``n_stages - 1``.
        conv_bias: Whether the convs and transposed convs have a bias (the seg convs always do).
        norm_op: The norm class (built as ``norm_op(channels, **norm_op_kwargs)``), or None.
        norm_op_kwargs: Its keyword arguments.
        dropout_op: One of torch's dropout classes (``dropout_op(**dropout_op_kwargs)`` after each conv), or None.
        dropout_op_kwargs: Its keyword arguments.
        nonlin: The activation class (built as ``nonlin(**nonlin_kwargs)``), or None.
        nonlin_kwargs: Its keyword arguments.
        deep_supervision: Return one output per decoder stage, full resolution first (switchable
            later as ``decoder.deep_supervision``).
        nonlin_first: Must be False (conv -> norm -> nonlin); True is refused.

    Raises:
        ValueError: For an argument blocks cannot honour (see `ResidualEncoderUNet`), naming it.

    Examples:
        >>> import torch
        >>> net = PlainConvUNet(1, 3, (4, 8, 16), nn.Conv2d, 3, (1, 2, 2), 2, 2, 1, norm_op=nn.InstanceNorm2d,
        ...                     nonlin=nn.LeakyReLU)
        >>> net(torch.zeros(1, 1, 30, 27)).shape
        torch.Size([1, 2, 30, 27])
        >>> net.compute_conv_feature_map_size((32, 32))
        28672
    """

    @records_config
    def __init__(
        self,
        input_channels: int,
        n_stages: int,
        features_per_stage: int | Sequence[int],
        conv_op: type[nn.Module] | str,
        kernel_sizes: Any,
        strides: Any,
        n_conv_per_stage: int | Sequence[int],
        num_classes: int,
        n_conv_per_stage_decoder: int | Sequence[int],
        conv_bias: bool = False,
        norm_op: type[nn.Module] | str | None = None,
        norm_op_kwargs: Mapping[str, Any] | None = None,
        dropout_op: type[nn.Module] | str | None = None,
        dropout_op_kwargs: Mapping[str, Any] | None = None,
        nonlin: type[nn.Module] | str | None = None,
        nonlin_kwargs: Mapping[str, Any] | None = None,
        deep_supervision: bool = False,
        nonlin_first: bool = False,
    ) -> None:
        if check_bool("nonlin_first", nonlin_first):
            raise ValueError("nonlin_first=True (conv -> nonlin -> norm) is not built by blocks; use False")
        n = check_stages(n_stages)
        convs = check_ints("n_conv_per_stage", _per_stage("n_conv_per_stage", n_conv_per_stage, n), n)
        arguments = {k: v for k, v in locals().items() if k not in ("self", "n", "convs", "__class__")}
        self._build(arguments, (convs[0] - 1, *convs[1:]), "conv")
        self.n_conv_per_stage = convs

    def _encoder_map_size(self, size: tuple[int, ...]) -> int:
        """Each stage's convs at its level's size (nnU-Net's ``PlainConvEncoder``)."""
        total = 0
        for stride, channels, convs in zip(self.nnunet_strides, self.features_per_stage, self.n_conv_per_stage):
            size = tuple(n // s for n, s in zip(size, stride))
            total += convs * channels * int(np.prod(size, dtype=np.int64))
        return total


class ResidualEncoderUNet(_Twin):
    """blocks' twin of nnU-Net's ``ResidualEncoderUNet`` (the ResEnc U-Nets): the same constructor, parameters and FLOPs.

    A stem (one conv unit to ``stem_channels``), stages of ``n_blocks_per_stage`` residual blocks
    (``BasicBlockD`` or ``BottleneckD``: ResNet-D's pooled shortcut), and `PlainConvUNet`'s decoder.

    Args:
        input_channels: Input channels.
        n_stages: Resolution stages, at least 2.
        features_per_stage: Channels per stage (a bottleneck's output), an int or one per stage.
        conv_op: ``nn.Conv1d``, ``nn.Conv2d`` or ``nn.Conv3d`` (or its dotted name).
        kernel_sizes: Odd kernel size per stage.
        strides: Stride per stage; ``strides[0]`` must be 1.
        n_blocks_per_stage: Residual blocks per stage, an int or one per stage, at least 1.
        num_classes: Output channels.
        n_conv_per_stage_decoder: Convs per decoder stage (deepest first).
        conv_bias: Whether the stem, block, decoder and transposed convs have a bias (not the
            shortcut convs, nor the seg convs, which always do).
        norm_op: The norm class, or None.
        norm_op_kwargs: Its keyword arguments.
        dropout_op: One of torch's dropout classes, or None: after the stem's conv, each block's
            first conv (``BasicBlockD``) or middle conv (``BottleneckD``), and each decoder conv.
        dropout_op_kwargs: Its keyword arguments.
        nonlin: The activation class, or None.
        nonlin_kwargs: Its keyword arguments.
        deep_supervision: Return one output per decoder stage, full resolution first.
        block: nnU-Net's ``BasicBlockD`` or ``BottleneckD`` (the class or its dotted name), or blocks'
            ``'plain'`` / ``'bottleneck'``.
        bottleneck_channels: The bottleneck width per stage (an int or one per stage); required for
            ``BottleneckD`` (nnU-Net's default None fails there), ignored for ``BasicBlockD``.
        stem_channels: The stem's output channels; None for ``features_per_stage[0]``.

    Raises:
        ValueError: For an argument blocks cannot honour: a ``conv_op`` other than
            ``nn.Conv1d/2d/3d``, a dropout other than torch's, another block, ``strides[0] != 1``,
            a ``BottleneckD`` without ``bottleneck_channels``; naming it.

    Examples:
        >>> import torch
        >>> net = ResidualEncoderUNet(1, 3, (4, 8, 16), "torch.nn.modules.conv.Conv3d", 3, (1, 2, (1, 2, 2)), 1, 2,
        ...                           1, norm_op=nn.InstanceNorm3d, nonlin=nn.ReLU, deep_supervision=True)
        >>> [tuple(y.shape) for y in net(torch.zeros(1, 1, 5, 9, 11))]
        [(1, 2, 5, 9, 11), (1, 2, 3, 5, 6)]
    """

    residual = True

    @records_config
    def __init__(
        self,
        input_channels: int,
        n_stages: int,
        features_per_stage: int | Sequence[int],
        conv_op: type[nn.Module] | str,
        kernel_sizes: Any,
        strides: Any,
        n_blocks_per_stage: int | Sequence[int],
        num_classes: int,
        n_conv_per_stage_decoder: int | Sequence[int],
        conv_bias: bool = False,
        norm_op: type[nn.Module] | str | None = None,
        norm_op_kwargs: Mapping[str, Any] | None = None,
        dropout_op: type[nn.Module] | str | None = None,
        dropout_op_kwargs: Mapping[str, Any] | None = None,
        nonlin: type[nn.Module] | str | None = None,
        nonlin_kwargs: Mapping[str, Any] | None = None,
        deep_supervision: bool = False,
        block: Any = "BasicBlockD",
        bottleneck_channels: int | Sequence[int] | None = None,
        stem_channels: int | None = None,
    ) -> None:
        n = check_stages(n_stages)
        blocks_per_stage = check_ints("n_blocks_per_stage", _per_stage("n_blocks_per_stage", n_blocks_per_stage, n), n)
        kind = _block_kind(block)
        hidden: Any = "output"
        if kind == "bottleneck":
            if bottleneck_channels is None:
                raise ValueError(
                    "block=BottleneckD needs bottleneck_channels (the bottleneck width, an int or one per stage); "
                    "nnU-Net's default None does not build"
                )
            hidden = check_ints("bottleneck_channels", _per_stage("bottleneck_channels", bottleneck_channels, n), n)
        arguments = {k: v for k, v in locals().items() if k not in ("self", "n", "blocks_per_stage", "kind", "hidden",
                                                                       "__class__")}
        self._build(arguments, blocks_per_stage, kind, stem_planes=stem_channels, hidden_planes=hidden,
                    shortcut="pool")
        self.n_blocks_per_stage = blocks_per_stage
        self.bottleneck_channels = None if kind == "plain" else hidden
        self.stem_channels = self.stem.out_planes

    @staticmethod
    def initialize(module: nn.Module) -> None:
        """nnU-Net's initialization of the ResEnc U-Nets: `PlainConvUNet.initialize`, and each
        residual block's last norm weight and bias set to 0 (the block starts as its shortcut)."""
        _Twin.initialize(module)
        if isinstance(module, ResidualBlock):
            norm = getattr(module.branch[-1], "norm", None)
            if getattr(norm, "weight", None) is not None:
                nn.init.zeros_(norm.weight)
                nn.init.zeros_(norm.bias)

    def _encoder_map_size(self, size: tuple[int, ...]) -> int:
        """The stem and the residual blocks (nnU-Net's ``ResidualEncoder``, ``BasicBlockD``, ``BottleneckD``)."""
        total = self.stem_channels * int(np.prod(size, dtype=np.int64))
        planes = self.stem_channels
        for s, (stride, out) in enumerate(zip(self.nnunet_strides, self.features_per_stage)):
            for b in range(self.n_blocks_per_stage[s]):
                step = stride if b == 0 else (1,) * self.ndim
                after = tuple(n // t for n, t in zip(size, step))
                outputs = int(np.prod(after, dtype=np.int64))
                if self.bottleneck_channels is None:
                    total += 2 * out * outputs
                else:
                    width = self.bottleneck_channels[s]
                    total += width * int(np.prod(size, dtype=np.int64)) + width * outputs + out * outputs
                if planes != out or after != size:
                    total += out * outputs
                planes, size = out, after
        return total


def _block_kind(block: Any) -> str:
    """blocks' block for nnU-Net's ``block=`` (a class, its dotted name, or 'plain' / 'bottleneck')."""
    name = block if isinstance(block, str) else getattr(block, "__name__", repr(block))
    name = name.rsplit(".", 1)[-1]
    if name in RESIDUAL_BLOCKS:
        return RESIDUAL_BLOCKS[name]
    if name in RESIDUAL_BLOCKS.values():
        return name
    raise ValueError(
        f"block={block!r} is not one the twin builds; use nnU-Net's BasicBlockD or BottleneckD (the class or its "
        "dotted name), or 'plain' / 'bottleneck'"
    )


def _units(twin: _Twin) -> list[tuple[str, str, bool]]:
    """(twin module, nnU-Net module, whether it is a ``ConvDropoutNormReLU`` unit) for every module with weights."""
    pairs: list[tuple[str, str, bool]] = []
    if isinstance(twin, ResidualEncoderUNet):
        pairs.append(("stem", "encoder.stem.convs.0", True))
        for s, stage in enumerate(twin.encoder):
            for b, block in enumerate(stage):
                theirs = f"encoder.stages.{s}.blocks.{b}"
                pairs += [(f"encoder.{s}.{b}.branch.{u}", f"{theirs}.conv{u + 1}", True) for u in range(len(block.branch))]
                shortcut = block.shortcut
                if shortcut is not None and hasattr(shortcut, "proj"):
                    pairs.append((f"encoder.{s}.{b}.shortcut.proj", f"{theirs}.skip.{len(shortcut) - 1}", True))
                if block.activation is not None:
                    last = "nonlin2" if isinstance(block, BlockPlain) else "nonlin3"
                    pairs.append((f"encoder.{s}.{b}.activation", f"{theirs}.{last}", False))
    else:
        pairs.append(("stem", "encoder.stages.0.0.convs.0", True))
        for s, stage in enumerate(twin.encoder):
            first = 1 if s == 0 else 0
            pairs += [(f"encoder.{s}.{k}", f"encoder.stages.{s}.0.convs.{k + first}", True) for k in range(len(stage))]
    for j, stage in enumerate(twin.decoder):
        pairs.append((f"decoder.{j}.up", f"decoder.transpconvs.{j}", False))
        pairs += [(f"decoder.{j}.blocks.{k}", f"decoder.stages.{j}.convs.{k}", True) for k in range(len(stage.blocks))]
    last = len(twin.decoder) - 1
    pairs.append(("head.conv", f"decoder.seg_layers.{last}", False))
    pairs += [(f"heads.{j}.conv", f"decoder.seg_layers.{j}", False) for j in range(last)]
    return pairs


def nnunet_key_map(twin: PlainConvUNet | ResidualEncoderUNet) -> tuple[dict[str, str], dict[str, str]]:
    """The state_dict keys of nnU-Net's original of ``twin``: ``(theirs -> twin's, alias -> theirs)``.

    nnU-Net's state_dicts hold each tensor of a ``ConvDropoutNormReLU`` twice (``.conv.`` and
    ``.all_modules.0.``) and the encoder twice (``encoder.`` and ``decoder.encoder.``); the first
    map uses the named forms, the second maps each ``all_modules`` form to its named one.

    Examples:
        >>> net = PlainConvUNet(1, 2, 4, nn.Conv1d, 3, (1, 2), 1, 2, 1, norm_op=nn.BatchNorm1d)
        >>> theirs, aliases = nnunet_key_map(net)
        >>> theirs["encoder.stages.0.0.convs.0.norm.running_mean"], aliases["decoder.stages.0.convs.0.all_modules.1.bias"]
        ('stem.norm.running_mean', 'decoder.stages.0.convs.0.norm.bias')
    """
    theirs: dict[str, str] = {}
    aliases: dict[str, str] = {}
    for mine, prefix, unit in _units(twin):
        module = twin.get_submodule(mine)
        if not unit:
            theirs.update({f"{prefix}.{key}": f"{mine}.{key}" for key in module.state_dict()})
            continue
        for index, (child, layer) in enumerate(module.named_children()):
            name = CHILD_NAMES[child]
            for key in layer.state_dict():
                theirs[f"{prefix}.{name}.{key}"] = f"{mine}.{child}.{key}"
                aliases[f"{prefix}.all_modules.{index}.{key}"] = f"{prefix}.{name}.{key}"
    return theirs, aliases


def _read_module(model: nn.Module) -> tuple[str, dict[str, Any]]:
    """The class name and constructor arguments of an nnU-Net ``PlainConvUNet`` / ``ResidualEncoderUNet`` instance."""
    name = type(model).__name__
    encoder, decoder = model.encoder, model.decoder
    arguments: dict[str, Any] = {
        "input_channels": None, "n_stages": len(encoder.stages), "features_per_stage": tuple(encoder.output_channels),
        "conv_op": encoder.conv_op, "kernel_sizes": tuple(encoder.kernel_sizes), "strides": tuple(encoder.strides),
        "num_classes": decoder.num_classes,
        "n_conv_per_stage_decoder": tuple(len(stage.convs) for stage in decoder.stages),
        "conv_bias": encoder.conv_bias, "norm_op": encoder.norm_op, "norm_op_kwargs": encoder.norm_op_kwargs,
        "dropout_op": encoder.dropout_op, "dropout_op_kwargs": encoder.dropout_op_kwargs, "nonlin": encoder.nonlin,
        "nonlin_kwargs": encoder.nonlin_kwargs, "deep_supervision": decoder.deep_supervision,
    }
    if name == "ResidualEncoderUNet":
        first = [stage.blocks[0] for stage in encoder.stages]
        arguments.update(
            n_blocks_per_stage=tuple(len(stage.blocks) for stage in encoder.stages), block=type(first[0]).__name__,
            stem_channels=encoder.stem.output_channels,
        )
        if arguments["block"] == "BottleneckD":
            arguments["bottleneck_channels"] = tuple(b.bottleneck_channels for b in first)
    elif name == "PlainConvUNet":
        arguments["n_conv_per_stage"] = tuple(len(stage[-1].convs) for stage in encoder.stages)
    else:
        raise ValueError(f"from_nnunet takes nnU-Net's PlainConvUNet or ResidualEncoderUNet, got {name}")
    return name, arguments


def _read_plans(plans: Any, configuration: str | None) -> tuple[str, dict[str, Any]]:
    """The class name and ``arch_kwargs`` of one configuration of nnU-Net's ``plans.json`` (a path or its dict)."""
    if isinstance(plans, (str, os.PathLike)):
        plans = json.loads(Path(plans).read_text())
    configurations = plans.get("configurations", {})
    if configuration not in configurations:
        raise ValueError(f"configuration={configuration!r} is not in the plans; choose one of {sorted(configurations)}")
    merged: dict[str, Any] = {}
    name: str | None = configuration
    while name is not None:  # a configuration may inherit from another (3d_cascade_fullres from 3d_fullres)
        entry = configurations[name]
        merged = {**entry, **merged, "architecture": {**entry.get("architecture", {}), **merged.get("architecture", {})}}
        name = entry.get("inherits_from")
    architecture = merged["architecture"]
    return architecture["network_class_name"].rsplit(".", 1)[-1], dict(architecture["arch_kwargs"])


def from_nnunet(
    module_or_state_dict: nn.Module | Mapping[str, Any],
    *,
    plans: Any = None,
    configuration: str | None = None,
    **arch_kwargs: Any,
) -> PlainConvUNet | ResidualEncoderUNet:
    """The blocks twin of a trained nnU-Net network, holding its weights: equal outputs, any input size after.

    Args:
        module_or_state_dict: An nnU-Net ``PlainConvUNet`` or ``ResidualEncoderUNet`` (its
            arguments are read from it), or its state_dict, or an nnU-Net checkpoint (a dict with
            ``network_weights``), with the architecture from ``plans`` or ``arch_kwargs``.
        plans: nnU-Net's ``plans.json`` (a path or the loaded dict), with ``configuration``.
        configuration: The configuration of ``plans`` (``'3d_fullres'``, ...).
        **arch_kwargs: The constructor's arguments (plans' ``arch_kwargs``, dotted class names
            accepted); ``input_channels`` and ``num_classes`` are read from the weights when
            missing, and ``network_class_name`` may name the class (else read from the keys).

    Returns:
        The twin, in the original's training mode, with its deep-supervision switch.

    Raises:
        ValueError: If the architecture is missing, or a key of the weights does not map onto the
            twin (naming it), a key is missing, or two aliases of one tensor differ.
    """
    if isinstance(module_or_state_dict, nn.Module):
        name, arguments = _read_module(module_or_state_dict)
        training = module_or_state_dict.training
        state = module_or_state_dict.state_dict()
    else:
        state = dict(module_or_state_dict.get("network_weights", module_or_state_dict))
        training = False
        if plans is not None:
            name, arguments = _read_plans(plans, configuration)
        else:
            name = str(arch_kwargs.pop("network_class_name", ""))
            arguments = {}
        arguments.update(arch_kwargs)
        name = name.rsplit(".", 1)[-1] or ("ResidualEncoderUNet" if any(
            k.startswith("encoder.stem.") for k in state) else "PlainConvUNet")
        if not arguments:
            raise ValueError("from_nnunet needs the architecture: pass plans= and configuration=, or the arch_kwargs")
    classes = {"PlainConvUNet": PlainConvUNet, "ResidualEncoderUNet": ResidualEncoderUNet}
    if name not in classes:
        raise ValueError(f"network class {name!r} has no blocks twin; use PlainConvUNet or ResidualEncoderUNet")
    arguments.pop("nonlin_first", None) if not arguments.get("nonlin_first") else None
    first = next((v for k, v in state.items() if k.endswith(".conv.weight") and (
        k.startswith("encoder.stem.convs.0.") or k.startswith("encoder.stages.0.0.convs.0."))), None)
    if arguments.get("input_channels") is None and first is not None:
        arguments["input_channels"] = int(first.shape[1])
    seg = state.get("decoder.seg_layers.0.weight")
    if arguments.get("num_classes") is None and seg is not None:
        arguments["num_classes"] = int(seg.shape[0])
    twin = classes[name](**arguments)
    theirs, aliases = nnunet_key_map(twin)
    found: dict[str, Tensor] = {}
    for key, value in state.items():
        named = "encoder." + key[len("decoder.encoder."):] if key.startswith("decoder.encoder.") else key
        named = aliases.get(named, named)
        if named not in theirs:
            raise ValueError(
                f"from_nnunet: the weights' key {key!r} does not map onto the {name} twin built from these arguments; "
                "check that the architecture (plans or arch_kwargs) is the one the weights were trained with"
            )
        if named in found and not torch.equal(found[named], value):
            raise ValueError(f"from_nnunet: {key!r} and its alias {named!r} hold different tensors")
        found[named] = value
    missing = [key for key in theirs if key not in found]
    if missing:
        raise ValueError(f"from_nnunet: the weights lack {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    twin.load_state_dict({theirs[key]: value for key, value in found.items()}, strict=True)
    return twin.train(training)
