"""ResNet backbones of plain or bottleneck blocks in 1-D, 2-D and 3-D, and torchvision weight import.

With the defaults, ``resnet18`` ... ``resnet152`` are torchvision's architectures layer for layer
(same parameter counts, same summary rows), and `from_torchvision` loads torchvision's weights.

Structure of `ResNet` (these are also the module names in ``feature_info``):

* ``stem``: 7x7/2 conv + norm + act in ``'old'`` order; the 7x7/2 conv alone in ``'new'`` order
  (kernel and stride set by ``stem_kernel_size`` and ``stem_stride``, one per dimension if need be);
* ``pool``: 3x3/2 max-pool; None (and not in ``chain``) with ``stem_pool=False``;
* ``layer1`` ... ``layer4``: the stages, built by `make_stage` (first-block stride ``strides[i]``,
  kernel ``kernel_sizes[i]``);
* ``norm_act``: norm + act after the last stage, only in ``'new'`` (pre-activation) order;
* ``avgpool``, ``fc``: the classifier head, absent when ``num_classes=None``.

torchvision's video ResNets ``r3d_18`` and ``mc3_18`` are `ResNet` with ``ndim=3`` and the
geometry of `VIDEO_ARCHS` (a (3, 7, 7) stem of stride (1, 2, 2), no max-pool); `from_torchvision`
reads their weights too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from .checks import (
    LAYER_ORDERS,
    PER_DIMENSION,
    IntOrTuple,
    check_bool,
    check_choice,
    check_input,
    check_ints,
    check_min_size,
    check_ndim,
    check_positive_int,
    check_tuple,
    compact,
    named_class,
)
from .configurable import Configurable, records_config
from .conv import ConvModern, NormAct, same_padding
from .features import FeatureAPI, FeatureInfo, check_global_pool, check_num_classes
from .layers import LayerSpec, check_layer_spec, torch_layer
from .levels import PerLevel, check_kernel_sizes, check_strides, dilated_levels, min_sizes, one_pixel_problem, reductions_of
from .residual import BLOCKS, BlockSpec, GradCheckpointing

__all__ = [
    "ARCHS",
    "ResNet",
    "VIDEO_ARCHS",
    "from_torchvision",
    "make_stage",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
]

EXPANSION = {"bottleneck": 4, "plain": 1}
"""Output channels of a stage per unit of its width (torchvision's ``block.expansion``)."""

WIDTHS = (64, 128, 256, 512)
"""Width of each stage: the bottleneck width, or the output channels of a plain stage."""

STEM_PLANES = 64
"""Output channels of the stem."""

ARCHS: dict[str, tuple[tuple[int, int, int, int], str]] = {
    "resnet18": ((2, 2, 2, 2), "plain"),
    "resnet34": ((3, 4, 6, 3), "plain"),
    "resnet50": ((3, 4, 6, 3), "bottleneck"),
    "resnet101": ((3, 4, 23, 3), "bottleneck"),
    "resnet152": ((3, 8, 36, 3), "bottleneck"),
}
"""The presets: name -> (blocks per stage, block type)."""

STRIDES = (1, 2, 2, 2)
"""``strides=`` default: the stride of each stage's first block (torchvision's)."""

INPUT_SIZES = {1: (4096,), 2: (224, 224), 3: (16, 112, 112)}
"""The input size ``pretrained_cfg`` names per dimension (torchvision's 224 x 224 in 2-D)."""

STEM_POOL = {"kernel_size": 3, "stride": 2, "padding": 1}
"""The max-pool after the stem (``stem_pool=True``), the same in every dimension."""

VIDEO_ARCHS: dict[str, dict[str, Any]] = {
    "r3d_18": {
        "layers": (2, 2, 2, 2), "block": "plain", "ndim": 3, "stem_kernel_size": (3, 7, 7), "stem_stride": (1, 2, 2),
        "stem_pool": False, "strides": (1, 2, 2, 2), "kernel_sizes": None,
    },
    "mc3_18": {
        "layers": (2, 2, 2, 2), "block": "plain", "ndim": 3, "stem_kernel_size": (3, 7, 7), "stem_stride": (1, 2, 2),
        "stem_pool": False, "strides": (1, (1, 2, 2), (1, 2, 2), (1, 2, 2)),
        "kernel_sizes": (3, (1, 3, 3), (1, 3, 3), (1, 3, 3)),
    },
}
"""torchvision's video ResNets as `ResNet` arguments: ``ResNet(**VIDEO_ARCHS['r3d_18'], num_classes=400)``.

Both have a (3, 7, 7) stem of stride (1, 2, 2) and no max-pool. ``r3d_18``: 3x3x3 convolutions,
stages 2-4 strided in time and space. ``mc3_18`` ("mixed convolutions"): 3x3x3 in the first stage,
1x3x3 (no temporal extent, torchvision's ``Conv3DNoTemporal``) and strides (1, 2, 2) in the others."""


# -------------------------------------------------------------------------------------- the pieces


def make_stem(
    in_planes: int,
    normalizer: LayerSpec,
    activator: LayerSpec,
    layer_order: str,
    ndim: int = 2,
    kernel_size: IntOrTuple = 7,
    stride: IntOrTuple = 2,
) -> ConvModern:
    """The stem before the max-pool: ``conv`` (7-wide, stride 2) -> ``norm`` -> ``act`` in ``'old'`` order, ``conv`` alone in ``'new'``.

    In pre-activation order every block normalizes and activates its own input, so the stem is a
    bare unit (``bare=True``, as timm's ``resnetv2``); its output, max-pooled, starts the residual
    stream. Its conv has a bias only when there is no normalizer at all (the unit's rule); its
    padding keeps the size at stride 1 (`blocks.conv.same_padding`), so a side ``n`` becomes
    ``ceil(n / stride)``.

    Args:
        in_planes: Input channels.
        normalizer: Normalizer spec, see `blocks.layers`.
        activator: Activator spec, see `blocks.layers`.
        layer_order: ``'old'`` or ``'new'``.
        ndim: Spatial dimensions.
        kernel_size: Odd kernel size of the conv, an int or one per dimension.
        stride: Stride of the conv, an int or one per dimension.

    Returns:
        A unit with ``conv`` [, ``norm``, ``act``], mapping (B, in_planes, *spatial) to (B, 64, *spatial / stride).

    Examples:
        >>> make_stem(1, "batch", "relu", "new")
        ConvModern2d(
          (conv): Conv2d(1, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)
        )
        >>> make_stem(3, "batch", "relu", "old", 3, kernel_size=(3, 7, 7), stride=(1, 2, 2)).conv
        Conv3d(3, 64, kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False)
    """
    kernel = check_tuple("kernel_size", kernel_size, ndim)
    return named_class(ConvModern, ndim)(
        in_planes, STEM_PLANES, kernel, stride, same_padding(kernel), None, normalizer, activator, layer_order,
        bare=layer_order == "new",
    )


def make_stage(
    block: str,
    in_planes: int,
    out_planes: int,
    depth: int,
    stride: IntOrTuple,
    normalizer: LayerSpec,
    activator: LayerSpec,
    layer_order: str,
    ndim: int = 2,
    kernel_size: IntOrTuple = 3,
    dilation: IntOrTuple = 1,
    first_dilation: IntOrTuple | None = None,
) -> nn.Sequential:
    """A stage: ``depth`` blocks in torchvision's configuration, the first taking the stride and the change of channels.

    The blocks follow `blocks.residual.BlockSpec` with torchvision's hidden widths (a bottleneck
    ``out_planes // 4`` wide, strided in its k x k unit; a plain block ``out_planes`` wide, strided in
    its first unit); the projection shortcut of the first block has the same stride.

    Args:
        block: ``'bottleneck'`` or ``'plain'``.
        in_planes: Input channels of the stage.
        out_planes: Output channels of every block.
        depth: Number of blocks.
        stride: Stride of the first block, an int or one per dimension; the others have stride 1.
        normalizer: Normalizer spec, see `blocks.layers`.
        activator: Activator spec, see `blocks.layers`.
        layer_order: ``'old'`` or ``'new'``.
        ndim: Spatial dimensions.
        kernel_size: Odd kernel size of the k x k convs of every block, an int or one per dimension.
        dilation: Dilation of the k x k convs (a dilated stage, `blocks.levels.dilated_levels`).
        first_dilation: Dilation of the first block's, the stage before's (None: ``dilation``).

    Returns:
        An ``nn.Sequential`` of the blocks.

    Examples:
        >>> stage = make_stage("plain", 64, 128, 2, 2, "batch", "relu", "old")
        >>> [b.shortcut is None for b in stage]
        [False, True]
        >>> stage = make_stage("plain", 64, 128, 2, (1, 2, 2), "batch", "relu", "old", 3, kernel_size=(1, 3, 3))
        >>> stage[0].branch[0].conv
        Conv3d(64, 128, kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False)
    """
    spec = BlockSpec(block, kernel_size, normalizer, activator, layer_order, "torchvision", ndim)
    return spec.stage(in_planes, out_planes, depth, stride, dilation, first_dilation)


def check_stem_kernel_size(kernel_size: Any, ndim: int) -> tuple[int, ...]:
    """Return ``stem_kernel_size`` as one odd int per dimension, else raise a ValueError naming it.

    Examples:
        >>> check_stem_kernel_size((3, 7, 7), 3)
        (3, 7, 7)
    """
    kernel = check_tuple("stem_kernel_size", kernel_size, ndim)
    if any(k % 2 == 0 for k in kernel):
        raise ValueError(
            f"stem_kernel_size={kernel_size!r} must be odd (an int or {PER_DIMENSION[ndim].split(' (')[0]} of odd "
            "ints), so that the stem's padding (k - 1) // 2 maps a side n to ceil(n / stem_stride)"
        )
    return kernel


def init_weights(model: nn.Module) -> None:
    """`ResNet`'s weight initialisation (torchvision's): convolutions Kaiming normal, fan-out, for ReLU.

    Norm layers already start at weight 1 and bias 0; ``nn.Linear`` keeps PyTorch's default.

    Examples:
        >>> conv = nn.Conv2d(64, 64, 3)
        >>> init_weights(nn.Sequential(conv))
        >>> 0.04 < conv.weight.std().item() < 0.07  # sqrt(2 / (64 * 3 * 3)) = 0.059
        True
    """
    for module in model.modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")


# ------------------------------------------------------------------------------------------ ResNet


class ResNet(Configurable, FeatureAPI, GradCheckpointing, nn.Module):
    """A ResNet of four stages of residual blocks, torchvision's architecture by default.

    ``stem`` (7x7/2 conv + norm + act) -> ``pool`` (3x3/2 max-pool) -> ``layer1`` ... ``layer4``
    (64, 128, 256, 512 wide; stride 2 in the first block of stages 2-4) -> ``avgpool`` -> flatten
    -> ``fc``. Bottleneck stages output 4x their width.

    ``layer_order='new'`` gives the pre-activation ResNet (He et al. 2016, "Identity Mappings in
    Deep Residual Networks"): blocks in norm -> act -> conv order, a stem that is the 7x7/2 conv
    alone (as timm's ``resnetv2``: the first block pre-activates its input), and ``norm_act``, a
    norm + act after the last stage.

    The geometry is one argument each, per stage and per dimension where need be (anisotropic
    volumes, video clips): ``strides`` and ``kernel_sizes`` of the four stages, ``stem_kernel_size``,
    ``stem_stride`` and ``stem_pool``. torchvision's video ResNets are two such settings
    (`VIDEO_ARCHS`): ``r3d_18`` is ``ResNet([2, 2, 2, 2], 'plain', ndim=3, stem_kernel_size=(3, 7, 7),
    stem_stride=(1, 2, 2), stem_pool=False)``.

    As in torchvision, activations that read a fresh norm or conv output, or the residual sum, work
    in place (`blocks.layers.in_place`).

    Args:
        layers: Number of blocks in each of the 4 stages, e.g. ``(3, 4, 6, 3)``.
        block: ``'bottleneck'`` or ``'plain'``.
        in_planes: Input channels (1 for grey images).
        num_classes: Number of classes of the ``fc`` head; 0 for the pooled features (timm's
            convention: ``forward`` returns (B, num_features)); None for a backbone whose ``forward``
            returns the last feature map.
        normalizer: Normalizer spec for every layer, see `blocks.layers`.
        activator: Activator spec for every layer, see `blocks.layers`.
        layer_order: ``'old'`` (torchvision) or ``'new'`` (pre-activation).
        strides: The stride of the first block of each of the 4 stages, each an int or one per
            dimension, e.g. ``(1, (1, 2, 2), (1, 2, 2), (1, 2, 2))`` to keep the depth of a clip.
        kernel_sizes: The odd kernel size of the k x k convs of every block of each of the 4 stages,
            each an int or one per dimension, e.g. ``(3, (1, 3, 3), (1, 3, 3), (1, 3, 3))``; None
            for 3 everywhere.
        stem_kernel_size: Odd kernel size of the stem's conv, an int or one per dimension; its
            padding is ``(k - 1) // 2``.
        stem_stride: Stride of the stem's conv, an int or one per dimension.
        stem_pool: The 3/2 max-pool (padding 1, the same in every dimension) after the stem; False
            for none (``pool`` is then None and the first stage reads the stem's output).
        global_pool: The head's global pooling (timm's values): ``'avg'``, ``'max'``, ``'avgmax'``
            (half the sum of both) or ``''`` (none; only with ``num_classes=0``, whose ``forward``
            then returns the last map, or None).
        output_stride: 8, 16 or 32: the last map at most at this reduction, the stages past it
            dilated instead of strided (torchvision's ``replace_stride_with_dilation``, timm's
            ``output_stride``; `blocks.levels.dilated_levels`): 16 dilates ``layer4`` by 2, 8 also
            ``layer3`` by 2 and ``layer4`` by 4, the first block of a dilated stage keeping the
            dilation of the stage before. Same weights, larger maps. None: no dilation.
        ndim: Spatial dimensions: 2 for images, 1 for signals (B, C, L), 3 for volumes or clips
            (B, C, D, H, W), with the same stem (7-wide conv, stride 2, max-pool 3 / stride 2) and
            stages by default.

    timm's feature API (`blocks.features.FeatureAPI`): ``forward_features`` (the last map),
    ``forward_intermediates`` (the stem's output before the max-pool, then each stage's),
    ``forward_head``, ``reset_classifier``, ``prune_intermediate_layers``.

    Attributes:
        feature_info: For each map of ``forward_intermediates``: its channels (``num_chs``),
            reduction per dimension (``reductions``) and the largest of them (``reduction``,
            timm's int), and the submodule that outputs it (``module``).
        num_features: Channels of the last feature map.
        strides: The stride of each stage, one int per dimension (1 in a dilated stage).
        dilations: The dilation of each stage's later blocks, one int per dimension.
        kernel_sizes: The kernel size of each stage, one int per dimension.
        global_pool: The head's global pooling (`reset_classifier` changes it).
        head_hidden_size: Width of the features that reach ``fc`` (``num_features``; timm's name).
        pretrained_cfg: timm's description of the model (input size, pool size, first conv,
            classifier, mean and std; no URL: `blocks.features.timm_cfg`); ``default_cfg`` is the same.

    Raises:
        ValueError: For any argument out of its allowed values.

    Examples:
        >>> import torch
        >>> net = ResNet([2, 2, 2, 2], "plain", in_planes=1, num_classes=10)
        >>> net(torch.zeros(2, 1, 64, 64)).shape
        torch.Size([2, 10])
        >>> net.forward_features(torch.zeros(2, 1, 64, 64)).shape
        torch.Size([2, 512, 2, 2])
        >>> [f.shape[1] for f in net.forward_intermediates(torch.zeros(2, 1, 64, 64), intermediates_only=True)]
        [64, 64, 128, 256, 512]

        A clip backbone that keeps all 8 frames (mc3_18's geometry), and one whose last stage keeps its depth:

        >>> clips = ResNet([1, 1, 1, 1], "plain", num_classes=None, ndim=3, stem_kernel_size=(3, 7, 7),
        ...                stem_stride=(1, 2, 2), stem_pool=False, strides=(1, (1, 2, 2), (1, 2, 2), (1, 2, 2)),
        ...                kernel_sizes=(3, (1, 3, 3), (1, 3, 3), (1, 3, 3)))
        >>> clips(torch.zeros(1, 3, 8, 64, 64)).shape
        torch.Size([1, 512, 8, 4, 4])
        >>> [f["reductions"] for f in clips.feature_info]
        [(1, 2, 2), (1, 2, 2), (1, 4, 4), (1, 8, 8), (1, 16, 16)]
        >>> ResNet([1, 1, 1, 1], "plain", num_classes=None, ndim=3, strides=(1, 2, 2, (1, 2, 2))).feature_info[-1]
        {'num_chs': 512, 'reduction': 32, 'reductions': (16, 32, 32), 'module': 'layer4'}

        A dilated backbone (DeepLab's): the last map at 1/8, of the same weights:

        >>> dilated = ResNet([1, 1, 1, 1], num_classes=None, output_stride=8)
        >>> dilated(torch.zeros(1, 3, 64, 64)).shape, [f["reduction"] for f in dilated.feature_info]
        (torch.Size([1, 2048, 8, 8]), [2, 4, 8, 8, 8])
    """

    @records_config
    def __init__(
        self,
        layers: Sequence[int],
        block: str = "bottleneck",
        in_planes: int = 3,
        num_classes: int | None = 1000,
        normalizer: LayerSpec = "batch",
        activator: LayerSpec = "relu",
        layer_order: str = "old",
        *,
        strides: PerLevel = STRIDES,
        kernel_sizes: PerLevel | None = None,
        stem_kernel_size: IntOrTuple = 7,
        stem_stride: IntOrTuple = 2,
        stem_pool: bool = True,
        global_pool: str = "avg",
        output_stride: int | None = None,
        ndim: int = 2,
    ) -> None:
        super().__init__()
        self.ndim = ndim = check_ndim(ndim)
        layers = check_ints(
            "layers", layers, len(WIDTHS), meaning=", the number of blocks in each stage", example=list(ARCHS["resnet50"][0])
        )
        check_choice("block", block, tuple(BLOCKS))
        self.in_planes = check_positive_int("in_planes", in_planes)
        self.num_classes = check_num_classes(num_classes)
        check_layer_spec(normalizer, "normalizer")
        check_layer_spec(activator, "activator")
        check_choice("layer_order", layer_order, LAYER_ORDERS)
        self.strides = check_strides(strides, len(WIDTHS), ndim)
        self.kernel_sizes = check_kernel_sizes((3,) * len(WIDTHS) if kernel_sizes is None else kernel_sizes,
                                               len(WIDTHS), ndim)
        stem_kernel = check_stem_kernel_size(stem_kernel_size, ndim)
        stem_stride = check_tuple("stem_stride", stem_stride, ndim)
        check_bool("stem_pool", stem_pool)
        check_global_pool(global_pool)

        self.stem = make_stem(in_planes, normalizer, activator, layer_order, ndim, stem_kernel, stem_stride)
        self.pool = torch_layer("MaxPool", ndim)(**STEM_POOL) if stem_pool else None
        pool_stride = (STEM_POOL["stride"] if stem_pool else 1,) * ndim
        stem_reduction, before = reductions_of([stem_stride, pool_stride])
        self.strides, self.dilations = dilated_levels(self.strides, output_stride, before)
        _, _, *reductions = reductions_of([stem_stride, pool_stride, *self.strides])
        self.feature_info = [feature(STEM_PLANES, stem_reduction, "stem")]  # (TorchScript cannot read the type)
        planes = STEM_PLANES
        for index, (depth, width) in enumerate(zip(layers, WIDTHS)):
            name, out_planes = f"layer{index + 1}", width * EXPANSION[block]
            previous = None if index == 0 else compact(self.dilations[index - 1])
            self.add_module(name, make_stage(block, planes, out_planes, depth, self.strides[index], normalizer,
                                             activator, layer_order, ndim, self.kernel_sizes[index],
                                             compact(self.dilations[index]), previous))
            self.feature_info.append(feature(out_planes, reductions[index], name))
            planes = out_planes
        self.num_features = planes
        norm_act = NormAct(planes, normalizer, activator, ndim) if layer_order == "new" else None
        self.norm_act = norm_act if norm_act else None  # None rather than empty when both are 'null'
        if self.norm_act is not None:
            self.feature_info[-1] = FeatureInfo(**{**self.feature_info[-1], "module": "norm_act"})
        self.chain = ["stem", *(["pool"] if stem_pool else []), "layer1", "layer2", "layer3", "layer4"]
        self.init_head(num_classes, global_pool, in_planes, INPUT_SIZES[ndim], "stem.conv")

        init_weights(self)

    @property
    @torch.jit.unused
    def min_size(self) -> int | tuple[int, ...]:
        """The smallest side that keeps the deepest map above one pixel (an int, or one per dimension).

        Smaller inputs work where every normalizer has more than one value per group there (in eval
        mode, or in training with a batch of 2 or more: `blocks.levels.one_pixel_problem`).
        """
        return compact(min_sizes(self.feature_info[-1]["reductions"]))

    def check_input(self, x: Tensor) -> None:
        """Raise a clear error unless ``x`` is (B, in_planes, *spatial) and its deepest map can be normalized.

        Steps aside while fx traces.
        """
        check_input(self, x, self.in_planes, self.ndim)
        check_min_size(self, x, self.min_size, self.feature_info[-1]["reductions"], partial(one_pixel_problem, self))

    def forward_stages(self, x: Tensor) -> Tensor:
        """``stem`` -> ``pool`` -> ``layer1`` ... ``layer4`` (``chain``), without the input check or ``norm_act``."""
        x = self.stem(x)
        if self.pool is not None:
            x = self.pool(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def feature(channels: int, reductions: Sequence[int], module: str) -> FeatureInfo:
    """One ``feature_info`` entry: the reduction per dimension, and timm's int, the largest of them.

    Examples:
        >>> feature(64, (1, 2, 2), "stem")
        {'num_chs': 64, 'reduction': 2, 'reductions': (1, 2, 2), 'module': 'stem'}
    """
    return FeatureInfo(num_chs=channels, reduction=max(reductions), reductions=tuple(reductions), module=module)


def resnet18(**kwargs: Any) -> ResNet:
    """ResNet-18: plain blocks, (2, 2, 2, 2) per stage; 11,689,512 parameters with the defaults.

    Args:
        **kwargs: Keyword arguments of `ResNet` (``in_planes``, ``num_classes``, ``ndim``,
            ``normalizer``, ``activator``, ``layer_order``).

    Examples:
        >>> sum(p.numel() for p in resnet18().parameters())
        11689512
    """
    return ResNet(*ARCHS["resnet18"], **kwargs)


def resnet34(**kwargs: Any) -> ResNet:
    """ResNet-34: plain blocks, (3, 4, 6, 3) per stage; 21,797,672 parameters with the defaults.

    Args:
        **kwargs: Keyword arguments of `ResNet`.

    Examples:
        >>> resnet34(num_classes=None).num_features
        512
    """
    return ResNet(*ARCHS["resnet34"], **kwargs)


def resnet50(**kwargs: Any) -> ResNet:
    """ResNet-50: bottleneck blocks, (3, 4, 6, 3) per stage; 25,557,032 parameters with the defaults.

    Args:
        **kwargs: Keyword arguments of `ResNet`.

    Examples:
        >>> [f["num_chs"] for f in resnet50(num_classes=None).feature_info]
        [64, 256, 512, 1024, 2048]
    """
    return ResNet(*ARCHS["resnet50"], **kwargs)


def resnet101(**kwargs: Any) -> ResNet:
    """ResNet-101: bottleneck blocks, (3, 4, 23, 3) per stage; 44,549,160 parameters with the defaults.

    Args:
        **kwargs: Keyword arguments of `ResNet`.

    Examples:
        >>> len(resnet101(layer_order="new").layer3)
        23
    """
    return ResNet(*ARCHS["resnet101"], **kwargs)


def resnet152(**kwargs: Any) -> ResNet:
    """ResNet-152: bottleneck blocks, (3, 8, 36, 3) per stage; 60,192,808 parameters with the defaults.

    Args:
        **kwargs: Keyword arguments of `ResNet`.

    Examples:
        >>> import torch
        >>> with torch.device("meta"):
        ...     net = resnet152()
        >>> sum(p.numel() for p in net.parameters())
        60192808
    """
    return ResNet(*ARCHS["resnet152"], **kwargs)


# ------------------------------------------------------------------------------ torchvision weights

LAYOUTS = ("image", "video")
"""The key layouts `from_torchvision` reads: torchvision's ResNets (``torchvision.models.resnet50``) and
its video ResNets (``torchvision.models.video.r3d_18``, ``mc3_18``)."""

_TORCHVISION_RULES = (
    # our module path                        torchvision's ResNets  its video ResNets
    (re.compile(r"^stem\.conv\."),           "conv1.",              "stem.0."),
    (re.compile(r"^stem\.norm\."),           "bn1.",                "stem.1."),
    (re.compile(r"\.branch\.(\d)\.conv\."),  ".conv{n}.",           ".conv{n}.0."),
    (re.compile(r"\.branch\.(\d)\.norm\."),  ".bn{n}.",             ".conv{n}.1."),
    (re.compile(r"\.shortcut\.conv\."),      ".downsample.0.",      ".downsample.0."),
    (re.compile(r"\.shortcut\.norm\."),      ".downsample.1.",      ".downsample.1."),
)
"""Our module path -> torchvision's, one column per layout of `LAYOUTS` (``{n}``: the unit's place in its
block, from 1); ``layerN.i.`` and ``fc.`` are the same in all."""

STEM_KEYS = {"image": "conv1.weight", "video": "stem.0.weight"}
"""The stem conv's weight in each layout (it tells the input channels)."""

_FACTORISED = re.compile(r"^stem\.3\.|^layer\d\.\d+\.conv\d\.0\.\d+\.")
"""Keys only torchvision's ``r2plus1d_18`` has: a second stem conv, and (2+1)-D pairs inside each block conv."""


def _torchvision_key(key: str, layout: str = "image") -> str:
    """The torchvision name of one of our state-dict keys in ``layout``.

    Examples:
        >>> _torchvision_key("layer1.0.branch.1.norm.bias"), _torchvision_key("layer1.0.branch.1.norm.bias", "video")
        ('layer1.0.bn2.bias', 'layer1.0.conv2.1.bias')
    """
    column = LAYOUTS.index(layout)
    for pattern, *replacements in _TORCHVISION_RULES:
        replacement = replacements[column]
        key = pattern.sub(lambda m: replacement.format(n=int(m[1]) + 1) if m.lastindex else replacement, key)
    return key


def _layout(state: Mapping[str, Tensor]) -> str:
    """``'video'`` if the keys are those of torchvision's video ResNets (any key under ``stem.``), else ``'image'``.

    Raises:
        ValueError: For ``r2plus1d_18``'s weights (named), or a ``stem.0.weight`` that is not a 5-D kernel.
    """
    if not any(key.startswith("stem.") for key in state):
        return "image"
    factorised = sorted(key for key in state if _FACTORISED.match(key))
    if factorised:
        raise ValueError(
            f"from_torchvision: these are the weights of torchvision's r2plus1d_18 (keys such as {factorised[:2]}): "
            "its (2+1)-D convolutions (each 3-D conv split into a spatial conv, a norm and a temporal conv) have no "
            f"counterpart in blocks' ResNet; the video ResNets it reads are {list(VIDEO_ARCHS)}"
        )
    stem = state.get(STEM_KEYS["video"])
    if stem is not None and stem.dim() != 5:
        raise ValueError(
            f"from_torchvision: stem.0.weight has shape {tuple(stem.shape)}; in torchvision's video ResNets it is the "
            "5-D kernel (out, in, t, h, w) of the stem's conv"
        )
    return "video"


def _infer_arch(state: Mapping[str, Tensor]) -> tuple[tuple[int, ...], str]:
    """Blocks per stage and block type of a torchvision ResNet state dict, from its keys (either layout)."""
    depths = tuple(
        len({match[1] for key in state if (match := re.match(rf"layer{stage}\.(\d+)\.", key))})
        for stage in range(1, len(WIDTHS) + 1)
    )
    if not all(depths):
        raise ValueError(
            f"cannot infer the architecture: blocks per stage {list(depths)} from the keys "
            f"(not a torchvision ResNet?); pass arch= one of {[*ARCHS, *VIDEO_ARCHS]}"
        )
    block = "bottleneck" if any(re.match(r"layer\d\.\d+\.conv3\.", key) for key in state) else "plain"
    return depths, block


def _video_geometry(state: Mapping[str, Tensor], block: str) -> dict[str, Any]:
    """`ResNet`'s geometry arguments for the weights of a torchvision video ResNet.

    The kernels are the weights' shapes: the stem's, and each stage's k x k conv (``conv1`` of a
    plain block, ``conv2`` of a bottleneck). The strides are torchvision's: the stem's
    ``BasicStem`` has stride (1, 2, 2) and no max-pool; stages 2-4 stride 2 in every dimension
    where their kernel is wider than 1 (``Conv3DSimple``, 3x3x3: (2, 2, 2); ``Conv3DNoTemporal``,
    1x3x3: (1, 2, 2)), as its ``get_downsample_stride``.

    Raises:
        ValueError: If a kernel it reads is missing.
    """
    unit = "conv2" if block == "bottleneck" else "conv1"
    keys = [STEM_KEYS["video"], *(f"layer{i}.0.{unit}.0.weight" for i in range(1, len(WIDTHS) + 1))]
    missing = [key for key in keys if key not in state]
    if missing:
        raise ValueError(
            f"cannot infer the video ResNet's kernels: missing keys {missing}; pass arch= one of {list(VIDEO_ARCHS)}"
        )
    stem, *kernels = (tuple(state[key].shape[2:]) for key in keys)
    strides = (1, *(compact(tuple(2 if k > 1 else 1 for k in kernel)) for kernel in kernels[1:]))
    same = all(kernel == (3, 3, 3) for kernel in kernels)
    return {
        "ndim": 3, "stem_kernel_size": stem, "stem_stride": (1, 2, 2), "stem_pool": False, "strides": strides,
        "kernel_sizes": None if same else tuple(compact(kernel) for kernel in kernels),
    }


def _check_keys(model: ResNet, state: Mapping[str, Tensor], names: Mapping[str, str]) -> None:
    """Raise a ValueError naming every missing, unexpected or mis-shaped key of ``state``.

    ``names`` maps torchvision's names to ours. A missing BatchNorm ``num_batches_tracked`` (old
    checkpoints lack it) is not an error: it starts at 0, as in ``BatchNorm2d.load_state_dict``.
    """
    ours = model.state_dict()
    missing = [key for key in names if key not in state and not key.endswith(".num_batches_tracked")]
    unexpected = [key for key in state if key not in names]
    mis_shaped = [
        f"{key}: {tuple(state[key].shape)}, expected {tuple(ours[names[key]].shape)}"
        for key in names
        if key in state and state[key].shape != ours[names[key]].shape
    ]
    problems = [
        f"{label} {items}" for label, items in
        (("missing keys", missing), ("unexpected keys", unexpected), ("mis-shaped keys", mis_shaped)) if items
    ]
    if problems:
        raise ValueError(f"from_torchvision: the weights do not fit this ResNet: {'; '.join(problems)}")


CONV_GEOMETRY = ("kernel_size", "stride", "padding", "dilation", "groups", "padding_mode")
"""What `_check_geometry` compares between a torchvision conv and ours."""


def _check_geometry(source: nn.Module, model: ResNet, names: Mapping[str, str]) -> None:
    """Raise a ValueError naming every conv (and the max-pool) of ``source`` built otherwise than ``model``'s.

    Weights say nothing of strides, paddings or pooling; a torchvision module does, so a module
    changed after construction (a stride edited, ``maxpool`` replaced) is refused rather than read
    into a model that computes something else.
    """
    theirs, ours = dict(source.named_modules()), dict(model.named_modules())
    problems = []
    for key, our_key in names.items():
        mine = ours.get(our_key.rpartition(".")[0])
        if not key.endswith(".weight") or not isinstance(mine, nn.modules.conv._ConvNd):
            continue
        path = key.rpartition(".")[0]
        other = theirs.get(path)
        if not isinstance(other, nn.modules.conv._ConvNd):
            problems.append(f"{path} is {type(other).__name__}, expected {type(mine).__name__}")
            continue
        problems += [
            f"{path}.{name}={getattr(other, name)!r}, expected {getattr(mine, name)!r}"
            for name in CONV_GEOMETRY if getattr(other, name) != getattr(mine, name)
        ]
    pool = getattr(source, "maxpool", None)
    if repr(pool) != repr(model.pool):
        problems.append(f"maxpool is {pool!r}, expected {model.pool!r}")
    if problems:
        dilated = any(".dilation=" in problem for problem in problems)
        hint = "; a dilated ResNet (replace_stride_with_dilation) needs output_stride= 16 or 8" if dilated else ""
        raise ValueError(
            f"from_torchvision: this {type(source).__name__} is not built as the ResNet its weights describe: "
            f"{'; '.join(problems)}{hint}"
        )


def from_torchvision(
    model_or_state_dict: nn.Module | Mapping[str, Tensor],
    arch: str | None = None,
    in_planes: int | None = None,
    *,
    output_stride: int | None = None,
) -> ResNet:
    """Build a `ResNet` holding the weights of a torchvision ResNet or video ResNet (``r3d_18``, ``mc3_18``).

    The layout comes from the keys: any key under ``stem.`` (``stem.0.weight``, a 5-D kernel) is a
    video ResNet of ``torchvision.models.video``, read into a 3-D ResNet (``r2plus1d_18``, whose
    convolutions are factorised, is refused by name); else it is torchvision's 2-D ResNet
    (``conv1.weight``, ``bn1.*``). The architecture comes from ``arch`` if given, else from the
    keys: blocks per stage, ``conv3`` for bottlenecks and, for a video ResNet, the kernels from the
    weights' shapes and the strides by torchvision's rule (`VIDEO_ARCHS` has both video ResNets).
    ``in_planes`` comes from the stem's weight; ``num_classes`` from ``fc.weight`` (no ``fc`` keys
    at all, e.g. after ``model.fc = nn.Identity()``, gives a backbone with ``num_classes=None``).
    Every key must map to a tensor of the same shape in the new model (one table of rules for both
    layouts) and every weight of the new model must be given: nothing is dropped or left random.
    From a module, its convolutions and max-pool must also be built as the new model's.

    The weights are copied (not shared) and keep their device and dtype. A module's train/eval
    mode is kept too; from a state dict the model is in training mode.

    Args:
        model_or_state_dict: A torchvision ResNet (``torchvision.models.resnet50()``...) or video
            ResNet (``torchvision.models.video.r3d_18()``, ``mc3_18()``), or its ``state_dict()``.
        arch: ``'resnet18'`` ... ``'resnet152'``, or ``'r3d_18'`` / ``'mc3_18'`` for a video ResNet;
            inferred when None.
        in_planes: Input channels of the new model; None keeps the weights' own. ``1`` with RGB
            weights sums the stem's kernels over their three input channels (as timm adapts
            pretrained stems), so a grey image ``g`` gives what the RGB image ``(g, g, g)`` gave.
        output_stride: The new model's (see `ResNet`): 16 for torchvision's
            ``replace_stride_with_dilation=[False, False, True]``, 8 for ``[False, True, True]``;
            weights say nothing of it, so a dilated module needs it (its convs are compared).

    Returns:
        The ResNet, with the defaults (batch norm, ReLU, ``'old'`` order) and the weights' geometry.

    Raises:
        ValueError: If ``arch`` is unknown or of the other layout (the names allowed are those of the
            weights' layout), ``in_planes`` is neither None, the weights' own nor 1, the weights are
            ``r2plus1d_18``'s, keys are missing, unexpected or mis-shaped (each one named), or a
            module's convolutions or max-pool differ from the new model's.

    Examples:
        >>> import torch, torchvision
        >>> tv = torchvision.models.resnet18(num_classes=10).eval()
        >>> net = from_torchvision(tv)
        >>> x = torch.randn(1, 3, 64, 64)
        >>> torch.allclose(net(x), tv(x))
        True
        >>> grey = from_torchvision(tv, in_planes=1)
        >>> torch.allclose(grey(x[:, :1]), tv(x[:, :1].expand(-1, 3, -1, -1)), atol=1e-6)
        True

        A video ResNet: 1x3x3 kernels and strides (1, 2, 2) after the first stage, no max-pool:

        >>> video = torchvision.models.video.mc3_18(num_classes=5).eval()
        >>> net = from_torchvision(video)
        >>> clip = torch.randn(1, 3, 2, 16, 16)
        >>> torch.allclose(net(clip), video(clip), atol=1e-5)
        True
        >>> net.ndim, net.stem.conv.kernel_size, net.pool, net.layer2[0].branch[0].conv.stride
        (3, (3, 7, 7), None, (1, 2, 2))
    """
    if isinstance(model_or_state_dict, nn.Module):
        state, training = model_or_state_dict.state_dict(), model_or_state_dict.training
    elif isinstance(model_or_state_dict, Mapping):
        state, training = model_or_state_dict, True
    else:
        raise ValueError(
            f"from_torchvision takes a torchvision ResNet or its state_dict, got {type(model_or_state_dict).__name__}"
        )
    layout = _layout(state)
    if arch is None:
        layers, block = _infer_arch(state)
        geometry = _video_geometry(state, block) if layout == "video" else {}
    else:
        kind, keys, allowed, other = (
            ("video", "stem.0.*, layer1.0.conv1.0.*", VIDEO_ARCHS, ARCHS) if layout == "video"
            else ("2-D", "conv1.*, bn1.*", ARCHS, VIDEO_ARCHS)
        )
        if isinstance(arch, str) and arch in other:
            raise ValueError(
                f"from_torchvision got arch={arch!r} for the weights of a torchvision {kind} ResNet (keys {keys}); "
                f"use None or one of {list(allowed)}"
            )
        check_choice("arch", arch, list(allowed))
        if arch in VIDEO_ARCHS:
            geometry = dict(VIDEO_ARCHS[arch])
            layers, block = geometry.pop("layers"), geometry.pop("block")
        else:
            (layers, block), geometry = ARCHS[arch], {}
    stem_key = STEM_KEYS[layout]
    own = state[stem_key].shape[1] if stem_key in state else 3
    if in_planes is not None and in_planes not in (own, 1):
        raise ValueError(
            f"from_torchvision got in_planes={in_planes!r} for weights with {own} input channels; "
            f"use None or {own} (the weights' own) or 1 (the stem's kernels summed)"
        )
    if in_planes is not None and in_planes != own:
        state = {**state, stem_key: state[stem_key].sum(dim=1, keepdim=True)}
    in_planes = own if in_planes is None else in_planes
    head = state.get("fc.weight", state.get("fc.bias"))
    with torch.device("meta"):
        dilated = {} if output_stride is None else {"output_stride": output_stride}
        model = ResNet(layers, block, in_planes, None if head is None else head.shape[0], **geometry, **dilated)

    names = {_torchvision_key(key, layout): key for key in model.state_dict()}
    _check_keys(model, state, names)
    if isinstance(model_or_state_dict, nn.Module):
        _check_geometry(model_or_state_dict, model, names)
    like = state[stem_key]
    weights = {
        ours: state[key].detach().clone() if key in state else torch.zeros((), dtype=torch.long, device=like.device)
        for key, ours in names.items()
    }
    model.load_state_dict(weights, assign=True)
    return model.train(training)
