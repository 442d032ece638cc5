"""ConvModern2d, the unit every block is made of, and its up-scaler."""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from .checks import (
    LAYER_ORDERS,
    SCALERS,
    IntPair,
    check_call_output_size,
    check_choice,
    check_input,
    check_output_size,
    check_pair,
    check_positive_int,
)
from .layers import LayerSpec, in_place, make_activator, make_normalizer

__all__ = ["ConvModern2d", "Upsample"]


class Upsample(nn.Upsample):
    """Bilinear up-sampling (``align_corners=True``) whose output size can be given per call.

    Args:
        scale_factor: Integer factor, an int or one per dimension ``(h, w)``; used when no size is given.
        size: Exact output size, an int or ``(H, W)``; overrides ``scale_factor``.

    Raises:
        ValueError: If neither is given, or either is not an int >= 1 or a pair of them.

    Examples:
        >>> import torch
        >>> Upsample(scale_factor=2)(torch.zeros(1, 3, 4, 5), output_size=(7, 9)).shape
        torch.Size([1, 3, 7, 9])
    """

    def __init__(self, scale_factor: IntPair | None = None, size: IntPair | None = None) -> None:
        if scale_factor is None and size is None:
            raise ValueError("Upsample needs scale_factor (an int >= 1 or a pair) or size (h, w); got neither")
        size = check_output_size(size, "size")
        scale = None if size is not None else tuple(float(s) for s in check_pair("scale_factor", scale_factor))
        super().__init__(size=size, scale_factor=scale, mode="bilinear", align_corners=True)

    def forward(self, x: Tensor, output_size: tuple[int, int] | None = None) -> Tensor:
        """Up-sample ``x`` to ``output_size`` if given, else to the constructor's size or scale factor."""
        output_size = check_call_output_size(self, output_size)
        if output_size is None:
            return super().forward(x)
        return F.interpolate(x, size=output_size, mode="bilinear", align_corners=True)


class ConvModern2d(nn.Sequential):
    """A convolution with its normalization and activation, in pre-activation or classic order.

    ``layer_order='new'`` (pre-activation, He et al. 2016): norm(in) -> act(in) -> [up] -> conv.
    ``layer_order='old'``: [up] -> conv -> norm(out) -> act(out). With a normalizer the conv has no
    bias. Without one it has a bias and the unit is [up] -> conv -> act(out) in either order (MDNC).

    ``scaler='down'`` gives the conv the ``stride``. ``scaler='up'`` puts an `Upsample`
    (bilinear, ``align_corners=True``) right before a stride-1 conv, to ``scale_factor=stride`` or to
    exactly ``output_size`` when given.

    Args:
        in_planes: Input channels.
        out_planes: Output channels.
        kernel_size: Conv kernel size, an int or (h, w).
        stride: Down-scaling stride (``'down'``) or up-scaling factor (``'up'``), an int or (h, w).
        padding: Conv zero padding, an int or (h, w).
        output_size: Exact output size (h, w) of the up-sampling; only with ``scaler='up'``.
        normalizer: See `blocks.layers`; None or ``'null'`` for none.
        activator: See `blocks.layers`; None or ``'null'`` for none.
        layer_order: ``'new'`` or ``'old'``.
        scaler: ``'down'`` or ``'up'``.

    Raises:
        ValueError: For any argument out of its allowed values.

    Examples:
        >>> import torch
        >>> unit = ConvModern2d(8, 16, stride=2, scaler="up")
        >>> unit(torch.zeros(1, 8, 5, 7)).shape
        torch.Size([1, 16, 10, 14])
        >>> unit(torch.zeros(1, 8, 5, 7), output_size=(9, 13)).shape
        torch.Size([1, 16, 9, 13])
    """

    def __init__(
        self,
        in_planes: int,
        out_planes: int,
        kernel_size: IntPair = 3,
        stride: IntPair = 1,
        padding: IntPair = 1,
        output_size: IntPair | None = None,
        normalizer: LayerSpec = "pinst",
        activator: LayerSpec = "prelu",
        layer_order: str = "new",
        scaler: str = "down",
    ) -> None:
        super().__init__()
        self.in_planes = check_positive_int("in_planes", in_planes)
        self.out_planes = check_positive_int("out_planes", out_planes)
        kernel_size = check_pair("kernel_size", kernel_size)
        stride = check_pair("stride", stride)
        padding = check_pair("padding", padding, minimum=0)
        output_size = check_output_size(output_size)
        check_choice("layer_order", layer_order, LAYER_ORDERS)
        check_choice("scaler", scaler, SCALERS)
        if output_size is not None and scaler != "up":
            raise ValueError(f"output_size={output_size!r} needs scaler='up', got scaler={scaler!r}")

        up = scaler == "up" and (stride != (1, 1) or output_size is not None)
        norm = make_normalizer(normalizer, in_planes if layer_order == "new" else out_planes)
        pre_activation = layer_order == "new" and norm is not None  # no norm: conv -> act in either order
        act = make_activator(activator, in_planes if pre_activation else out_planes)
        conv = nn.Conv2d(
            in_planes,
            out_planes,
            kernel_size,
            stride=stride if scaler == "down" else 1,
            padding=padding,
            bias=norm is None,
        )
        act = in_place(act, after=norm if norm is not None else conv)
        layers = {
            "up": Upsample(stride, output_size) if up else None,
            "conv": conv,
        }
        pre = {"norm": norm, "act": act}
        layers = {**pre, **layers} if pre_activation else {**layers, **pre}
        for name, layer in layers.items():
            if layer is not None:
                self.add_module(name, layer)
        # Every input is at least 1 px, so only a padding below (k - 1) / 2 can leave the conv too little.
        self.can_be_too_small = any(2 * p < k - 1 for p, k in zip(padding, conv.kernel_size))

    @property
    def in_channels(self) -> int:
        """Alias of ``in_planes``."""
        return self.in_planes

    @property
    def out_channels(self) -> int:
        """Alias of ``out_planes``."""
        return self.out_planes

    @property
    def upsamples(self) -> bool:
        """True if this unit up-samples, and so takes an ``output_size`` at call time."""
        return "up" in self._modules

    def _check_size(self, x: Tensor, output_size: tuple[int, int] | None) -> None:
        """Raise a ValueError if the conv's padded input (after any up-sampling) is smaller than its kernel."""
        conv = self.conv
        size = x.shape[-2:]
        if self.upsamples:
            up = self.up
            size = output_size or up.size or [n * int(s) for n, s in zip(size, up.scale_factor)]
        if any(n + 2 * p < k for n, p, k in zip(size, conv.padding, conv.kernel_size)):
            raise ValueError(
                f"{type(self).__name__} got input of shape {tuple(x.shape)}, too small: its conv sees "
                f"{tuple(size)}{' after up-sampling' if self.upsamples else ''}, which with padding="
                f"{conv.padding} is smaller than kernel_size={conv.kernel_size} "
                "(needs size + 2 * padding >= kernel_size)"
            )

    def forward(self, x: Tensor, output_size: tuple[int, int] | None = None) -> Tensor:
        """Apply the unit.

        Args:
            x: Input of shape (B, in_planes, H, W).
            output_size: Exact up-sampling size (h, w); overrides the constructor's. Only for an
                up-sampling unit.

        Returns:
            The output, (B, out_planes, H', W').

        Raises:
            TypeError: If ``x`` is not a floating-point tensor.
            ValueError: If ``x`` is not (B, in_planes, H, W) or too small for the kernel, or
                ``output_size`` is malformed or given to a unit that does not up-sample.
        """
        check_input(self, x, self.in_planes)
        output_size = check_call_output_size(self, output_size)
        if output_size is not None and not self.upsamples:
            raise ValueError(
                f"output_size={output_size!r} given to a {type(self).__name__} that does not up-sample "
                "(build it with scaler='up' and a stride or output_size)"
            )
        if self.can_be_too_small:
            self._check_size(x, output_size)
        for layer in self:
            x = layer(x, output_size) if isinstance(layer, Upsample) else layer(x)
        return x
