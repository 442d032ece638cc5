"""2-D weights for 3-D networks: `inflate` (I3D, Carreira and Zisserman 2017; or the center rule).

A blocks network is rebuilt from its arguments (`blocks.configurable.Configurable.config`) one dimension
up, so the result is exactly what the 3-D class builds and saves, and every weight is carried
over: norm, PReLU and linear parameters (and norm statistics) are copied, and each k x k kernel
becomes k x k x k, keeping its width in depth (the stem's 7 included):

* ``rule='i3d'``: the 2-D kernel repeated along depth and divided by k. A volume made of one image
  repeated along depth gives each layer's 2-D output on the slices away from the depth borders.
* ``rule='center'``: the 2-D kernel in the middle slice, zeros elsewhere. Such a volume gives the
  2-D network's output exactly, every slice (odd kernels with ``(k - 1) / 2`` padding read only
  real slices), in eval and training mode.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .checks import check_choice, named_class
from .configurable import CLASS_KEY, SAVABLE, Configurable, recorded_config
from .hub import build_from_config

__all__ = ["RULES", "inflate", "inflate_kernel"]

RULES = ("i3d", "center")
"""``rule`` values of `inflate`."""

PER_DIMENSION_ARGUMENTS = ("kernel_size", "stride", "padding", "output_size", "out_size", "stem_kernel_size",
                           "stem_stride")
"""Arguments that may hold one value per dimension: inflate needs them as ints."""

PER_LEVEL_ARGUMENTS = ("strides", "kernel_sizes")
"""Arguments of one entry per level, each an int or one per dimension: inflate needs every entry an int."""


def inflate_kernel(weight: Tensor, depth: int, rule: str = "i3d") -> Tensor:
    """A conv kernel (out, in, *k) with one more leading spatial axis of size ``depth``, by ``rule``.

    Examples:
        >>> w = torch.ones(2, 3, 3, 3)
        >>> inflate_kernel(w, 3).shape, round(inflate_kernel(w, 3).sum().item(), 3)  # the sum of the 2-D kernel
        (torch.Size([2, 3, 3, 3, 3]), 54.0)
        >>> inflate_kernel(w, 3, "center")[:, :, 0].abs().sum().item()  # only the middle slice is not zero
        0.0
    """
    check_choice("rule", rule, RULES)
    if rule == "i3d":
        return weight.unsqueeze(2).expand(-1, -1, depth, *weight.shape[2:]).div(depth).contiguous()
    inflated = weight.new_zeros(weight.shape[0], weight.shape[1], depth, *weight.shape[2:])
    inflated[:, :, depth // 2] = weight
    return inflated


def _twin_config(config: dict[str, Any], ndim: int, cls: type | None = None) -> dict[str, Any]:
    """The arguments of the ``ndim``-D twin: the named class of the next dimension, nested configs too.

    ``cls`` is the class ``config`` was recorded on (by default the savable class it names).

    Raises:
        ValueError: If an argument holds one value per dimension (it has no meaning one dimension up).
    """
    cls = SAVABLE[config[CLASS_KEY]] if cls is None else cls
    twin: dict[str, Any] = {}
    for key, value in config.items():
        if key in PER_DIMENSION_ARGUMENTS and isinstance(value, list):
            raise ValueError(
                f"inflate: {config[CLASS_KEY]} has {key}={tuple(value)!r}, one value per dimension; inflate needs "
                f"ints (the same in every dimension), or build the {ndim}-D model yourself"
            )
        if key in PER_LEVEL_ARGUMENTS and isinstance(value, list):
            for level, entry in enumerate(value):
                if isinstance(entry, list):
                    raise ValueError(
                        f"inflate: {config[CLASS_KEY]} has {key}[{level}]={tuple(entry)!r}, one value per dimension; "
                        f"inflate needs every level's entry as an int (the same in every dimension), or build the "
                        f"{ndim}-D model yourself"
                    )
        twin[key] = _twin_config(value, ndim) if isinstance(value, dict) and CLASS_KEY in value else value
    if getattr(cls, "fixed_ndim", None) is not None:
        generic = next(c for c in cls.__mro__ if getattr(c, "fixed_ndim", None) is None)  # AE2d -> AE, MyAE2d -> AE
        twin[CLASS_KEY] = named_class(generic, ndim).__name__
    else:  # the generic class, or a user's subclass of it: its blocks class takes ndim
        twin[CLASS_KEY] = next(c for c in cls.__mro__ if SAVABLE.get(c.__name__) is c).__name__
        twin["ndim"] = ndim
    return twin


def _check_twin_ndim(model: nn.Module, ndim: int | None) -> int:
    """The twin's dimensions: ``ndim`` (None: 3) if it is one more than the model's, else a ValueError that says
    which ``ndim`` to pass, without quoting a value the caller did not give."""
    own = getattr(model, "ndim", None)
    name = type(model).__name__
    if ndim is not None:
        if own is None or ndim != own + 1:
            raise ValueError(f"inflate: {name} is {own}-D, so it inflates to ndim={own + 1}; got ndim={ndim}")
        return ndim
    if own == 2:
        return 3
    if own == 1:
        raise ValueError(f"inflate: {name} is 1-D; pass ndim=2 for its 2-D twin (without ndim, inflate makes the "
                         "3-D twin of a 2-D model)")
    raise ValueError(f"inflate: {name} is {own}-D already; inflate makes the next dimension's twin of a 1-D or "
                     "2-D model (3-D is the highest)")


def inflate(model: nn.Module, ndim: int | None = None, rule: str = "i3d") -> nn.Module:
    """The ``ndim``-D twin of a blocks model, holding its weights inflated by ``rule``.

    Works on every blocks network and block (a 2-D `ResNet`, `EncoderNet`, `UNet`, `AE`, ...,
    including a U-Net's blocks encoder). The twin is in the same train/eval mode; weights keep their
    device and dtype.

    Args:
        model: A blocks model of ``ndim - 1`` dimensions, built by its constructor.
        ndim: The twin's dimensions (one more than the model's); None means 3 (a 2-D model's twin).
        rule: ``'i3d'`` or ``'center'`` (see the module docstring).

    Returns:
        The twin, e.g. a `ResNet` with ``ndim=3`` for a 2-D one.

    Raises:
        ValueError: If the model is not a blocks model with its arguments, ``ndim`` is not one more
            than its own, an argument holds one value per dimension, or ``rule`` is unknown.

    Examples:
        >>> import torch
        >>> import blocks
        >>> flat = blocks.resnet18(num_classes=3).eval()
        >>> deep = inflate(flat, rule="center")
        >>> type(deep).__name__, deep.ndim, deep.stem.conv.kernel_size
        ('ResNet', 3, (7, 7, 7))
        >>> image = torch.randn(1, 3, 64, 64)
        >>> volume = image.unsqueeze(2).expand(-1, -1, 8, -1, -1)  # one image repeated along depth
        >>> torch.allclose(deep(volume), flat(image), atol=1e-5)
        True
    """
    check_choice("rule", rule, RULES)
    if not isinstance(model, Configurable):
        raise ValueError(f"inflate takes a blocks model (built by its constructor), got {type(model).__name__}")
    ndim = _check_twin_ndim(model, ndim)
    first = next(iter(model.parameters()), None)
    with torch.device(first.device if first is not None else "cpu"):
        twin = build_from_config(_twin_config(recorded_config(model), ndim, type(model)))
    state = {}
    targets = twin.state_dict()
    for key, value in model.state_dict().items():
        target = targets[key]
        if value.dim() + 1 == target.dim() and value.dim() >= 3:  # a conv kernel (out, in, *k)
            value = inflate_kernel(value, target.shape[2], rule)
        if value.shape != target.shape:
            raise ValueError(f"inflate: {key} is {tuple(value.shape)} and becomes {tuple(target.shape)}: no rule for it")
        state[key] = value.to(target.dtype)
    twin.load_state_dict(state, strict=True)
    return twin.train(model.training)
