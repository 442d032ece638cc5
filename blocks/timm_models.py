"""blocks' classifiers and encoders in timm's registry: `register`, then ``timm.create_model('blocks_resnet50')``.

Every registered model of blocks with timm's feature API in 2-D (the ResNets, ``encodernet2d`` and
MDNC's ``encnet`` presets) becomes a timm entrypoint named ``blocks_<name>``, built through
``timm.models.build_model_with_cfg``: timm's ``features_only=True`` (with its ``out_indices`` and
``feature_cls``), ``pretrained_cfg`` / ``pretrained_cfg_overlay``, ``in_chans`` and ``num_classes``
then work as for timm's own models. Features come from ``forward_intermediates`` (timm's
``'getter'`` wrapper, since an `EncoderNet`'s stages sit in a list the default wrapper cannot walk).
blocks has no pretrained weights: ``pretrained=True`` raises. timm is 2-D, so these entrypoints
are 2-D; blocks' own ``create_model`` builds every dimension.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .features import FeatureAPI
from .registry import create_model, list_models, model_entry

__all__ = ["PREFIX", "register", "timm_backbones"]

PREFIX = "blocks_"
"""The prefix of blocks' names in timm's registry (``blocks_resnet50``: timm has its own ``resnet50``)."""

default_cfgs: dict[str, dict[str, Any]] = {}
"""timm's ``register_model`` reads the ``pretrained_cfg`` of each entrypoint here (by its ``__module__``)."""


def timm_backbones() -> list[str]:
    """blocks' registered names whose 2-D model has timm's feature API (ResNets, EncoderNets), built on ``meta``.

    Examples:
        >>> timm_backbones()[:2], timm_backbones()[-1]
        (['resnet18', 'resnet34'], 'encnet62')
    """
    return list(_backbones())


def _backbones(names: Sequence[str] | None = None) -> dict[str, FeatureAPI]:
    """``names`` (None: every 2-D registered model) with their 2-D models on ``meta``, keeping timm-like backbones.

    Raises:
        ValueError: If one of the given ``names`` is not such a backbone.
    """
    chosen = [name for name in list_models() if 2 in model_entry(name).ndims] if names is None else list(names)
    found = {}
    for name in chosen:
        model = _meta(name) if isinstance(name, str) and name in list_models() else None
        if isinstance(model, FeatureAPI) and model.ndim == 2:
            found[name] = model
        elif names is not None:
            raise ValueError(
                f"register got {name!r}, which is not a blocks backbone with timm's feature API in 2-D; use one of "
                f"{timm_backbones()}"
            )
    return found


def _meta(name: str) -> nn.Module:
    """The 2-D model of ``name`` with its defaults, on the ``meta`` device (no memory, no arithmetic)."""
    with torch.device("meta"):
        return create_model(name, **({"ndim": 2} if len(model_entry(name).ndims) > 1 else {}))


def _builder(name: str, head_argument: str) -> Callable[..., nn.Module]:
    """The model class timm's ``build_model_with_cfg`` calls: timm's keywords mapped to blocks' arguments."""
    theirs = {"in_chans": "in_planes", "num_classes": head_argument}

    def build(**kwargs: Any) -> nn.Module:
        for timm_name, ours in theirs.items():
            if ours in kwargs and ours != timm_name:
                raise ValueError(f"{PREFIX}{name} through timm takes {timm_name}= (timm's name), not {ours}=")
        if kwargs.get("ndim", 2) != 2:
            raise ValueError(
                f"{PREFIX}{name} through timm is 2-D (timm's models are); got ndim={kwargs['ndim']!r}: build other "
                f"dimensions with blocks.create_model({name!r}, ndim=...)"
            )
        kwargs.pop("ndim", None)
        device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        arguments = {theirs.get(key, key): value for key, value in kwargs.items()}
        with torch.device(device) if device is not None else contextlib.nullcontext():
            model = create_model(name, **arguments)
        return model if dtype is None else model.to(dtype)

    return build


def _entrypoint(name: str, head_argument: str) -> Callable[..., nn.Module]:
    """timm's entrypoint ``blocks_<name>(pretrained=False, pretrained_cfg=None, pretrained_cfg_overlay=None, **kwargs)``."""
    from timm.models import build_model_with_cfg

    build = _builder(name, head_argument)

    def entrypoint(
        pretrained: bool = False,
        pretrained_cfg: Any = None,
        pretrained_cfg_overlay: dict[str, Any] | None = None,
        cache_dir: Any = None,
        **kwargs: Any,
    ) -> nn.Module:
        if pretrained:
            raise ValueError(
                f"{PREFIX}{name}: blocks has no pretrained weights (pretrained=True); build it with pretrained=False "
                "and load weights yourself (blocks.from_torchvision reads torchvision's ResNets)"
            )
        return build_model_with_cfg(
            build, PREFIX + name, pretrained=False, pretrained_cfg=pretrained_cfg,
            pretrained_cfg_overlay=pretrained_cfg_overlay, feature_cfg={"feature_cls": "getter"}, cache_dir=cache_dir,
            **kwargs,
        )

    entrypoint.__name__ = entrypoint.__qualname__ = PREFIX + name
    entrypoint.__module__ = __name__
    entrypoint.__doc__ = f"blocks' {name} in 2-D, built by timm's build_model_with_cfg (see blocks.timm_models)."
    return entrypoint


def register(names: Sequence[str] | None = None) -> list[str]:
    """Register blocks' backbones in timm's registry as ``blocks_<name>``; return timm's names.

    Calling it again re-registers blocks' own entries (after a `blocks.register_model` with
    ``replace=True``, say) and never touches timm's.

    Args:
        names: blocks' registered names to register (each with timm's feature API in 2-D); None
            for all of `timm_backbones`.

    Returns:
        The names in timm's registry, in the order of ``names``.

    Raises:
        ImportError: If timm is not installed.
        ValueError: If a name is not a blocks backbone with timm's feature API, or its timm name is
            taken by a model that is not blocks'.

    Examples:
        >>> import timm, torch
        >>> register(["resnet18"])
        ['blocks_resnet18']
        >>> net = timm.create_model("blocks_resnet18", in_chans=1, num_classes=0, global_pool="")
        >>> net(torch.zeros(1, 1, 64, 64)).shape, net.pretrained_cfg["pool_size"]
        (torch.Size([1, 512, 2, 2]), (7, 7))
        >>> [tuple(f.shape) for f in timm.create_model("blocks_resnet18", features_only=True, out_indices=(1, 4))(
        ...     torch.zeros(1, 3, 64, 64))]
        [(1, 64, 16, 16), (1, 512, 2, 2)]
    """
    try:
        import timm.models
    except ImportError as error:  # pragma: no cover - timm is a test dependency
        raise ImportError("blocks.timm_models.register needs timm: pip install timm") from error
    models = _backbones(names)
    for name in models:
        taken = timm.models.is_model(PREFIX + name)
        if taken and timm.models.model_entrypoint(PREFIX + name).__module__ != __name__:
            raise ValueError(f"register: {PREFIX + name!r} is already in timm's registry and is not blocks'")
    for name, model in models.items():
        default_cfgs[PREFIX + name] = dict(model.pretrained_cfg)
        with warnings.catch_warnings():  # timm warns when a name is registered again; here it is ours
            warnings.filterwarnings("ignore", message=f"Overwriting {PREFIX + name} in registry")
            timm.models.register_model(_entrypoint(name, model.head_argument))
    return [PREFIX + name for name in models]
