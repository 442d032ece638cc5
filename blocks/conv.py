"""The unit every block, stem and head is made of (ConvModern1d/2d/3d), and its up-scaler.

`ConvModern` is the one place that orders norm / act / [up] / conv, decides the conv's bias and
padding and decides which activations work in place; `norm_act` is the same rule for a norm + act
without a conv (a pre-activation network's final layers). A network's stem and head are units
too, with their differences named: ``bare=True`` (a pre-activation stem: the conv alone) and
``linear_output=True`` (a head: nothing after the conv).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .checks import (
    LAYER_ORDERS,
    NDIMS,
    SCALERS,
    IntOrTuple,
    check_bool,
    check_call,
    check_choice,
    check_ndim,
    check_output_size,
    check_positive_int,
    check_tuple,
    is_int,
    is_tracing,
    resolve_ndim,
)
from .configurable import Configurable, records_config
from .layers import DropoutSpec, LayerSpec, in_place, is_null, make_activator, make_dropout, make_normalizer, torch_layer

__all__ = [
    "ChannelAliases", "ConvModern", "ConvModern1d", "ConvModern2d", "ConvModern3d", "Layers", "NormAct", "Upsample", "norm_act", "resample",
    "same_padding", "subsample",
]

SUBSAMPLED_BELOW = 16
"""Input channels under which a strided 1x1 conv subsamples its input instead (`subsamples`): oneDNN's
widest float32 channel block (16 with AVX-512, 8 with AVX2)."""


def subsamples(
    in_planes: int, kernel_size: tuple[int, ...], stride: tuple[int, ...], padding: tuple[int, ...]
) -> bool:
    """Whether a down-scaling conv is computed as a stride-1 conv on every ``stride``-th input position.

    That is the case for a strided 1x1 conv without padding and with fewer than `SUBSAMPLED_BELOW` input
    channels: same weights, same output, of the same size. The subsampling is an average pooling of
    kernel 1 (exact), whose output size has the conv's formula, so dynamic shapes export alike. The oneDNN bundled
    with PyTorch (v3.12.0, torch 2.13 and 2.14) computes the weight gradient of such a conv on a
    channels-last input past its scratch buffer (uxlfoundation/oneDNN#6035): the process dies
    (segmentation fault, heap corruption) or hangs, or the gradient is wrong. ``torch.compile`` turns
    2-D convs channels-last on the CPU, so a compiled training step meets it; the conv has stride 1
    instead, and the faulty kernel is never used. The rule is fixed at construction (a compiled graph
    changes layouts after it is traced); ResNets' shortcuts (64 channels and more) keep a strided conv.

    Args:
        in_planes: Input channels of the conv.
        kernel_size: Its kernel size, one per dimension.
        stride: Its down-scaling stride, one per dimension.
        padding: Its padding, one per dimension.

    Returns:
        True if the conv is to subsample its input and have stride 1.

    Examples:
        >>> subsamples(8, (1, 1), (2, 2), (0, 0)), subsamples(64, (1, 1), (2, 2), (0, 0))
        (True, False)
    """
    pointwise = all(k == 1 for k in kernel_size) and all(p == 0 for p in padding)
    return pointwise and any(s > 1 for s in stride) and in_planes < SUBSAMPLED_BELOW


AVG_POOLS = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
"""Average pooling by number of spatial dimensions; of kernel 1, the subsampling of `subsamples`."""


def subsample(x: Tensor, stride: list[int]) -> Tensor:
    """Every ``stride``-th position of ``x`` (one stride per spatial dimension): an average pooling of kernel 1.

    Examples:
        >>> subsample(torch.arange(10.0).view(1, 1, 10), [3])
        tensor([[[0., 3., 6., 9.]]])
    """
    if len(stride) == 1:
        return F.avg_pool1d(x, 1, stride)
    if len(stride) == 2:
        return F.avg_pool2d(x, 1, stride)
    return F.avg_pool3d(x, 1, stride)

MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}
"""Interpolation mode of `Upsample` by number of spatial dimensions."""


def resample(
    x: Tensor,
    output_size: list[int] | None,
    size: list[int] | None,
    scale_factor: list[float] | None,
    mode: str | None = None,
) -> Tensor:
    """Interpolate ``x`` to ``output_size`` if not None, else to ``size`` or by ``scale_factor``.

    ``size`` and ``scale_factor`` hold one value per spatial dimension, or one for all of them.
    ``mode`` None means linear, bilinear or trilinear by the rank of ``x`` (``align_corners=True``);
    ``'nearest'`` is nearest-neighbour. A leaf of ``torch.fx``
    traces (`torch.fx.wrap`): its choices depend on values that are Proxies while fx traces (an
    ``output_size`` left at its default, the rank of ``x``), so they are made when the graph runs.
    It compiles with TorchScript (its annotations are TorchScript's types).
    """
    if mode is None:
        mode = ["linear", "bilinear", "trilinear"][x.dim() - 3]
    corners: bool | None = None if mode == "nearest" else True
    if output_size is None:
        output_size = size
    if isinstance(output_size, int):  # one int from a Python caller (TorchScript's is a list: never true there)
        output_size = [output_size]
    if output_size is not None:
        sizes = output_size * (x.dim() - 2) if len(output_size) == 1 else output_size
        return F.interpolate(x, size=sizes, mode=mode, align_corners=corners)
    assert scale_factor is not None  # Upsample takes a size or a scale factor
    scales = scale_factor * (x.dim() - 2) if len(scale_factor) == 1 else scale_factor
    return F.interpolate(x, scale_factor=scales, mode=mode, align_corners=corners)


torch.fx.wrap("resample")


def _per_dimension(name: str, value: Any, ndim: int | None) -> int | tuple[int, ...]:
    """``value`` as one int >= 1 per dimension; without ``ndim``, an int >= 1 or a tuple of 1 to 3 of them."""
    if ndim is None:
        if isinstance(value, (tuple, list)) and len(value) in NDIMS:
            ndim = len(value)
        elif not is_int(value) or value < 1:
            raise ValueError(f"{name}={value!r} must be an int >= 1 or a pair of such ints (one per dimension)")
        else:
            return value
    return check_tuple(name, value, ndim)


class Upsample(nn.Upsample):
    """Linear, bilinear or trilinear up-sampling (``align_corners=True``) whose output size can be given per call.

    The mode follows the dimension: given as ``ndim``, else read from the input's rank at call time.
    ``nearest=True`` up-samples by nearest neighbour instead (smp's decoder does).

    Args:
        size: Exact output size, an int or one per dimension; overrides ``scale_factor``.
        scale_factor: Integer factor, an int or one per dimension; used when no size is given.
        ndim: Spatial dimensions (1, 2 or 3), or None to take them from each input.
        nearest: Nearest-neighbour instead of (bi/tri)linear interpolation.

    Raises:
        ValueError: If neither size nor scale is given, or either is not an int >= 1 or a tuple of them.

    Examples:
        >>> import torch
        >>> Upsample(scale_factor=2)(torch.zeros(1, 3, 4, 5), output_size=(7, 9)).shape
        torch.Size([1, 3, 7, 9])
        >>> Upsample(scale_factor=(1, 2, 2))(torch.zeros(1, 3, 4, 5, 6)).shape
        torch.Size([1, 3, 4, 10, 12])
    """

    def __init__(
        self,
        *,
        size: IntOrTuple | None = None,
        scale_factor: IntOrTuple | None = None,
        ndim: int | None = None,
        nearest: bool = False,
    ) -> None:
        if scale_factor is None and size is None:
            raise ValueError(
                "Upsample needs scale_factor (an int >= 1 or a pair) or size (h, w); got neither "
                "(in 1-D and 3-D: one value per dimension)"
            )
        self.ndim = None if ndim is None else check_ndim(ndim)
        if size is not None:
            size, scale = _per_dimension("size", size, ndim), None
        else:
            scale = _per_dimension("scale_factor", scale_factor, ndim)
            scale = tuple(float(s) for s in scale) if isinstance(scale, tuple) else float(scale)
        mode = "nearest" if check_bool("nearest", nearest) else MODES[ndim or 2]
        super().__init__(size=size, scale_factor=scale, mode=mode, align_corners=None if nearest else True)
        # What `resample` takes, in TorchScript's types: lists (one value, or one per dimension), the mode
        # if fixed (None: from each input's rank).
        self.sizes = None if size is None else list(size) if isinstance(size, tuple) else [size]
        self.scales = None if scale is None else list(scale) if isinstance(scale, tuple) else [scale]
        self.fixed_mode = mode if ndim is not None or nearest else None

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        """Up-sample ``x`` to ``output_size`` if given, else to the constructor's size or scale factor."""
        return resample(x, output_size, self.sizes, self.scales, self.fixed_mode)


def same_padding(kernel: Sequence[int], dilation: int | Sequence[int] = 1) -> tuple[int, ...]:
    """The padding that keeps the size of a stride-1 conv with an odd ``kernel``: ``d (k - 1) / 2`` per dimension.

    ``dilation`` (``d``, an int or one per dimension) spreads the kernel's taps ``d`` apart, so it
    spans ``d (k - 1) + 1`` positions.

    Examples:
        >>> same_padding((1, 3, 7)), same_padding((3, 3), dilation=(1, 4))
        ((0, 1, 3), (1, 4))
    """
    dilations = (dilation,) * len(kernel) if is_int(dilation) else tuple(dilation)
    return tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilations))


def norm_act(
    channels: int, normalizer: LayerSpec, activator: LayerSpec, ndim: int, after: nn.Module | None = None
) -> dict[str, nn.Module | None]:
    """A norm and an activation on ``channels``; the activation works in place when it reads a fresh tensor.

    Its input is fresh when it is the norm's output, or, without a norm, ``after``'s (the conv it
    follows); with neither it is not switched (it may read a tensor that something else still needs).

    Returns:
        ``{'norm': ..., 'act': ...}``, each None when not built.
    """
    norm = make_normalizer(normalizer, channels, ndim)
    act = make_activator(activator, channels, ndim)
    source = norm if norm is not None else after
    return {"norm": norm, "act": act if source is None else in_place(act, after=source)}


class Layers(nn.Sequential):
    """An ``nn.Sequential`` built from arguments rather than from layers.

    ``nn.Sequential`` slices by calling its own class with the sliced layers, which a subclass with
    another constructor cannot take; a slice of `Layers` is a plain ``nn.Sequential``.
    """

    def __getitem__(self, index: Any) -> Any:
        """Like ``nn.Sequential``: a layer for an int or a name, a plain ``nn.Sequential`` for a slice."""
        if isinstance(index, slice):
            return nn.Sequential(OrderedDict(list(self._modules.items())[index]))
        return super().__getitem__(index)


class NormAct(Layers):
    """``norm`` -> ``act`` (either may be absent): the final layers of a pre-activation network.

    Args:
        channels: Channels of the input.
        normalizer: Normalizer spec, see `blocks.layers`.
        activator: Activator spec, see `blocks.layers`.
        ndim: Spatial dimensions.

    Examples:
        >>> NormAct(8, "batch", "relu", 2).act
        ReLU(inplace=True)
    """

    def __init__(self, channels: int, normalizer: LayerSpec, activator: LayerSpec, ndim: int = 2) -> None:
        layers = norm_act(channels, normalizer, activator, ndim)
        super().__init__(OrderedDict((name, layer) for name, layer in layers.items() if layer is not None))


class ChannelAliases:
    """Mixin: ``in_channels`` / ``out_channels``, torch.nn's names for ``in_planes`` / ``out_planes``."""

    in_planes: int
    out_planes: int

    @property
    def in_channels(self) -> int:
        """Alias of ``in_planes``."""
        return self.in_planes

    @property
    def out_channels(self) -> int:
        """Alias of ``out_planes``."""
        return self.out_planes


class ConvModern(Configurable, ChannelAliases, Layers):
    """A convolution with its normalization and activation, in pre-activation or classic order, in 1-D, 2-D or 3-D.

    ``layer_order='new'`` (pre-activation, He et al. 2016): norm(in) -> act(in) -> [up] -> conv.
    ``layer_order='old'``: [up] -> conv -> norm(out) -> act(out). With a normalizer the conv has no
    bias. Without one it has a bias and the unit is [up] -> conv -> act(out) in either order (MDNC).

    ``scaler='down'`` gives the conv the ``stride``; a 1x1 conv without padding and with fewer than 16
    input channels has stride 1 instead, after a subsampling of its input by ``stride`` held in
    ``subsample`` (`subsamples`: it routes around a oneDNN bug; same weights and outputs).
    ``scaler='up'`` puts an `Upsample` (linear, bilinear or trilinear, ``align_corners=True``) right
    before a stride-1 conv, to ``scale_factor=stride`` or to exactly ``output_size`` when given.

    Two named variants make a network's edges from the same rule:

    * ``bare=True``: the conv alone, its norm and activation left to what follows (a pre-activation
      network's stem, whose first block normalizes its input); the bias rule still reads
      ``normalizer`` (no bias when there is one).
    * ``linear_output=True``: nothing non-linear after the conv (a head, or the last unit of an
      ``'old'`` residual branch, activated after the sum). In ``'new'`` order norm -> act -> conv,
      the activation before the conv even without a normalizer; in ``'old'`` order conv -> norm.

    ``dropout`` puts a dropout right after the conv: conv -> dropout -> norm -> act in ``'old'``
    order (nnU-Net's ``ConvDropoutNormReLU``), norm -> act -> conv -> dropout in ``'new'`` order.

    `ConvModern1d`, `ConvModern2d` and `ConvModern3d` are this class with ``ndim`` fixed. Int-or-tuple
    arguments take one value per spatial dimension.

    Args:
        in_planes: Input channels.
        out_planes: Output channels.
        kernel_size: Conv kernel size, an int or one per dimension.
        stride: Down-scaling stride (``'down'``) or up-scaling factor (``'up'``), an int or one per dimension.
        padding: Conv zero padding, an int or one per dimension.
        output_size: Exact output size of the up-sampling, one per dimension; only with ``scaler='up'``.
        normalizer: See `blocks.layers`; None or ``'null'`` for none.
        activator: See `blocks.layers`; None or ``'null'`` for none.
        layer_order: ``'new'`` or ``'old'``.
        scaler: ``'down'`` or ``'up'``.
        bias: Whether the conv has a bias; None (the default) means "only without a normalizer".
            True beside a normalizer is nnU-Net's ``conv_bias=True``.
        dropout: None, a probability (``nn.Dropout(p)``) or a factory ``f() -> nn.Module``
            (``lambda: nn.Dropout3d(0.2)``), applied right after the conv; see `blocks.layers.make_dropout`.
        dilation: The conv's dilation, an int or one per dimension; with an odd kernel, ``padding =
            dilation * (kernel_size - 1) // 2`` keeps the size (`same_padding`).
        bare: The conv alone (see above).
        linear_output: No activation after the conv (see above).
        ndim: Spatial dimensions, 1, 2 or 3 (fixed by the named classes; 2 by default here).

    Raises:
        ValueError: For any argument out of its allowed values.

    Examples:
        >>> import torch
        >>> unit = ConvModern2d(8, 16, stride=2, scaler="up")
        >>> unit(torch.zeros(1, 8, 5, 7)).shape
        torch.Size([1, 16, 10, 14])
        >>> unit(torch.zeros(1, 8, 5, 7), output_size=(9, 13)).shape
        torch.Size([1, 16, 9, 13])
        >>> ConvModern3d(2, 4, stride=(1, 2, 2))(torch.zeros(1, 2, 3, 8, 8)).shape
        torch.Size([1, 4, 3, 4, 4])
        >>> list(ConvModern2d(8, 2, 1, padding=0, normalizer=None, linear_output=True, bias=True)._modules)
        ['act', 'conv']
    """

    fixed_ndim: ClassVar[int | None] = None
    """The dimension of the named classes (`ConvModern2d`: 2); None for the generic class."""

    __constants__ = ["layer_names"]
    """TorchScript shares one compiled type among modules of the same layers, whatever their order; the
    order, a constant, tells an ``'old'`` unit (conv, norm, act) from a ``'new'`` one (norm, act, conv)."""

    @records_config
    def __init__(
        self,
        in_planes: int,
        out_planes: int,
        kernel_size: IntOrTuple = 3,
        stride: IntOrTuple = 1,
        padding: IntOrTuple = 1,
        output_size: IntOrTuple | None = None,
        normalizer: LayerSpec = "pinst",
        activator: LayerSpec = "prelu",
        layer_order: str = "new",
        scaler: str = "down",
        *,
        bias: bool | None = None,
        dropout: DropoutSpec = None,
        dilation: IntOrTuple = 1,
        bare: bool = False,
        linear_output: bool = False,
        ndim: int | None = None,
    ) -> None:
        super().__init__()
        self.ndim = ndim = resolve_ndim(type(self), ndim)
        self.in_planes = check_positive_int("in_planes", in_planes)
        self.out_planes = check_positive_int("out_planes", out_planes)
        kernel_size = check_tuple("kernel_size", kernel_size, ndim)
        stride = check_tuple("stride", stride, ndim)
        padding = check_tuple("padding", padding, ndim, minimum=0)
        dilation = check_tuple("dilation", dilation, ndim)
        output_size = check_output_size(output_size, ndim)
        check_choice("layer_order", layer_order, LAYER_ORDERS)
        check_choice("scaler", scaler, SCALERS)
        check_bool("bare", bare)
        check_bool("linear_output", linear_output)
        if output_size is not None and scaler != "up":
            raise ValueError(f"output_size={output_size!r} needs scaler='up', got scaler={scaler!r}")
        if bias is not None and not isinstance(bias, bool):
            raise ValueError(f"bias={bias!r} must be True, False or None (None: a bias only without a normalizer)")

        upsamples = scaler == "up" and (any(s != 1 for s in stride) or output_size is not None)
        # The stride of a conv that subsamples its input instead (`subsamples`); the conv has stride 1.
        subsampled = scaler == "down" and subsamples(in_planes, kernel_size, stride, padding)
        self.subsample = stride if subsampled else None
        conv = torch_layer("Conv", ndim)(
            in_planes,
            out_planes,
            kernel_size,
            stride=stride if scaler == "down" and not subsampled else 1,
            padding=padding,
            dilation=dilation,
            bias=is_null(normalizer) if bias is None else bias,
        )
        scaled = {
            "up": Upsample(size=output_size, scale_factor=stride, ndim=ndim) if upsamples else None,
            "conv": conv,
            "dropout": make_dropout(dropout),
        }
        if bare:
            layers = scaled
        elif layer_order == "new" and (linear_output or not is_null(normalizer)):
            layers = {**norm_act(in_planes, normalizer, activator, ndim), **scaled}
        else:  # 'old' order; or no normalizer, where the unit is conv -> act in either order (MDNC)
            after = None if linear_output else activator
            layers = {**scaled, **norm_act(out_planes, normalizer, after, ndim, after=conv)}
        for name, layer in layers.items():
            if layer is not None:
                self.add_module(name, layer)
        self.layer_names = tuple(self._modules)
        # Every input is at least 1 px, so only a padding below d (k - 1) / 2 can leave the conv too little.
        self.can_be_too_small = any(2 * p < d * (k - 1) for p, k, d in zip(padding, kernel_size, dilation))

    @property
    @torch.jit.unused
    def upsamples(self) -> bool:
        """True if this unit up-samples, and so takes an ``output_size`` at call time."""
        return "up" in self._modules

    def check(self, x: Tensor, output_size: Any = None) -> None:
        """Raise a clear error for a wrong input or call-time ``output_size``; steps aside while fx traces.

        Raises:
            TypeError: If ``x`` is not a floating-point tensor.
            ValueError: If ``x`` is not (B, in_planes, *spatial) or too small for the kernel, or
                ``output_size`` is malformed or given to a unit that does not up-sample.
        """
        if is_tracing(x):
            return
        output_size = check_call(self, x, output_size, "up-sample")
        if self.can_be_too_small:
            self._check_size(x, output_size)

    def _check_size(self, x: Tensor, output_size: list[int] | None) -> None:
        """Raise a ValueError if the conv's padded input (after any up-sampling) is smaller than its kernel."""
        conv = self.conv
        size = tuple(x.shape[2:])
        if self.upsamples:
            up = self.up
            size = output_size or up.size or tuple(n * int(s) for n, s in zip(size, up.scale_factor))
        spans = [d * (k - 1) + 1 for k, d in zip(conv.kernel_size, conv.dilation)]
        if any(n + 2 * p < span for n, p, span in zip(size, conv.padding, spans)):
            dilated = "" if all(d == 1 for d in conv.dilation) else f" dilated by {conv.dilation}"
            raise ValueError(
                f"{type(self).__name__} got input of shape {tuple(x.shape)}, too small: its conv sees "
                f"{tuple(size)}{' after up-sampling' if self.upsamples else ''}, which with padding="
                f"{conv.padding} is smaller than kernel_size={conv.kernel_size}{dilated} "
                "(needs size + 2 * padding >= dilation * (kernel_size - 1) + 1)"
            )

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        """Apply the unit.

        Args:
            x: Input of shape (B, in_planes, *spatial).
            output_size: Exact up-sampling size, one per dimension; overrides the constructor's.
                Only for an up-sampling unit.

        Returns:
            The output, (B, out_planes, *spatial').

        Raises:
            TypeError: If ``x`` is not a floating-point tensor.
            ValueError: If ``x`` has the wrong shape or is too small for the kernel, or
                ``output_size`` is malformed or given to a unit that does not up-sample.
        """
        if not torch.jit.is_scripting():
            self.check(x, output_size)
        # TorchScript unrolls the loop and decides each hasattr when it compiles (an isinstance would need
        # every class it names among the unit's layers).
        for layer in self:
            if self.subsample is not None and hasattr(layer, "padding_mode"):  # the conv: the one with a padding mode
                x = subsample(x, list(self.subsample))  # every stride-th position
            x = layer(x, output_size) if hasattr(layer, "fixed_mode") else layer(x)  # an `Upsample`
        return x

    def extra_repr(self) -> str:
        """``subsample=...`` when the conv subsamples its input instead of striding (`subsamples`)."""
        return "" if self.subsample is None else f"subsample={self.subsample}"


class ConvModern1d(ConvModern):
    """`ConvModern` in 1-D: inputs (B, C, L)."""

    fixed_ndim = 1


class ConvModern2d(ConvModern):
    """`ConvModern` in 2-D: inputs (B, C, H, W)."""

    fixed_ndim = 2


class ConvModern3d(ConvModern):
    """`ConvModern` in 3-D: inputs (B, C, D, H, W)."""

    fixed_ndim = 3
