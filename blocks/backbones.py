"""The adapter for outside backbones: how the U-Net family reads any hierarchical encoder.

`read_backbone` looks at a backbone once, at construction, and returns a `BackboneReader`: the
channels and reductions of its maps, its input channels, how to call it and which maps are
channels-last. The backbone itself stays the network's ``encoder`` module, so its state_dict keys
are its own (``encoder.*``). Accepted, in this order:

* a model with timm's ``forward_intermediates`` and a ``feature_info`` list of dicts (timm >= 1.0
  models; blocks' `ResNet` and `EncoderNet`); its classifier and pooling are pruned
  (``prune_intermediate_layers(prune_head=True)``), so every parameter left gets a gradient;
* a timm feature extractor (``features_only=True``): ``feature_info.channels()`` /
  ``.reduction()``, NHWC known from its ``output_fmt``;
* any module whose ``forward`` returns a list, tuple or dict of maps (torchvision's
  ``create_feature_extractor`` and ``IntermediateLayerGetter``): channels and reductions from one
  dry run on the ``meta`` device (no arithmetic, no copy of the weights), NHWC from the shapes.

Reductions are read per dimension where the backbone describes them (blocks' own ``feature_info``
entries carry ``reductions``, e.g. ``(1, 2, 2)`` for a video ResNet's stem), else as timm's int
``reduction``. Each map must be at the reduction of the one before or a whole multiple of it, in
every dimension (a video ResNet's stem and first stage share (1, 2, 2); a dilated backbone's last
two maps share 1/16), and not all maps at one reduction (a plain ViT's are all at 1/16: refused).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .checks import compact, is_int
from .features import FeatureAPI
from .levels import steps_between
from .summary import shadow_copy

__all__ = [
    "LEVELS_RULE", "BackboneReader", "check_backbone_size", "check_deepest_map", "check_levels", "prune_head",
    "qualified_name", "read_backbone", "smallest_input", "smallest_sides",
]

SEARCH_SIDE = 512
"""The largest side `smallest_sides` tries: the other sides are held at least this large while one side is searched."""

DRY_RUN_SIZE = {1: (1024,), 2: (224, 160), 3: (96, 64, 32)}
"""Input sides of the meta dry run that measures a backbone without a description: different sides,
each divisible by 32, so that a map's layout shows in its shape (its sides keep the input's aspect)."""


@dataclass(frozen=True)
class BackboneReader:
    """How to get the maps of one backbone, channels-first, shallowest first.

    Attributes:
        channels: Channels of each map.
        reductions: Input size / map size of each map: an int (the same on every side; timm's
            backbones), or one per dimension where they differ (blocks' anisotropic backbones).
        in_planes: Input channels of the backbone.
        call: ``'intermediates'`` (``forward_intermediates(x, intermediates_only=True)``) or
            ``'forward'`` (``forward(x)``, a list, tuple or dict of maps).
        channels_last: For each map, whether it comes as (B, *spatial, C) and is permuted.
    """

    channels: tuple[int, ...]
    reductions: tuple[int | tuple[int, ...], ...]
    in_planes: int
    call: str
    channels_last: tuple[bool, ...]

    def __call__(self, backbone: nn.Module, x: Tensor) -> list[Tensor]:
        """The backbone's maps for ``x``, each (B, C, *spatial)."""
        if self.call == "intermediates":
            maps = backbone.forward_intermediates(x, intermediates_only=True)
        else:
            maps = backbone(x)
        maps = list(maps.values()) if isinstance(maps, Mapping) else list(maps)
        return [m.movedim(-1, 1) if last else m for m, last in zip(maps, self.channels_last)]


def _format(backbone: nn.Module) -> str | None:
    """The backbone's declared layout (timm's ``output_fmt``: ``'NCHW'`` or ``'NHWC'``), or None."""
    fmt = getattr(backbone, "output_fmt", None)
    return None if fmt is None else str(getattr(fmt, "value", fmt))


def _declared_in_planes(backbone: nn.Module) -> int | None:
    """Input channels the backbone declares (``in_planes``, timm's ``in_chans``), else its first conv's."""
    declared = getattr(backbone, "in_planes", getattr(backbone, "in_chans", None))
    if declared is None:
        conv = next((m for m in backbone.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)
        declared = None if conv is None else conv.in_channels
    return None if declared is None else int(declared)


def _in_planes(backbone: nn.Module, in_planes: int | None) -> int:
    """The backbone's input channels: declared, else its first conv's, else the given ``in_planes``.

    Raises:
        ValueError: If a given ``in_planes`` disagrees with the backbone's, or neither is known.
    """
    declared = _declared_in_planes(backbone)
    if declared is not None and in_planes is not None and in_planes != declared:
        raise ValueError(
            f"in_planes={in_planes} does not match the encoder's {declared} input channels; build the encoder for "
            f"{in_planes} channels (blocks.from_torchvision(model, in_planes={in_planes}) or "
            f"blocks.resnet50(in_planes={in_planes}) for a ResNet, timm.create_model(name, in_chans={in_planes}) for "
            "timm), or leave in_planes=None to take the encoder's"
        )
    if declared is None and in_planes is None:
        raise ValueError(f"encoder={type(backbone).__name__} does not tell its input channels; give in_planes=")
    return declared if declared is not None else in_planes


def _reduction(entry: Any) -> int | tuple[int, ...]:
    """The reduction of one ``feature_info`` entry: its ``reductions`` per dimension if it has them
    (blocks' own; one int when they are all equal), else timm's int ``reduction``."""
    if "reductions" in entry:
        return compact(tuple(int(r) for r in entry["reductions"]))
    return int(entry["reduction"])


def _described(backbone: nn.Module) -> tuple[list[int], list[int | tuple[int, ...]]] | None:
    """(channels, reductions) from the backbone's own ``feature_info``, or None when it has none."""
    info = getattr(backbone, "feature_info", None)
    if info is None:
        return None
    if callable(getattr(info, "channels", None)) and callable(getattr(info, "reduction", None)):
        return list(info.channels()), list(info.reduction())  # timm's FeatureInfo
    try:
        return [int(f["num_chs"]) for f in info], [_reduction(f) for f in info]
    except (TypeError, KeyError, ValueError) as error:
        raise ValueError(
            f"encoder={type(backbone).__name__} has a feature_info that is neither timm's FeatureInfo nor a "
            f"list of dicts with 'num_chs' and 'reduction' ({error!r})"
        ) from None


def _dry_run(backbone: nn.Module, call: str, in_planes: int, ndim: int) -> list[Tensor]:
    """The backbone's outputs for one input on the ``meta`` device (shapes only; the backbone is untouched)."""
    shadow = shadow_copy(backbone, torch.device("meta")).eval()
    x = torch.empty(1, in_planes, *DRY_RUN_SIZE[ndim], device="meta")
    with torch.no_grad():
        maps = shadow.forward_intermediates(x, intermediates_only=True) if call == "intermediates" else shadow(x)
    if isinstance(maps, Mapping):
        maps = list(maps.values())
    if not isinstance(maps, (list, tuple)) or not all(isinstance(m, Tensor) for m in maps):
        raise ValueError(
            f"encoder={qualified_name(backbone)} returned {type(maps).__name__}; a U-Net encoder must return a "
            f"list, tuple or dict of feature maps: {_way_out(backbone)}"
        )
    return list(maps)


def qualified_name(backbone: Any) -> str:
    """The backbone's class with its module (``torchvision.models.resnet.ResNet``), so that no two read alike."""
    cls = type(backbone)
    return f"{cls.__module__}.{cls.__qualname__}"


def _way_out(backbone: nn.Module) -> str:
    """How to turn ``backbone``, a module returning one map, into an encoder: the calls to use, the fitting one first."""
    ways = [
        "timm.create_model(name, features_only=True) for a timm model",
        "torchvision.models.feature_extraction.create_feature_extractor(model, return_nodes=[...]) for any "
        "torchvision model",
    ]
    torchvision_resnet = "blocks.from_torchvision(model) for a torchvision ResNet (blocks' ResNet, weights kept)"
    if type(backbone).__module__.startswith("torchvision.models") and "resnet" in type(backbone).__module__:
        return f"use {torchvision_resnet}, or " + ", or ".join(ways)
    return f"use {', or '.join(ways)}, or {torchvision_resnet}"


def read_backbone(backbone: Any, in_planes: int | None, ndim: int) -> BackboneReader:
    """Read a backbone's maps, input channels and call once; see the module docstring for what is accepted.

    Args:
        backbone: The encoder given to a network.
        in_planes: The network's given ``in_planes``, or None.
        ndim: The network's spatial dimensions.

    Returns:
        The reader.

    Raises:
        ValueError: If ``backbone`` is not a module whose maps `check_levels` accepts, or its input
            channels are unknown or disagree with ``in_planes``.
    """
    if not isinstance(backbone, nn.Module):
        raise ValueError(f"encoder={type(backbone).__name__} must be an nn.Module returning feature maps")
    call = "intermediates" if callable(getattr(backbone, "forward_intermediates", None)) else "forward"
    planes = _in_planes(backbone, in_planes)
    described = _described(backbone)
    fmt = _format(backbone)
    if described is not None and (call == "intermediates" or fmt is not None):
        channels, reductions = described  # forward_intermediates gives channels-first maps by default
        channels_last = (call == "forward" and fmt == "NHWC",) * len(channels)
    else:
        maps = _dry_run(backbone, call, planes, ndim)
        if any(m.dim() != ndim + 2 for m in maps):
            raise ValueError(
                f"encoder={type(backbone).__name__} returned maps of shapes {[tuple(m.shape) for m in maps]}; "
                f"a {ndim}-D U-Net needs (B, C, *{ndim} sizes) or channels-last maps"
            )
        if described is not None:
            channels, reductions = described
            channels_last = tuple(m.shape[1] != c and m.shape[-1] == c for m, c in zip(maps, channels))
        else:  # channels-last only if the sides of the map are on axes 1.. and not on the last ones
            sides = DRY_RUN_SIZE[ndim]
            channels_last = tuple(not _are_sides(m.shape[2:], sides) and _are_sides(m.shape[1:-1], sides) for m in maps)
            channels = [int(m.shape[-1] if last else m.shape[1]) for m, last in zip(maps, channels_last)]
            reductions = [round(sides[0] / int(m.shape[1] if last else m.shape[2]))  # the longest side: least rounding
                          for m, last in zip(maps, channels_last)]
    check_levels(backbone, channels, reductions, ndim)
    return BackboneReader(tuple(channels), tuple(reductions), planes, call, tuple(channels_last))


def check_levels(backbone: nn.Module, channels: Sequence[int], reductions: Sequence[Any], ndim: int) -> None:
    """Raise a ValueError unless the maps can be decoded: at least 2, each at the reduction of the one before or
    a whole multiple of it in every dimension (`blocks.levels.steps_between`), and not all at one reduction.

    Raises:
        ValueError: Naming the backbone, its channels and reductions, and the rule.

    Examples:
        >>> check_levels(nn.Identity(), (64, 64, 128), ((1, 2, 2), (1, 2, 2), (2, 4, 4)), 3)  # a video ResNet's
        >>> check_levels(nn.Identity(), (64, 64, 128), (2, (1, 2, 2), (2, 4, 4)), 3)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: encoder=Identity has feature channels (64, 64, 128) at reductions (2, (1, 2, 2), (2, 4, 4)); ...
    """
    per_dim = [(r,) * ndim if is_int(r) else tuple(r) for r in reductions]
    fits = (
        len(channels) >= 2 and min(channels) >= 1 and len(set(per_dim)) > 1
        and all(len(r) == ndim and all(is_int(n) and n >= 1 for n in r) for r in per_dim)
    )
    if fits:
        try:
            steps_between(per_dim)
        except ValueError:
            fits = False
    if not fits:
        raise ValueError(
            f"encoder={type(backbone).__name__} has feature channels {tuple(channels)} at reductions "
            f"{tuple(reductions)}; {LEVELS_RULE} (a plain ViT's maps are all at one reduction: use a hierarchical "
            "backbone such as a ResNet, ConvNeXt or Swin)"
        )


LEVELS_RULE = (
    "a U-Net needs at least 2 maps, each at the reduction of the one before or a whole multiple of it in every "
    "dimension, and not all at one reduction"
)
"""What `check_levels` asks of a backbone's maps, as its message says it."""


def _are_sides(shape: Sequence[int], sides: Sequence[int]) -> bool:
    """True if ``shape`` can be the sides of a map of an input of ``sides``: one reduction for all of them.

    In 1-D a single length always "keeps the aspect", so there it must divide the input's length by
    a power of two.
    """
    ratios = [side / n for side, n in zip(sides, shape)]
    if len(ratios) == 1:
        ratio = ratios[0]
        return ratio >= 1 and float(ratio).is_integer() and (int(ratio) & (int(ratio) - 1)) == 0
    return min(ratios) >= 1 and max(ratios) - min(ratios) < 0.01 * min(ratios)


def prune_head(backbone: nn.Module, reader: BackboneReader) -> None:
    """Drop a whole model's classifier, pooling and unused final norm, keeping every map (timm's ``prune_intermediate_layers``).

    blocks' own backbones keep their final ``norm_act``: their last map is taken after it.
    """
    if reader.call == "intermediates" and callable(getattr(backbone, "prune_intermediate_layers", None)):
        own = isinstance(backbone, FeatureAPI)
        backbone.prune_intermediate_layers(len(reader.channels), prune_norm=not own, prune_head=True)


def smallest_sides(
    backbone: nn.Module,
    reader: BackboneReader,
    x: Tensor,
    others: Sequence[int] | None = None,
    accepts: Callable[[list[Tensor]], bool] | None = None,
) -> tuple[int, ...] | None:
    """Each side's smallest size for which ``backbone`` runs (and ``accepts`` its maps), measured on ``meta``.

    One side at a time is searched (bisection, about ten meta runs per side; the backbone is
    untouched), the others held at ``others`` (default ``max(side of x, SEARCH_SIDE)``), with
    ``x``'s batch, channels, dtype and the backbone's train/eval mode. None when the largest input
    fails too: the failure is not about size.
    """
    shadow = shadow_copy(backbone, torch.device("meta")).train(backbone.training)
    large = [max(int(n), SEARCH_SIDE) for n in x.shape[2:]]
    held = large if others is None else list(others)

    def runs(side: int, dim: int) -> bool:
        sides = list(held)
        sides[dim] = side
        probe = torch.empty(x.shape[0], x.shape[1], *sides, dtype=x.dtype, device="meta")
        try:
            with torch.no_grad():
                maps = reader(shadow, probe)
        except (RuntimeError, ValueError, IndexError):
            return False
        return accepts is None or accepts(maps)

    mins = []
    for dim, top in enumerate(large):
        if not runs(top, dim):
            return None
        low, high = 0, top  # runs(high) holds; runs(low) is taken to fail
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if runs(middle, dim) else (middle, high)
        mins.append(high)
    return tuple(mins)


SIDE_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
"""How messages name the sides of each dimension."""


def smallest_input(
    backbone: nn.Module, reader: BackboneReader, x: Tensor, why: str | None, runs: Sequence[int] | None = None
) -> str | None:
    """The smallest input of a U-Net on ``backbone``, in words, from `smallest_sides`: each side's minimum for the
    backbone to run and, when ``why`` says that a one-pixel deepest map cannot be normalized, the side one of them
    needs for two pixels there; None when the backbone fails at every size. ``runs``: the first, if known."""
    runs = smallest_sides(backbone, reader, x) if runs is None else runs
    if runs is None:
        return None
    names = SIDE_NAMES[len(runs)]
    need = " and ".join(f"{name} >= {m}" for name, m in zip(names, runs)) if max(runs) > 1 else ""
    if why is not None:
        grows = smallest_sides(backbone, reader, x, others=runs,
                               accepts=lambda maps: math.prod(maps[-1].shape[2:]) > 1)
        if grows is not None:
            either = " or ".join(f"{name} >= {m}" for name, m in zip(names, grows))
            need = f"{need}, and {either}" if need else either
    return need or None


def check_backbone_size(owner: nn.Module, backbone: nn.Module, reader: BackboneReader, x: Tensor,
                        error: Exception, problem: Callable[[int], str | None]) -> None:
    """After ``backbone`` failed on ``x`` with ``error``: raise a ValueError naming the smallest input
    (`smallest_input`) if ``x`` is below it; return (so that ``error`` is raised as it is) when size is not the
    cause. ``problem`` is the network's `blocks.levels.one_pixel_problem`."""
    runs = smallest_sides(backbone, reader, x)
    if runs is None or all(n >= m for n, m in zip(x.shape[2:], runs)):
        return
    why = problem(x.shape[0])
    raise ValueError(
        f"{type(owner).__name__} needs an input of {smallest_input(backbone, reader, x, why, runs)}: its "
        f"encoder={qualified_name(backbone)} fails on smaller sides{'' if why is None else ', and ' + _one_pixel(why)}"
        f" (measured on the meta device), got input of shape {tuple(x.shape)} ({type(error).__name__} inside the "
        f"encoder: {str(error).splitlines()[0] if str(error) else ''})"
    ) from error


def check_deepest_map(owner: nn.Module, backbone: nn.Module, reader: BackboneReader, x: Tensor, deepest: Tensor,
                      problem: Callable[[int], str | None]) -> None:
    """Raise a ValueError when the backbone's deepest map of ``x`` is one pixel and ``problem(batch)`` says why
    that cannot be normalized, naming the smallest input (measured on the meta device: a backbone may round
    its sizes down, so its reductions alone do not tell)."""
    if math.prod(deepest.shape[2:]) > 1:
        return
    why = problem(x.shape[0])
    if why is None:
        return
    raise ValueError(
        f"{type(owner).__name__} needs an input of {smallest_input(backbone, reader, x, why) or 'a larger size'}: "
        f"{_one_pixel(why)} (its encoder={qualified_name(backbone)}, measured on the meta device), got input of "
        f"shape {tuple(x.shape)}"
    )


def _one_pixel(why: str) -> str:
    """The clause that says a one-pixel deepest map cannot be normalized, and ``why``."""
    return f"its deepest map would be one pixel, and {why}"
