"""ResNet backbones of plain or bottleneck blocks in 1-D, 2-D and 3-D, and torchvision weight import.

With the defaults, ``resnet18`` ... ``resnet152`` are torchvision's architectures layer for layer
(same parameter counts, same summary rows), and `from_torchvision` loads torchvision's weights.

Structure of `ResNet` (these are also the module names in ``feature_info``):

* ``stem``: 7x7/2 conv + norm + act in ``'old'`` order; the 7x7/2 conv alone in ``'new'`` order;
* ``pool``: 3x3/2 max-pool;
* ``layer1`` ... ``layer4``: the stages, built by `make_stage`;
* ``norm_act``: norm + act after the last stage, only in ``'new'`` (pre-activation) order;
* ``avgpool``, ``fc``: the classifier head, absent when ``num_classes=None``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .checks import LAYER_ORDERS, check_choice, check_input, check_ints, check_ndim, check_positive_int, named_class
from .configurable import Configurable, records_config
from .conv import ConvModern, NormAct
from .features import FeatureAPI, FeatureInfo, check_num_classes
from .layers import LayerSpec, check_layer_spec, torch_layer
from .residual import BLOCKS, BlockSpec, GradCheckpointing

__all__ = [
    "ARCHS",
    "ResNet",
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


# -------------------------------------------------------------------------------------- the pieces


def make_stem(
    in_planes: int, normalizer: LayerSpec, activator: LayerSpec, layer_order: str, ndim: int = 2
) -> ConvModern:
    """The stem before the max-pool: ``conv`` 7-wide, stride 2 -> ``norm`` -> ``act`` in ``'old'`` order, ``conv`` alone in ``'new'``.

    In pre-activation order every block normalizes and activates its own input, so the stem is a
    bare unit (``bare=True``, as timm's ``resnetv2``); its output, max-pooled, starts the residual
    stream. Its conv has a bias only when there is no normalizer at all (the unit's rule).

    Args:
        in_planes: Input channels.
        normalizer: Normalizer spec, see `blocks.layers`.
        activator: Activator spec, see `blocks.layers`.
        layer_order: ``'old'`` or ``'new'``.
        ndim: Spatial dimensions.

    Returns:
        A unit with ``conv`` [, ``norm``, ``act``], mapping (B, in_planes, *spatial) to (B, 64, *spatial / 2).

    Examples:
        >>> make_stem(1, "batch", "relu", "new")
        ConvModern2d(
          (conv): Conv2d(1, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)
        )
    """
    return named_class(ConvModern, ndim)(
        in_planes, STEM_PLANES, 7, 2, 3, None, normalizer, activator, layer_order, bare=layer_order == "new"
    )


def make_stage(
    block: str,
    in_planes: int,
    out_planes: int,
    depth: int,
    stride: int,
    normalizer: LayerSpec,
    activator: LayerSpec,
    layer_order: str,
    ndim: int = 2,
) -> nn.Sequential:
    """A stage: ``depth`` blocks in torchvision's configuration, the first taking the stride and the change of channels.

    The blocks follow `blocks.residual.BlockSpec` with torchvision's hidden widths (a bottleneck
    ``out_planes // 4`` wide, strided in its 3x3 unit; a plain block ``out_planes`` wide, strided in
    its first unit).

    Args:
        block: ``'bottleneck'`` or ``'plain'``.
        in_planes: Input channels of the stage.
        out_planes: Output channels of every block.
        depth: Number of blocks.
        stride: Stride of the first block; the others have stride 1.
        normalizer: Normalizer spec, see `blocks.layers`.
        activator: Activator spec, see `blocks.layers`.
        layer_order: ``'old'`` or ``'new'``.
        ndim: Spatial dimensions.

    Returns:
        An ``nn.Sequential`` of the blocks.

    Examples:
        >>> stage = make_stage("plain", 64, 128, 2, 2, "batch", "relu", "old")
        >>> [b.shortcut is None for b in stage]
        [False, True]
    """
    spec = BlockSpec(block, 3, normalizer, activator, layer_order, "torchvision", ndim)
    return spec.stage(in_planes, out_planes, depth, stride)


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
        ndim: Spatial dimensions: 2 for images, 1 for signals (B, C, L), 3 for volumes (B, C, D, H, W),
            with the same stem (7-wide conv, stride 2, max-pool 3 / stride 2) and stages.

    timm's feature API (`blocks.features.FeatureAPI`): ``forward_features`` (the last map),
    ``forward_intermediates`` (the stem's output before the max-pool, then each stage's),
    ``forward_head``, ``reset_classifier``, ``prune_intermediate_layers``.

    Attributes:
        feature_info: For each map of ``forward_intermediates``: its channels (``num_chs``),
            reduction (``reduction``) and the submodule that outputs it (``module``).
        num_features: Channels of the last feature map.

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

        self.stem = make_stem(in_planes, normalizer, activator, layer_order, ndim)
        self.pool = torch_layer("MaxPool", ndim)(3, stride=2, padding=1)
        self.feature_info: list[FeatureInfo] = [FeatureInfo(num_chs=STEM_PLANES, reduction=2, module="stem")]
        planes = STEM_PLANES
        for index, (depth, width) in enumerate(zip(layers, WIDTHS)):
            name, out_planes, stride = f"layer{index + 1}", width * EXPANSION[block], 1 if index == 0 else 2
            self.add_module(name, make_stage(block, planes, out_planes, depth, stride, normalizer, activator,
                                             layer_order, ndim))
            self.feature_info.append(FeatureInfo(num_chs=out_planes, reduction=4 * 2**index, module=name))
            planes = out_planes
        self.num_features = planes
        norm_act = NormAct(planes, normalizer, activator, ndim) if layer_order == "new" else None
        self.norm_act = norm_act if norm_act else None  # None rather than empty when both are 'null'
        if self.norm_act is not None:
            self.feature_info[-1] = FeatureInfo(num_chs=planes, reduction=self.feature_info[-1]["reduction"],
                                                module="norm_act")
        self.chain = ["stem", "pool", "layer1", "layer2", "layer3", "layer4"]
        self.reset_classifier(num_classes)

        init_weights(self)

    def check_input(self, x: Tensor) -> None:
        """Raise a clear error unless ``x`` is (B, in_planes, *spatial); steps aside while fx traces."""
        check_input(self, x, self.in_planes, self.ndim)


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

_TORCHVISION_RULES = (
    (re.compile(r"^stem\.conv\."), "conv1."),
    (re.compile(r"^stem\.norm\."), "bn1."),
    (re.compile(r"\.branch\.(\d)\.conv\."), lambda m: f".conv{int(m[1]) + 1}."),
    (re.compile(r"\.branch\.(\d)\.norm\."), lambda m: f".bn{int(m[1]) + 1}."),
    (re.compile(r"\.shortcut\.conv\."), ".downsample.0."),
    (re.compile(r"\.shortcut\.norm\."), ".downsample.1."),
)
"""Our module path -> torchvision's; ``layerN.i.`` and ``fc.`` are the same in both."""


def _torchvision_key(key: str) -> str:
    """The torchvision name of one of our state-dict keys, e.g. ``layer1.0.branch.1.norm.bias`` -> ``layer1.0.bn2.bias``."""
    for pattern, replacement in _TORCHVISION_RULES:
        key = pattern.sub(replacement, key)
    return key


def _infer_arch(state: Mapping[str, Tensor]) -> tuple[tuple[int, ...], str]:
    """Blocks per stage and block type of a torchvision ResNet state dict, from its keys."""
    depths = tuple(
        len({match[1] for key in state if (match := re.match(rf"layer{stage}\.(\d+)\.", key))})
        for stage in range(1, len(WIDTHS) + 1)
    )
    if not all(depths):
        raise ValueError(
            f"cannot infer the architecture: blocks per stage {list(depths)} from the keys "
            f"(not a torchvision ResNet?); pass arch= one of {list(ARCHS)}"
        )
    block = "bottleneck" if any(re.match(r"layer\d\.\d+\.conv3\.", key) for key in state) else "plain"
    return depths, block


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


def from_torchvision(
    model_or_state_dict: nn.Module | Mapping[str, Tensor], arch: str | None = None, in_planes: int | None = None
) -> ResNet:
    """Build a `ResNet` holding the weights of a torchvision ResNet.

    The architecture comes from ``arch`` if given, else from the keys (blocks per stage, and
    ``conv3`` for bottlenecks); ``in_planes`` from ``conv1.weight``; ``num_classes`` from
    ``fc.weight`` (no ``fc`` keys at all, e.g. after ``model.fc = nn.Identity()``, gives a
    backbone with ``num_classes=None``). Every key must map to a tensor of the same shape in the new
    model and every weight of the new model must be given: nothing is dropped or left random.

    The weights are copied (not shared) and keep their device and dtype. A module's train/eval
    mode is kept too; from a state dict the model is in training mode.

    Args:
        model_or_state_dict: A torchvision ResNet (``torchvision.models.resnet50()``...) or its
            ``state_dict()``.
        arch: ``'resnet18'`` ... ``'resnet152'``; inferred when None.
        in_planes: Input channels of the new model; None keeps the weights' own. ``1`` with RGB
            weights sums the stem's kernels over their three input channels (as timm adapts
            pretrained stems), so a grey image ``g`` gives what the RGB image ``(g, g, g)`` gave.

    Returns:
        The ResNet, with the defaults (batch norm, ReLU, ``'old'`` order).

    Raises:
        ValueError: If ``arch`` is unknown, ``in_planes`` is neither None, the weights' own nor 1, or
            keys are missing, unexpected or mis-shaped (each one named).

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
    """
    if isinstance(model_or_state_dict, nn.Module):
        state, training = model_or_state_dict.state_dict(), model_or_state_dict.training
    elif isinstance(model_or_state_dict, Mapping):
        state, training = model_or_state_dict, True
    else:
        raise ValueError(
            f"from_torchvision takes a torchvision ResNet or its state_dict, got {type(model_or_state_dict).__name__}"
        )
    layers, block = _infer_arch(state) if arch is None else ARCHS[check_choice("arch", arch, list(ARCHS))]
    own = state["conv1.weight"].shape[1] if "conv1.weight" in state else 3
    if in_planes is not None and in_planes not in (own, 1):
        raise ValueError(
            f"from_torchvision got in_planes={in_planes!r} for weights with {own} input channels; "
            f"use None or {own} (the weights' own) or 1 (the stem's kernels summed)"
        )
    if in_planes is not None and in_planes != own:
        state = {**state, "conv1.weight": state["conv1.weight"].sum(dim=1, keepdim=True)}
    in_planes = own if in_planes is None else in_planes
    head = state.get("fc.weight", state.get("fc.bias"))
    with torch.device("meta"):
        model = ResNet(layers, block, in_planes, None if head is None else head.shape[0])

    names = {_torchvision_key(key): key for key in model.state_dict()}
    _check_keys(model, state, names)
    like = state["conv1.weight"]
    weights = {
        ours: state[key].detach().clone() if key in state else torch.zeros((), dtype=torch.long, device=like.device)
        for key, ours in names.items()
    }
    model.load_state_dict(weights, assign=True)
    return model.train(training)
