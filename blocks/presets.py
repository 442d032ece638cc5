"""MDNC's depth presets under MDNC's names: ``unet16`` ... ``decnet63``.

Each fixes MDNC's stage counts and block type; the widths are ``64 * 2**i`` per level by default
and every other argument of the network (``channels`` included, so tests can run a preset narrow)
is a keyword, with ``ndim=2`` by default. The number in the name is MDNC's count of convolutional
layers along the depth.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

from torch import nn

from .checks import named_class, resolve_ndim
from .networks import DecoderNet, EncoderNet
from .unet import AE, UNet

__all__ = ["PRESETS", "Preset", "preset"]


class Preset(NamedTuple):
    """One of MDNC's presets.

    Attributes:
        network: The generic class it builds (`UNet`, `AE`, `EncoderNet`, `DecoderNet`).
        layers: Blocks per level, fixed.
        block: Block type, fixed.
    """

    network: type[nn.Module]
    layers: tuple[int, ...]
    block: str


PRESETS: dict[str, Preset] = {
    "unet16": Preset(UNet, (2, 1, 1), "plain"),
    "unet32": Preset(UNet, (2, 2, 2), "bottleneck"),
    "unet44": Preset(UNet, (2, 2, 2, 2), "bottleneck"),
    "unet65": Preset(UNet, (3, 3, 3, 3), "bottleneck"),
    "unet83": Preset(UNet, (3, 3, 3, 3, 3), "bottleneck"),
    "ae16": Preset(AE, (2, 1, 1), "plain"),
    "ae32": Preset(AE, (2, 2, 2), "bottleneck"),
    "ae44": Preset(AE, (2, 2, 2, 2), "bottleneck"),
    "ae65": Preset(AE, (3, 3, 3, 3), "bottleneck"),
    "ae83": Preset(AE, (3, 3, 3, 3, 3), "bottleneck"),
    "encnet12": Preset(EncoderNet, (1, 1, 1, 1, 1), "plain"),
    "encnet32": Preset(EncoderNet, (2, 2, 2, 2, 2), "bottleneck"),
    "encnet47": Preset(EncoderNet, (3, 3, 3, 3, 3), "bottleneck"),
    "encnet62": Preset(EncoderNet, (4, 4, 4, 4, 4), "bottleneck"),
    "decnet13": Preset(DecoderNet, (1, 1, 1, 1, 1), "plain"),
    "decnet33": Preset(DecoderNet, (2, 2, 2, 2, 2), "bottleneck"),
    "decnet48": Preset(DecoderNet, (3, 3, 3, 3, 3), "bottleneck"),
    "decnet63": Preset(DecoderNet, (4, 4, 4, 4, 4), "bottleneck"),
}
"""MDNC's presets: name -> (network, blocks per level, block type)."""


def preset(name: str) -> Callable[..., nn.Module]:
    """The builder function of the preset ``name``, e.g. ``preset('unet16')(ndim=3, out_planes=2)``.

    The builder takes the network's arguments as keywords (a DecoderNet's ``out_size`` also
    positionally) and ``ndim=2``; ``layers`` and ``block`` are fixed and refused.

    Raises:
        ValueError: If ``name`` is not a preset.
    """
    if name not in PRESETS:
        raise ValueError(f"{name!r} is not one of MDNC's presets: {list(PRESETS)}")
    network, layers, block = PRESETS[name]
    widths = tuple(64 * 2**i for i in range(len(layers)))

    def build(*args: Any, ndim: int = 2, **kwargs: Any) -> nn.Module:
        for fixed, value in (("layers", layers), ("block", block)):
            if fixed in kwargs:
                raise ValueError(
                    f"{name} fixes {fixed}={value!r}; got {fixed}={kwargs[fixed]!r} (build "
                    f"{network.__name__} for other values)"
                )
        cls = named_class(network, resolve_ndim(network, ndim))
        own = {} if kwargs.get("encoder") is not None else {"channels": widths}  # a backbone brings its own
        return cls(*args, **{**own, **kwargs}, layers=layers, block=block)

    what = {UNet: "U-Net", AE: "auto-encoder", EncoderNet: "encoder network", DecoderNet: "decoder network"}[network]
    build.__name__ = build.__qualname__ = name
    build.__module__ = "blocks.presets"
    build.__doc__ = (
        f"MDNC's {name}: a {len(layers)}-level {what} of {block} blocks, {list(layers)} per level, "
        f"{widths[0]}..{widths[-1]} channels by default.\n\nIt builds `{network.__name__}` in ``ndim`` dimensions.\n\n"
        f"Args:\n    *args: ``out_size`` for a decoder network.\n    ndim: Spatial dimensions (2 by default).\n"
        f"    **kwargs: Any other keyword argument of `{network.__name__}`.\n\n"
        f"Returns:\n    The `{network.__name__}{{ndim}}d`."
    )
    parameters = [inspect.Parameter("out_size", inspect.Parameter.POSITIONAL_OR_KEYWORD)] if network is DecoderNet else []
    parameters += [inspect.Parameter("ndim", inspect.Parameter.KEYWORD_ONLY, default=2),
                   inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)]
    build.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return build


unet16, unet32, unet44, unet65, unet83 = (preset(f"unet{n}") for n in (16, 32, 44, 65, 83))
ae16, ae32, ae44, ae65, ae83 = (preset(f"ae{n}") for n in (16, 32, 44, 65, 83))
encnet12, encnet32, encnet47, encnet62 = (preset(f"encnet{n}") for n in (12, 32, 47, 62))
decnet13, decnet33, decnet48, decnet63 = (preset(f"decnet{n}") for n in (13, 33, 48, 63))
