"""Residual blocks: BlockPlain2d and BlockBottleneck2d.

Both keep MDNC's signature and defaults. Output = branch(x) + shortcut(x); the branch runs first.
In ``'old'`` order the last unit of the branch has no activation and the activation follows the sum
(the original ResNet and torchvision); MDNC activates inside the branch instead. This is the one
place where ``blocks`` deliberately differs from MDNC.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .checks import IntPair, check_bool, check_call_output_size, check_input, check_pair, check_positive_int
from .conv import ConvModern2d
from .layers import LayerSpec, in_place, make_activator, returns_new_tensor

__all__ = ["BlockPlain2d", "BlockBottleneck2d", "GradCheckpointing"]


class Branch(nn.Sequential):
    """The residual branch: units in order, with ``output_size`` passed to the one that up-samples."""

    def forward(self, x: Tensor, output_size: tuple[int, int] | None = None) -> Tensor:
        """Apply the units; ``output_size`` reaches only the up-sampling unit."""
        for unit in self:
            x = unit(x, output_size) if unit.upsamples else unit(x)
        return x


def check_same_padding(kernel_size: IntPair, padding: IntPair) -> None:
    """Raise a ValueError unless ``padding`` keeps the size of a stride-1 conv with ``kernel_size``.

    The branch and the shortcut must produce the same size, and the shortcut's 1x1 conv has no
    padding, so every k x k conv of a block needs ``padding = (k - 1) // 2`` with odd ``k``.
    """
    kernel, pad = check_pair("kernel_size", kernel_size), check_pair("padding", padding, minimum=0)
    if any(2 * p != k - 1 for k, p in zip(kernel, pad)):
        raise ValueError(
            f"kernel_size={kernel_size!r} with padding={padding!r} changes the size in the branch but not in "
            "the shortcut; a residual block needs an odd kernel_size and padding=(kernel_size - 1) // 2"
        )


def check_planes(in_planes: int, out_planes: int, hidden_planes: int | None) -> int:
    """Check the channel counts of a block; return its hidden width (``in_planes`` by default, as MDNC)."""
    check_positive_int("in_planes", in_planes)
    check_positive_int("out_planes", out_planes)
    return check_positive_int("hidden_planes", in_planes if hidden_planes is None else hidden_planes)


def make_shortcut(
    in_planes: int,
    out_planes: int,
    stride: IntPair,
    output_size: IntPair | None,
    normalizer: LayerSpec,
    scaler: str,
) -> ConvModern2d | None:
    """The shortcut rule: identity (None) when nothing changes, else a projection.

    The projection is [Upsample when scaler='up'] -> 1x1 conv (strided when 'down') -> norm(out);
    without a normalizer the conv has a bias and there is no norm.
    """
    if in_planes == out_planes and check_pair("stride", stride) == (1, 1) and output_size is None:
        return None
    return ConvModern2d(
        in_planes, out_planes, 1, stride, 0, output_size, normalizer, None, layer_order="old", scaler=scaler
    )


class _ResidualBlock2d(nn.Module):
    """Shared forward, checks and attributes of the residual blocks; subclasses build ``branch``."""

    def __init__(
        self,
        in_planes: int,
        out_planes: int,
        stride: IntPair,
        output_size: IntPair | None,
        normalizer: LayerSpec,
        activator: LayerSpec,
        layer_order: str,
        scaler: str,
        branch: Branch,
    ) -> None:
        super().__init__()
        self.in_planes = in_planes
        self.out_planes = out_planes
        self.branch = branch
        self.shortcut = make_shortcut(in_planes, out_planes, stride, output_size, normalizer, scaler)
        self.activation = in_place(make_activator(activator, out_planes)) if layer_order == "old" else None
        # Add the shortcut to the branch's output in place (torchvision's ``out += identity``) when that output
        # is a conv's or a torch norm's: a new tensor that nothing else reads, not needed by its backward.
        self.sum_in_place = returns_new_tensor(branch[-1][-1])
        self.grad_checkpointing = False

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
        """True if this block up-samples, and so takes an ``output_size`` at call time."""
        return any(unit.upsamples for unit in self.branch)

    def forward(self, x: Tensor, output_size: tuple[int, int] | None = None) -> Tensor:
        """Apply the block: branch(x) + shortcut(x), then the activation in ``'old'`` order.

        Args:
            x: Input of shape (B, in_planes, H, W).
            output_size: Exact output size (h, w) of an up-scaling block; overrides the constructor's.

        Returns:
            The output, (B, out_planes, H', W').

        Raises:
            TypeError: If ``x`` is not a floating-point tensor.
            ValueError: If ``x`` is not (B, in_planes, H, W), or ``output_size`` is malformed or given
                to a block that does not up-scale.
        """
        check_input(self, x, self.in_planes)
        output_size = check_call_output_size(self, output_size)
        if output_size is not None and not self.upsamples:
            raise ValueError(
                f"output_size={output_size!r} given to a {type(self).__name__} that does not up-scale "
                "(build it with scaler='up' and a stride or output_size)"
            )
        if self.grad_checkpointing and torch.is_grad_enabled():
            return checkpoint(self._residual, x, output_size, use_reentrant=False)
        return self._residual(x, output_size)

    def _residual(self, x: Tensor, output_size: tuple[int, int] | None) -> Tensor:
        """branch(x) + shortcut(x), then the activation in ``'old'`` order."""
        out = self.branch(x, output_size)
        shortcut = x if self.shortcut is None else self.shortcut(x, output_size)
        out = out.add_(shortcut) if self.sum_in_place else out + shortcut
        return out if self.activation is None else self.activation(out)


class GradCheckpointing:
    """Mixin for networks of residual blocks: ``set_grad_checkpointing`` (timm's name)."""

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each residual block's inside during the backward pass instead of storing it.

        Training then keeps only the blocks' inputs, trading one more forward pass of each block for
        much less activation memory; outputs and gradients are unchanged. With ``normalizer='batch'``
        the running statistics are updated again by the recomputation, as in every checkpointed model.

        Args:
            enable: True to checkpoint every block, False to store activations as usual.
        """
        check_bool("enable", enable)
        for module in self.modules():
            if isinstance(module, _ResidualBlock2d):
                module.grad_checkpointing = enable


class BlockPlain2d(_ResidualBlock2d):
    """Residual block of two k x k units (MDNC's plain block; torchvision's BasicBlock).

    branch = unit(in -> hidden, k) -> unit(hidden -> out, k, stride/scaler/output_size); with
    ``scale_first=True`` the scaling moves to the first unit, as in torchvision's BasicBlock.

    Args:
        in_planes: Input channels.
        out_planes: Output channels.
        kernel_size: Kernel size of both units (odd), an int or (h, w).
        stride: Down-scaling stride or up-scaling factor, an int or (h, w).
        padding: Padding of both units; must be ``(kernel_size - 1) // 2``.
        output_size: Exact output size (h, w) of an up-scaling block (``scaler='up'``).
        normalizer: Normalizer spec, see `blocks.layers`.
        activator: Activator spec, see `blocks.layers`.
        layer_order: ``'new'`` (pre-activation) or ``'old'`` (activation after the sum).
        scaler: ``'down'`` or ``'up'``.
        hidden_planes: Channels between the units; defaults to ``in_planes`` (MDNC).
        scale_first: Scale in the first unit instead of the second.

    Examples:
        >>> import torch
        >>> block = BlockPlain2d(8, 16, stride=2)
        >>> block(torch.zeros(2, 8, 9, 9)).shape
        torch.Size([2, 16, 5, 5])
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
        *,
        hidden_planes: int | None = None,
        scale_first: bool = False,
    ) -> None:
        hidden = check_planes(in_planes, out_planes, hidden_planes)
        check_same_padding(kernel_size, padding)
        check_bool("scale_first", scale_first)
        last_act = None if layer_order == "old" else activator
        scaled = {"stride": stride, "output_size": output_size}
        kept = {"stride": 1, "output_size": None}
        first, second = (scaled, kept) if scale_first else (kept, scaled)
        common = {"kernel_size": kernel_size, "padding": padding, "normalizer": normalizer,
                  "layer_order": layer_order, "scaler": scaler}
        branch = Branch(
            ConvModern2d(in_planes, hidden, activator=activator, **common, **first),
            ConvModern2d(hidden, out_planes, activator=last_act, **common, **second),
        )
        super().__init__(
            in_planes, out_planes, stride, output_size, normalizer, activator, layer_order, scaler, branch
        )
        self.hidden_planes = hidden


class BlockBottleneck2d(_ResidualBlock2d):
    """Residual bottleneck block: 1x1 reduce, k x k, 1x1 expand (MDNC's bottleneck; torchvision's Bottleneck).

    branch = unit(in -> hidden, 1x1) -> unit(hidden -> hidden, k, stride/scaler/output_size) ->
    unit(hidden -> out, 1x1).

    Args:
        in_planes: Input channels.
        out_planes: Output channels.
        kernel_size: Kernel size of the middle unit (odd), an int or (h, w).
        stride: Down-scaling stride or up-scaling factor, an int or (h, w).
        padding: Padding of the middle unit; must be ``(kernel_size - 1) // 2``.
        output_size: Exact output size (h, w) of an up-scaling block (``scaler='up'``).
        normalizer: Normalizer spec, see `blocks.layers`.
        activator: Activator spec, see `blocks.layers`.
        layer_order: ``'new'`` (pre-activation) or ``'old'`` (activation after the sum).
        scaler: ``'down'`` or ``'up'``.
        hidden_planes: Bottleneck width; defaults to ``in_planes`` (MDNC; torchvision uses ``out_planes // 4``).

    Examples:
        >>> import torch
        >>> block = BlockBottleneck2d(32, 16, stride=(1, 2), output_size=(4, 255), scaler="up")
        >>> block(torch.zeros(2, 32, 4, 128)).shape
        torch.Size([2, 16, 4, 255])
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
        *,
        hidden_planes: int | None = None,
    ) -> None:
        hidden = check_planes(in_planes, out_planes, hidden_planes)
        check_same_padding(kernel_size, padding)
        last_act = None if layer_order == "old" else activator
        branch = Branch(
            ConvModern2d(in_planes, hidden, 1, 1, 0, None, normalizer, activator, layer_order, scaler),
            ConvModern2d(hidden, hidden, kernel_size, stride, padding, output_size, normalizer, activator,
                         layer_order, scaler),
            ConvModern2d(hidden, out_planes, 1, 1, 0, None, normalizer, last_act, layer_order, scaler),
        )
        super().__init__(
            in_planes, out_planes, stride, output_size, normalizer, activator, layer_order, scaler, branch
        )
        self.hidden_planes = hidden
