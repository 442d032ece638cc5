"""timm's feature API for blocks' own backbones (`ResNet`, `EncoderNet`), with timm's signatures.

A backbone is a chain of named stages; some stages output a feature map (``feature_info`` describes
them, timm's convention). In ``'new'`` (pre-activation) order a final ``norm_act`` follows the last
stage, and the last feature map is taken after it (0.1.0's choice, kept). Then a head: global
pooling (``global_pool``: average by default) and a linear classifier ``fc``.

``num_classes`` means what it means in timm, plus one value: ``None`` keeps no head (``forward``
returns the last map), ``0`` keeps the pooling but no classifier (``forward`` returns the pooled
``(B, num_features)``; with ``global_pool=''`` the map), ``n > 0`` adds the classifier.

The rest of timm's model contract: ``pretrained_cfg`` (alias ``default_cfg``; `timm_cfg`),
``head_hidden_size``, and ``global_pool`` in the constructor and in ``reset_classifier``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypedDict

import torch
from torch import Tensor, nn

from .checks import is_int
from .configurable import forget_config, update_config
from .layers import torch_layer

__all__ = [
    "GLOBAL_POOLS", "AdaptiveAvgMaxPool", "FeatureAPI", "FeatureInfo", "check_global_pool", "check_num_classes",
    "make_global_pool", "take_indices", "timm_cfg",
]

GLOBAL_POOLS = ("avg", "max", "avgmax", "")
"""``global_pool=`` values (timm's): global average, max, half the sum of both, or none (the map itself)."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
"""ImageNet's per-channel statistics (torchvision's and timm's), the ``pretrained_cfg`` of a 3-channel model."""


class FeatureInfo(TypedDict):
    """One entry of a backbone's ``feature_info`` (timm's convention).

    Attributes:
        num_chs: Channels of the feature map.
        reduction: Input size / feature size, the largest of the dimensions (timm's int).
        reductions: Input size / feature size in each dimension (blocks' addition, for anisotropic levels).
        module: Name of the submodule whose output is the feature (``model.get_submodule(module)``).

    Examples:
        >>> FeatureInfo(num_chs=64, reduction=2, reductions=(1, 2, 2), module="stem")
        {'num_chs': 64, 'reduction': 2, 'reductions': (1, 2, 2), 'module': 'stem'}
    """

    num_chs: int
    reduction: int
    reductions: tuple[int, ...]
    module: str


def check_num_classes(num_classes: Any) -> int | None:
    """Return ``num_classes`` if it is an int >= 0 or None, else raise a ValueError.

    Examples:
        >>> check_num_classes(None) is None, check_num_classes(0)
        (True, 0)
    """
    if num_classes is not None and (not is_int(num_classes) or num_classes < 0):
        raise ValueError(
            f"num_classes={num_classes!r} must be a positive int, 0 for the pooled features (timm's convention) "
            "or None for a backbone without a head"
        )
    return num_classes


def take_indices(count: int, indices: int | Sequence[int] | None) -> list[int]:
    """timm's rule for which feature maps to return: None all, an int the last n, a sequence those (negatives from the end).

    Raises:
        ValueError: If an index is out of range or ``indices`` has another type.

    Examples:
        >>> take_indices(5, None), take_indices(5, 2), take_indices(5, (0, -1))
        ([0, 1, 2, 3, 4], [3, 4], [0, 4])
    """
    if indices is None:
        return list(range(count))
    if is_int(indices):
        if not 0 < indices <= count:
            raise ValueError(f"indices={indices} must be between 1 and {count} (the last n of {count} feature maps)")
        return list(range(count - indices, count))
    if isinstance(indices, Sequence) and not isinstance(indices, str):
        taken = []
        for index in indices:
            if not is_int(index) or not -count <= index < count:
                raise ValueError(f"indices={list(indices)!r}: {index!r} is not an index of {count} feature maps")
            taken.append(index % count)
        return taken
    raise ValueError(f"indices={indices!r} must be None, an int (the last n) or a sequence of ints")


def check_global_pool(global_pool: Any) -> str:
    """Return ``global_pool`` if it is one of `GLOBAL_POOLS`, else raise a ValueError naming it.

    Examples:
        >>> check_global_pool("avgmax")
        'avgmax'
    """
    if not isinstance(global_pool, str) or global_pool not in GLOBAL_POOLS:
        raise ValueError(
            f"global_pool={global_pool!r} is not allowed; use one of {list(GLOBAL_POOLS)} (timm's: average, max, "
            "half the sum of both, '' for no pooling)"
        )
    return global_pool


class AdaptiveAvgMaxPool(nn.Module):
    """timm's ``'avgmax'`` global pooling in 1-D, 2-D or 3-D: half the sum of the average and the maximum.

    Args:
        ndim: Spatial dimensions.

    Examples:
        >>> import torch
        >>> AdaptiveAvgMaxPool(1)(torch.tensor([[[0.0, 1.0, 5.0]]]))
        tensor([[[3.5000]]])
    """

    def __init__(self, ndim: int = 2) -> None:
        super().__init__()
        self.avg = torch_layer("AdaptiveAvgPool", ndim)(1)
        self.max = torch_layer("AdaptiveMaxPool", ndim)(1)

    def forward(self, x: Tensor) -> Tensor:
        """Pool (B, C, *spatial) to (B, C, 1, ...)."""
        return 0.5 * (self.avg(x) + self.max(x))


def make_global_pool(global_pool: str, ndim: int) -> nn.Module | None:
    """The global pooling of a `GLOBAL_POOLS` name to a size of 1 in every dimension; None for ``''``.

    Examples:
        >>> make_global_pool("max", 3), make_global_pool("", 2)
        (AdaptiveMaxPool3d(output_size=1), None)
    """
    kind = check_global_pool(global_pool)
    if kind == "":
        return None
    if kind == "avgmax":
        return AdaptiveAvgMaxPool(ndim)
    return torch_layer({"avg": "AdaptiveAvgPool", "max": "AdaptiveMaxPool"}[kind], ndim)(1)


def timm_cfg(
    in_planes: int, num_classes: int | None, size: Sequence[int], reductions: Sequence[int], first_conv: str
) -> dict[str, Any]:
    """A model's ``pretrained_cfg`` in timm's keys, in any dimension; blocks has no weights to point to, so no URL.

    ``input_size`` is ``(in_planes, *size)`` (one side per dimension: timm's (C, H, W) in 2-D),
    ``pool_size`` the size of the last map at that input (``ceil(size / reduction)``), ``mean`` and
    ``std`` ImageNet's with 3 channels, else one value each (ImageNet's averaged over RGB; timm repeats
    a single value for every channel), ``first_conv`` and ``classifier`` the names of the stem's conv
    and of ``fc`` (timm's tests find their ``.weight`` in the state_dict), ``num_classes`` 0 without
    a classifier.

    Examples:
        >>> cfg = timm_cfg(1, 10, (224, 224), (32, 32), "stem.conv")
        >>> cfg["input_size"], cfg["pool_size"], cfg["mean"], cfg["num_classes"]
        ((1, 224, 224), (7, 7), (0.449,), 10)
    """
    rgb = in_planes == 3
    return {
        "num_classes": num_classes or 0,
        "input_size": (in_planes, *size),
        "fixed_input_size": False,
        "pool_size": tuple(math.ceil(n / r) for n, r in zip(size, reductions)),
        "interpolation": "bilinear",
        "crop_pct": 0.875,
        "mean": IMAGENET_MEAN if rgb else (round(sum(IMAGENET_MEAN) / 3, 3),),
        "std": IMAGENET_STD if rgb else (round(sum(IMAGENET_STD) / 3, 3),),
        "first_conv": first_conv,
        "classifier": "fc",
    }


class FeatureAPI:
    """Mixin: ``forward_features``, ``forward_intermediates``, ``forward_head``, ``reset_classifier``, ``prune_intermediate_layers``.

    The network defines ``chain`` (the names of its stages in order), ``feature_info`` (whose
    ``module`` entries name the stages that output features, and ``'norm_act'`` for the last one in
    ``'new'`` order), ``norm_act``, ``num_features``, ``ndim`` and ``check_input(x)``, then calls
    `init_head` for ``avgpool`` (the global pooling, whichever ``global_pool`` says), ``fc``,
    ``num_classes``, ``global_pool``, ``head_hidden_size``, ``pretrained_cfg`` and ``default_cfg``; it
    writes out its stages in ``forward_stages`` (for TorchScript). ``chain`` (a ``list[str]``) and
    ``feature_info`` (a ``list[FeatureInfo]``) have no class annotation: TorchScript would read one as
    the type of a module attribute, and these are Python's alone.
    """

    global_pool: str
    head_argument: str = "num_classes"
    """The constructor's name for the number of classes (``'out_length'`` in `EncoderNet`)."""

    def _feature_stages(self) -> list[str]:
        """The stage whose output is each feature map (the last stage for a ``'norm_act'`` entry)."""
        return [self.chain[-1] if f["module"] == "norm_act" else f["module"] for f in self.feature_info]

    def forward_intermediates(
        self,
        x: Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        """The feature maps ``feature_info`` describes, with timm's signature.

        Args:
            x: Input of shape (B, in_planes, *spatial).
            indices: Which maps: None all, an int the last n, a sequence those (negatives from the end).
            norm: Accepted for timm's callers; in ``'new'`` order the last map is always taken after
                the final ``norm_act`` (as `forward_features` returns it), in ``'old'`` order there is
                no final norm.
            stop_early: Stop after the deepest map asked for; ``final`` is then that stage's output.
            output_fmt: ``'NCHW'`` (channels first, in every dimension).
            intermediates_only: Return only the list.

        Returns:
            The list of maps, or ``(final, maps)`` where ``final`` is `forward_features`'s output.

        Raises:
            ValueError: For a bad ``indices`` or ``output_fmt``, or a bad input.
        """
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt={output_fmt!r} is not allowed; blocks' maps are channels-first: 'NCHW'")
        wanted = take_indices(len(self.feature_info), indices)
        self.check_input(x)
        producers = self._feature_stages()
        last = max(wanted) if stop_early else len(producers) - 1
        maps: dict[int, Tensor] = {}
        for name in self.chain:
            x = self.get_submodule(name)(x)
            if name == self.chain[-1] and self.norm_act is not None:
                x = self.norm_act(x)
            for index, producer in enumerate(producers):
                if producer == name and index in wanted:
                    maps[index] = x
            if name == producers[last]:
                break
        intermediates = [maps[index] for index in wanted]
        return intermediates if intermediates_only else (x, intermediates)

    def forward_features(self, x: Tensor) -> Tensor:
        """The last feature map (after the final ``norm_act`` in ``'new'`` order), one tensor as in timm.

        Args:
            x: Input of shape (B, in_planes, *spatial).

        Returns:
            (B, num_features, *spatial / reduction).
        """
        if not torch.jit.is_scripting():
            self.check_input(x)
        x = self.forward_stages(x)
        return x if self.norm_act is None else self.norm_act(x)

    def forward_stages(self, x: Tensor) -> Tensor:
        """The stages of ``chain`` in order (no input check, no final ``norm_act``).

        The network writes them out (`blocks.resnet.ResNet`, `blocks.networks.EncoderNet`), so
        TorchScript compiles them; this loop by name is the rule they follow.
        """
        for name in self.chain:
            x = self.get_submodule(name)(x)
        return x

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """The head on a last feature map: global average pooling, then ``fc`` unless ``pre_logits``.

        Args:
            x: The output of `forward_features`.
            pre_logits: Return the pooled features (B, num_features) without the classifier.

        Returns:
            Logits (B, num_classes), or the pooled features; the map itself when there is no pooling.
        """
        if self.avgpool is not None:
            x = torch.flatten(self.avgpool(x), 1)
        fc = self.fc
        if fc is None or pre_logits:  # ``fc is None`` first: TorchScript then compiles no call of None
            return x
        return fc(x)

    def forward(self, x: Tensor) -> Tensor:
        """Classify ``x``; with ``num_classes=0`` the pooled features, with None the last feature map.

        Args:
            x: Input of shape (B, in_planes, *spatial).

        Returns:
            Logits (B, num_classes), the pooled features (B, num_features), or the last map.
        """
        return self.forward_head(self.forward_features(x))

    def init_head(
        self, num_classes: int | None, global_pool: str, in_planes: int, size: Sequence[int], first_conv: str
    ) -> None:
        """Build the head (`reset_classifier`) and timm's description of the model (`timm_cfg`), in the constructor.

        Args:
            num_classes: The constructor's number of classes (see `reset_classifier`).
            global_pool: The constructor's pooling, one of `GLOBAL_POOLS`.
            in_planes: Input channels.
            size: The input's default spatial size for ``pretrained_cfg``, one per dimension.
            first_conv: The name of the first conv.

        Raises:
            ValueError: For a bad ``num_classes`` or ``global_pool``, or a classifier without pooling.
        """
        self.global_pool = check_global_pool(global_pool)
        self.reset_classifier(num_classes)
        self.head_hidden_size = self.num_features  # no pre-logits layer: the pooled features reach fc
        cfg = timm_cfg(in_planes, num_classes, size, self.feature_info[-1]["reductions"], first_conv)
        self.pretrained_cfg = self.default_cfg = cfg

    def reset_classifier(self, num_classes: int | None, global_pool: str | None = None) -> None:
        """Replace the head (timm's name): a new ``fc`` for ``num_classes``, 0 for none, None for no pooling either.

        The change is recorded in the model's arguments, so `save_pretrained` writes the new head.

        Args:
            num_classes: Classes of the new ``fc`` (newly initialised); 0 for no classifier; None
                for no head at all (``global_pool`` is then kept for a later head).
            global_pool: None to keep the model's pooling, else one of `GLOBAL_POOLS` (timm's):
                ``'avg'``, ``'max'``, ``'avgmax'`` (half the sum of both) or ``''`` (none: with
                ``num_classes=0`` the output is the last map).

        Raises:
            ValueError: For a bad ``num_classes`` or ``global_pool``, or ``num_classes > 0`` with
                ``global_pool=''`` (a classifier needs pooled features; timm refuses it too).
        """
        num_classes = check_num_classes(num_classes)
        pool = self.global_pool if global_pool is None else check_global_pool(global_pool)
        if pool == "" and num_classes:
            raise ValueError(
                f"{self.head_argument}={num_classes} with global_pool='' (no pooling): a classifier needs pooled "
                f"features; use {self.head_argument}=0 for the last map (timm's convention) or one of "
                f"{list(GLOBAL_POOLS[:-1])}"
            )
        recorded = self.__dict__.get("_config") or {}
        arguments: dict[str, Any] = {self.head_argument: num_classes}
        if pool != "avg" or "global_pool" in recorded:
            arguments["global_pool"] = pool
        update_config(self, **arguments)
        self.num_classes = num_classes
        self.global_pool = pool
        self.avgpool = None if num_classes is None else make_global_pool(pool, self.ndim)
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes else None

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Replace the stages after the deepest feature map asked for, and the head, by ``nn.Identity`` (timm's way).

        The kept stages keep their names, state_dict keys and indices (as timm's models do); the
        pruned ones hold no weights.

        Args:
            indices: The maps to keep computing, as in `forward_intermediates`.
            prune_norm: Replace the final ``norm_act`` too (it is replaced anyway with the last stage).
            prune_head: Drop ``avgpool`` and ``fc``: `forward` then returns the last kept map.

        Returns:
            The kept indices.
        """
        wanted = take_indices(len(self.feature_info), indices)
        producers = self._feature_stages()
        keep = self.chain.index(producers[max(wanted)]) + 1
        for name in self.chain[keep:]:
            parent, _, child = name.rpartition(".")
            owner = self.get_submodule(parent) if parent else self
            if isinstance(owner, nn.ModuleList):
                owner[int(child)] = nn.Identity()
            else:
                setattr(owner, child, nn.Identity())
        if keep < len(self.chain) or (prune_norm and self.norm_act is not None):
            forget_config(self, f"prune_intermediate_layers({indices!r}, prune_norm={prune_norm})")
            self.norm_act = None
        self.feature_info = [
            {**f, "module": producers[i]} if f["module"] == "norm_act" and self.norm_act is None else f
            for i, f in enumerate(self.feature_info[: max(wanted) + 1])
        ]
        if prune_head:
            self.reset_classifier(None)
        return wanted
