"""Residual blocks: BlockPlain1d/2d/3d and BlockBottleneck1d/2d/3d, and the rules a stage builds them by.

Both keep MDNC's signature and defaults. Output = branch(x) + shortcut(x); the branch runs first.
In ``'old'`` order the last unit of the branch has no activation and the activation follows the sum
(the original ResNet and torchvision); MDNC activates inside the branch instead. This is the one
place where ``blocks`` deliberately differs from MDNC.

The rules, each in one function: the shortcut (`make_shortcut`), the hidden width
(`HIDDEN_WIDTHS`), where a block scales (`scales_first`) and the blocks a network's stage asks for
(`BlockSpec`). As in torchvision (``downsample``) and timm, the stage builds each block's shortcut
and hands it in; a block built alone builds its own by the same rule (``shortcut='auto'``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Union

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .checks import (
    IntOrTuple,
    check_bool,
    check_call,
    check_choice,
    check_positive_int,
    check_tuple,
    compact,
    named_class,
    resolve_ndim,
)
from .configurable import Configurable, records_config
from .conv import ChannelAliases, ConvModern, same_padding
from .layers import DropoutSpec, LayerSpec, in_place, make_activator, returns_new_tensor, torch_layer

__all__ = [
    "BLOCKS", "HIDDEN_WIDTHS", "STAGE_BLOCKS", "BlockBottleneck", "BlockBottleneck1d", "BlockBottleneck2d",
    "BlockBottleneck3d", "BlockPlain", "BlockPlain1d", "BlockPlain2d", "BlockPlain3d", "BlockSpec", "Branch",
    "GradCheckpointing", "ResidualBlock", "SHORTCUTS", "check_same_padding", "make_shortcut", "scales_first",
]


class Branch(nn.Sequential):
    """The residual branch: units in order, with ``output_size`` passed to the one that up-samples."""

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        """Apply the units; ``output_size`` reaches only the up-sampling unit (the one with an ``up`` layer)."""
        for unit in self:  # unrolled by TorchScript, which decides each hasattr when it compiles
            x = unit(x, output_size) if hasattr(unit, "up") else unit(x)
        return x


def check_same_padding(kernel_size: IntOrTuple, padding: IntOrTuple, ndim: int, dilation: IntOrTuple = 1) -> None:
    """Raise a ValueError unless ``padding`` keeps the size of a stride-1 conv with ``kernel_size`` and ``dilation``.

    The branch and the shortcut must produce the same size, and the shortcut's 1x1 conv has no
    padding, so every k x k conv of a block needs ``padding = d (k - 1) / 2`` with odd ``k``
    (`blocks.conv.same_padding`; ``d = 1`` without dilation).
    """
    kernel, pad = check_tuple("kernel_size", kernel_size, ndim), check_tuple("padding", padding, ndim, minimum=0)
    dilated = check_tuple("dilation", dilation, ndim)
    if any(k % 2 == 0 for k in kernel) or pad != same_padding(kernel, dilated):
        rule = "(kernel_size - 1) // 2" if all(d == 1 for d in dilated) else (
            f"dilation * (kernel_size - 1) // 2 = {compact(same_padding(kernel, dilated))} with dilation={dilation!r}"
        )
        raise ValueError(
            f"kernel_size={kernel_size!r} with padding={padding!r} changes the size in the branch but not in "
            f"the shortcut; a residual block needs an odd kernel_size and padding={rule}"
        )


def check_planes(in_planes: int, out_planes: int, hidden_planes: int | None) -> int:
    """Check the channel counts of a block; return its hidden width (``in_planes`` by default, as MDNC)."""
    check_positive_int("in_planes", in_planes)
    check_positive_int("out_planes", out_planes)
    return check_positive_int("hidden_planes", in_planes if hidden_planes is None else hidden_planes)


SHORTCUTS = ("auto", "pool")
"""The shortcut rules a block or a network builds by (`make_shortcut`): ``'auto'`` (a strided 1x1
projection, torchvision's) and ``'pool'`` (ResNet-D's average pooling, nnU-Net's residual encoders)."""


def make_shortcut(
    in_planes: int,
    out_planes: int,
    stride: IntOrTuple,
    output_size: IntOrTuple | None,
    normalizer: LayerSpec,
    scaler: str,
    ndim: int = 2,
    rule: str = "auto",
) -> nn.Module | None:
    """The shortcut rule: identity (None) when nothing changes, else a projection.

    ``rule='auto'``: [Upsample when scaler='up'] -> 1x1 conv (strided when 'down') -> norm(out);
    without a normalizer the conv has a bias and there is no norm.

    ``rule='pool'`` (ResNet-D as nnU-Net builds it, for ``scaler='down'``): an average pooling of
    kernel = stride (``ceil_mode=True``, so that any size meets the branch's ``ceil(n / s)``) only
    when the block strides, then a 1x1 conv without bias -> norm(out) only when the channels change:
    a stride-only block has no conv in its shortcut. It is an ``nn.Sequential`` of ``pool`` and
    ``proj``, each present only when needed. (timm's ``avg_down`` differs: it always projects.)

    Examples:
        >>> make_shortcut(8, 8, 1, None, "batch", "down") is None
        True
        >>> list(make_shortcut(8, 8, 2, None, "batch", "up", ndim=1)._modules)
        ['up', 'conv', 'norm']
        >>> pooled = make_shortcut(8, 16, 2, None, "batch", "down", rule="pool")
        >>> list(pooled._modules), list(pooled.proj._modules), pooled.proj.conv.bias
        (['pool', 'proj'], ['conv', 'norm'], None)
    """
    stride = check_tuple("stride", stride, ndim)
    strides = any(s != 1 for s in stride)
    if in_planes == out_planes and not strides and output_size is None:
        return None
    check_choice("shortcut", rule, SHORTCUTS)
    if rule == "pool":
        if scaler != "down":
            raise ValueError(f"shortcut='pool' averages to down-scale; it cannot up-scale (scaler={scaler!r})")
        parts: dict[str, nn.Module] = {}
        if strides:
            parts["pool"] = torch_layer("AvgPool", ndim)(stride, stride, ceil_mode=True)
        if in_planes != out_planes:
            parts["proj"] = named_class(ConvModern, ndim)(
                in_planes, out_planes, 1, 1, 0, None, normalizer, None, layer_order="old", bias=False, ndim=ndim
            )
        return nn.Sequential(OrderedDict(parts))
    return named_class(ConvModern, ndim)(
        in_planes, out_planes, 1, stride, 0, output_size, normalizer, None, layer_order="old", scaler=scaler, ndim=ndim
    )


ShortcutSpec = Union[nn.Module, None, str]
"""What ``shortcut=`` accepts: ``'auto'`` or ``'pool'`` (`make_shortcut`'s rules), None (the identity) or a module."""


class ResidualBlock(ChannelAliases, nn.Module):
    """A residual block from its parts: ``branch(x) + shortcut(x)``, then ``activation``.

    The branch runs first. The sum is taken in place when the branch ends in a conv or a torch norm
    (a fresh tensor), as torchvision's ``out += identity``. `BlockPlain` and `BlockBottleneck` build
    the parts by MDNC's rules. The shortcut is any module mapping the input to the branch's output
    shape (an ``nn.Conv2d``, an ``nn.Sequential``, ...), or None for the identity; only a shortcut
    that up-samples (one with ``upsamples`` True, such as an up-scaling `ConvModern`) is also
    handed the call's ``output_size``.

    Args:
        branch: The residual branch.
        shortcut: The shortcut module, or None for the identity.
        activation: A layer after the sum (``'old'`` order), or None.
        in_planes: Input channels (for the input check).
        out_planes: Output channels.
        ndim: Spatial dimensions.

    Examples:
        >>> import torch
        >>> block = BlockPlain2d(4, 8, stride=2, shortcut=nn.Conv2d(4, 8, 1, stride=2))
        >>> block(torch.zeros(1, 4, 9, 9)).shape
        torch.Size([1, 8, 5, 5])
    """

    __constants__ = ["shortcut_upsamples"]  # TorchScript compiles only the shortcut call that applies

    def __init__(
        self,
        branch: Branch,
        shortcut: nn.Module | None,
        activation: nn.Module | None,
        in_planes: int,
        out_planes: int,
        ndim: int = 2,
    ) -> None:
        super().__init__()
        if shortcut is not None and not isinstance(shortcut, nn.Module):
            raise ValueError(
                f"shortcut={shortcut!r} must be 'auto', None (the identity) or an nn.Module mapping the input "
                "to the branch's output shape"
            )
        self.in_planes = in_planes
        self.out_planes = out_planes
        self.ndim = ndim
        self.branch = branch
        self.shortcut = shortcut
        self.activation = activation
        self.shortcut_upsamples = bool(getattr(shortcut, "upsamples", False))
        self.sum_in_place = returns_new_tensor(branch[-1][-1])
        self.grad_checkpointing = False

    @property
    @torch.jit.unused
    def upsamples(self) -> bool:
        """True if this block up-samples, and so takes an ``output_size`` at call time."""
        return any(unit.upsamples for unit in self.branch)

    def check(self, x: Tensor, output_size: Any = None) -> None:
        """Raise a clear error for a wrong input or call-time ``output_size``; steps aside while fx traces.

        Raises:
            TypeError: If ``x`` is not a floating-point tensor.
            ValueError: If ``x`` is not (B, in_planes, *spatial), or ``output_size`` is malformed or
                given to a block that does not up-scale.
        """
        check_call(self, x, output_size, "up-scale")

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        """Apply the block: branch(x) + shortcut(x), then the activation in ``'old'`` order.

        Args:
            x: Input of shape (B, in_planes, *spatial).
            output_size: Exact output size of an up-scaling block; overrides the constructor's.

        Returns:
            The output, (B, out_planes, *spatial').

        Raises:
            TypeError: If ``x`` is not a floating-point tensor.
            ValueError: If ``x`` has the wrong shape, or ``output_size`` is malformed or given to a
                block that does not up-scale.
        """
        if not torch.jit.is_scripting():  # the checks and checkpointing are Python's; a script runs the sum alone
            self.check(x, output_size)
            if self.grad_checkpointing and torch.is_grad_enabled():
                return checkpoint(self._residual, x, output_size, use_reentrant=False)
        return self._residual(x, output_size)

    def _residual(self, x: Tensor, output_size: list[int] | None) -> Tensor:
        """branch(x) + shortcut(x), then the activation in ``'old'`` order."""
        out = self.branch(x, output_size)
        if self.shortcut is None:
            shortcut = x
        elif self.shortcut_upsamples:
            shortcut = self.shortcut(x, output_size)
        else:
            shortcut = self.shortcut(x)
        out = out.add_(shortcut) if self.sum_in_place else out + shortcut
        return out if self.activation is None else self.activation(out)


def _block_parts(
    in_planes: int,
    out_planes: int,
    stride: IntOrTuple,
    output_size: IntOrTuple | None,
    normalizer: LayerSpec,
    activator: LayerSpec,
    layer_order: str,
    scaler: str,
    shortcut: ShortcutSpec,
    ndim: int,
) -> dict[str, Any]:
    """The parts every block takes besides its branch: the shortcut, the activation after the sum, the sizes."""
    after_sum = in_place(make_activator(activator, out_planes, ndim)) if layer_order == "old" else None
    if isinstance(shortcut, str):
        if shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut={shortcut!r} is not allowed; use 'auto', 'pool', None or an nn.Module")
        shortcut = make_shortcut(in_planes, out_planes, stride, output_size, normalizer, scaler, ndim, shortcut)
    elif shortcut is None and make_shortcut(in_planes, out_planes, stride, output_size, None, scaler, ndim) is not None:
        raise ValueError(
            f"shortcut=None (the identity) needs a block that keeps the channels and the size; this one maps "
            f"{in_planes} -> {out_planes} channels with stride={stride!r}, output_size={output_size!r}: use "
            "shortcut='auto' or a module"
        )
    return {
        "shortcut": shortcut,
        "activation": after_sum,
        "in_planes": in_planes,
        "out_planes": out_planes,
        "ndim": ndim,
    }


class BlockPlain(Configurable, ResidualBlock):
    """Residual block of two k x k units (MDNC's plain block; torchvision's BasicBlock), in 1-D, 2-D or 3-D.

    branch = unit(in -> hidden, k) -> unit(hidden -> out, k, stride/scaler/output_size); with
    ``scale_first=True`` the scaling moves to the first unit, as in torchvision's BasicBlock.
    `BlockPlain1d`, `BlockPlain2d` and `BlockPlain3d` are this class with ``ndim`` fixed.

    Args:
        in_planes: Input channels.
        out_planes: Output channels.
        kernel_size: Kernel size of both units (odd), an int or one per dimension.
        stride: Down-scaling stride or up-scaling factor, an int or one per dimension.
        padding: Padding of both units; must be ``(kernel_size - 1) // 2``.
        output_size: Exact output size of an up-scaling block (``scaler='up'``), one per dimension.
        normalizer: Normalizer spec, see `blocks.layers`.
        activator: Activator spec, see `blocks.layers`.
        layer_order: ``'new'`` (pre-activation) or ``'old'`` (activation after the sum).
        scaler: ``'down'`` or ``'up'``.
        hidden_planes: Channels between the units; defaults to ``in_planes`` (MDNC); ``out_planes``
            makes the first conv go in -> out (torchvision's, timm's and nnU-Net's BasicBlock).
        scale_first: Scale in the first unit instead of the second.
        dilation: Dilation of both units' convs, an int or one per dimension (a dilated ResNet's
            blocks); then ``padding`` must be ``dilation * (kernel_size - 1) // 2``.
        shortcut: ``'auto'`` (`make_shortcut`: identity, or a projection when the channels change or
            the block scales), ``'pool'`` (ResNet-D's average pooling, nnU-Net's), None (the identity)
            or any module mapping the input to the branch's output shape; it gets the call's
            ``output_size`` only if it up-samples (``upsamples``).
        bias: The bias of the branch's convs (`ConvModern`'s rule; True beside a norm is nnU-Net's
            ``conv_bias=True``); the shortcut keeps its own rule.
        dropout: A dropout after the first unit's conv (nnU-Net's ``BasicBlockD``), see `ConvModern`.
        ndim: Spatial dimensions, 1, 2 or 3 (fixed by the named classes; 2 by default here).

    Examples:
        >>> import torch
        >>> block = BlockPlain2d(8, 16, stride=2)
        >>> block(torch.zeros(2, 8, 9, 9)).shape
        torch.Size([2, 16, 5, 5])
        >>> BlockPlain1d(8, 4, stride=3, scaler="up")(torch.zeros(2, 8, 5), output_size=14).shape
        torch.Size([2, 4, 14])
    """

    fixed_ndim: ClassVar[int | None] = None
    """The dimension of the named classes; None for the generic class."""

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
        hidden_planes: int | None = None,
        scale_first: bool = False,
        shortcut: ShortcutSpec = "auto",
        bias: bool | None = None,
        dropout: DropoutSpec = None,
        dilation: IntOrTuple = 1,
        ndim: int | None = None,
    ) -> None:
        ndim = resolve_ndim(type(self), ndim)
        hidden = check_planes(in_planes, out_planes, hidden_planes)
        check_same_padding(kernel_size, padding, ndim, dilation)
        check_bool("scale_first", scale_first)
        scaled = {"stride": stride, "output_size": output_size}
        kept = {"stride": 1, "output_size": None}
        first, second = (scaled, kept) if scale_first else (kept, scaled)
        common = {"kernel_size": kernel_size, "padding": padding, "normalizer": normalizer,
                  "layer_order": layer_order, "scaler": scaler, "bias": bias, "dilation": dilation, "ndim": ndim}
        unit = named_class(ConvModern, ndim)
        branch = Branch(
            unit(in_planes, hidden, activator=activator, dropout=dropout, **common, **first),
            unit(hidden, out_planes, activator=activator, linear_output=layer_order == "old", **common, **second),
        )
        parts = _block_parts(in_planes, out_planes, stride, output_size, normalizer, activator, layer_order, scaler,
                             shortcut, ndim)
        super().__init__(branch, **parts)
        self.hidden_planes = hidden


class BlockBottleneck(Configurable, ResidualBlock):
    """Residual bottleneck block: 1x1 reduce, k x k, 1x1 expand (MDNC's bottleneck; torchvision's Bottleneck).

    branch = unit(in -> hidden, 1x1) -> unit(hidden -> hidden, k, stride/scaler/output_size) ->
    unit(hidden -> out, 1x1). `BlockBottleneck1d`, `BlockBottleneck2d` and `BlockBottleneck3d` are
    this class with ``ndim`` fixed.

    Args:
        in_planes: Input channels.
        out_planes: Output channels.
        kernel_size: Kernel size of the middle unit (odd), an int or one per dimension.
        stride: Down-scaling stride or up-scaling factor, an int or one per dimension.
        padding: Padding of the middle unit; must be ``(kernel_size - 1) // 2``.
        output_size: Exact output size of an up-scaling block (``scaler='up'``), one per dimension.
        normalizer: Normalizer spec, see `blocks.layers`.
        activator: Activator spec, see `blocks.layers`.
        layer_order: ``'new'`` (pre-activation) or ``'old'`` (activation after the sum).
        scaler: ``'down'`` or ``'up'``.
        hidden_planes: Bottleneck width; defaults to ``in_planes`` (MDNC; torchvision uses ``out_planes // 4``).
        shortcut: ``'auto'``, ``'pool'``, None or a module, as in `BlockPlain`.
        bias: The bias of the branch's convs, as in `BlockPlain`.
        dropout: A dropout after the middle (k x k) unit's conv (nnU-Net's ``BottleneckD``), see `ConvModern`.
        dilation: Dilation of the middle unit's conv, an int or one per dimension (a dilated ResNet's
            blocks); then ``padding`` must be ``dilation * (kernel_size - 1) // 2``.
        ndim: Spatial dimensions, 1, 2 or 3 (fixed by the named classes; 2 by default here).

    Examples:
        >>> import torch
        >>> block = BlockBottleneck2d(32, 16, stride=(1, 2), output_size=(4, 255), scaler="up")
        >>> block(torch.zeros(2, 32, 4, 128)).shape
        torch.Size([2, 16, 4, 255])
        >>> BlockBottleneck3d(4, 8, stride=2)(torch.zeros(1, 4, 5, 6, 7)).shape
        torch.Size([1, 8, 3, 3, 4])
    """

    fixed_ndim: ClassVar[int | None] = None
    """The dimension of the named classes; None for the generic class."""

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
        hidden_planes: int | None = None,
        shortcut: ShortcutSpec = "auto",
        bias: bool | None = None,
        dropout: DropoutSpec = None,
        dilation: IntOrTuple = 1,
        ndim: int | None = None,
    ) -> None:
        ndim = resolve_ndim(type(self), ndim)
        hidden = check_planes(in_planes, out_planes, hidden_planes)
        check_same_padding(kernel_size, padding, ndim, dilation)
        common = {"normalizer": normalizer, "layer_order": layer_order, "scaler": scaler, "bias": bias, "ndim": ndim}
        unit = named_class(ConvModern, ndim)
        branch = Branch(
            unit(in_planes, hidden, 1, 1, 0, None, activator=activator, **common),
            unit(hidden, hidden, kernel_size, stride, padding, output_size, activator=activator, dropout=dropout,
                 dilation=dilation,
                 **common),
            unit(hidden, out_planes, 1, 1, 0, None, activator=activator, linear_output=layer_order == "old", **common),
        )
        parts = _block_parts(in_planes, out_planes, stride, output_size, normalizer, activator, layer_order, scaler,
                             shortcut, ndim)
        super().__init__(branch, **parts)
        self.hidden_planes = hidden


BLOCKS: dict[str, type[ResidualBlock]] = {"bottleneck": BlockBottleneck, "plain": BlockPlain}
"""``block=`` values of every network: name -> generic block class."""

STAGE_BLOCKS = (*BLOCKS, "conv")
"""``block=`` / ``decoder_block=`` values of the U-Net family: a residual block, or ``'conv'``, a stage of
units without shortcut (the classic U-Net's and nnU-Net's ``StackedConvBlocks``)."""

HIDDEN_WIDTHS: dict[str, Callable[[str, int, int], int]] = {
    "mdnc": lambda block, in_planes, out_planes: in_planes,
    "torchvision": lambda block, in_planes, out_planes: out_planes // 4 if block == "bottleneck" else out_planes,
    "narrow": lambda block, in_planes, out_planes: min(in_planes, out_planes),
    "output": lambda block, in_planes, out_planes: out_planes,
}
"""The hidden-width rules: ``'mdnc'`` (a block's default), ``'torchvision'`` (`ResNet`: a bottleneck is a
quarter of its output, a plain block as wide as its output), ``'narrow'`` (the U-Net family's default:
``min(in, out)``, so a block is never wider than its ends) and ``'output'`` (``out``: a plain block's
first conv goes in -> out, as in timm's and nnU-Net's BasicBlock)."""


def scales_first(block: str, scaler: str) -> bool:
    """The stride-placement rule of the networks: plain blocks down-scale in their first unit, up-scale in their last.

    Down-scaling first is torchvision's BasicBlock; a bottleneck always scales in its k x k unit.

    Examples:
        >>> scales_first("plain", "down"), scales_first("plain", "up"), scales_first("bottleneck", "down")
        (True, False, False)
    """
    return block == "plain" and scaler == "down"


@dataclass(frozen=True)
class BlockSpec:
    """How a network builds its blocks: one object that carries the choices down every stage.

    Attributes:
        block: ``'bottleneck'``, ``'plain'`` or ``'conv'`` (a unit, no shortcut: see `STAGE_BLOCKS`).
        kernel_size: Odd kernel size, an int or one per dimension; the padding keeps the size.
        normalizer: Normalizer spec, see `blocks.layers`.
        activator: Activator spec, see `blocks.layers`.
        layer_order: ``'new'`` or ``'old'``.
        width: The hidden-width rule, a key of `HIDDEN_WIDTHS`.
        ndim: Spatial dimensions.
        bias: The convs' bias (`ConvModern`'s rule when None).
        dropout: A dropout after the conv of each ``'conv'`` unit and of each block's first k x k unit.
        shortcut: The shortcut rule, a value of `SHORTCUTS`.
        hidden_planes: An explicit hidden width for every block, overriding ``width`` (nnU-Net's
            ``bottleneck_channels`` of one stage), or None.

    Examples:
        >>> spec = BlockSpec("bottleneck", width="torchvision")
        >>> [u.conv.stride for u in spec.build(256, 512, stride=2).branch]
        [(1, 1), (2, 2), (1, 1)]
    """

    block: str = "bottleneck"
    kernel_size: IntOrTuple = 3
    normalizer: LayerSpec = "pinst"
    activator: LayerSpec = "prelu"
    layer_order: str = "new"
    width: str = "narrow"
    ndim: int = 2
    bias: bool | None = None
    dropout: DropoutSpec = None
    shortcut: str = "auto"
    hidden_planes: int | None = None

    def build(
        self, in_planes: int, out_planes: int, stride: IntOrTuple = 1, scaler: str = "down", dilation: IntOrTuple = 1
    ) -> nn.Module:
        """One block ``in_planes -> out_planes``: hidden width by `width`, scaling placed by `scales_first`.

        The spec builds the block's shortcut (`make_shortcut`) and hands it in, as torchvision's
        stages hand their blocks a ``downsample``. With ``block='conv'`` it is one unit.

        Args:
            in_planes: Input channels.
            out_planes: Output channels.
            stride: Down-scaling stride or up-scaling factor.
            scaler: ``'down'`` or ``'up'``.
            dilation: Dilation of the k x k convs; the padding follows (`blocks.conv.same_padding`).

        Returns:
            The named block of the spec's dimension (e.g. `BlockPlain2d`; `ConvModern2d` for ``'conv'``).
        """
        kernel = check_tuple("kernel_size", self.kernel_size, self.ndim)
        dilated = check_tuple("dilation", dilation, self.ndim)
        extra = {} if all(d == 1 for d in dilated) else {"dilation": compact(dilated)}
        if self.block == "conv":
            return named_class(ConvModern, self.ndim)(
                in_planes, out_planes, kernel, stride, same_padding(kernel, dilated), None, self.normalizer,
                self.activator, self.layer_order, scaler, bias=self.bias, dropout=self.dropout, **extra,
            )
        if scales_first(self.block, scaler):
            extra["scale_first"] = True
        rule = self.shortcut if scaler == "down" else "auto"
        shortcut = make_shortcut(in_planes, out_planes, stride, None, self.normalizer, scaler, self.ndim, rule)
        hidden = self.hidden_planes or HIDDEN_WIDTHS[self.width](self.block, in_planes, out_planes)
        return named_class(BLOCKS[self.block], self.ndim)(
            in_planes, out_planes, kernel, stride, same_padding(kernel, dilated), None, self.normalizer,
            self.activator, self.layer_order, scaler, hidden_planes=hidden, shortcut=shortcut, bias=self.bias,
            dropout=self.dropout, **extra,
        )

    def stage(
        self,
        in_planes: int,
        out_planes: int,
        depth: int,
        stride: IntOrTuple = 1,
        dilation: IntOrTuple = 1,
        first_dilation: IntOrTuple | None = None,
    ) -> nn.Sequential:
        """``depth`` blocks; the first takes the stride and the change of channels (torchvision's and MDNC's stages).

        In a dilated stage (`blocks.levels.dilated_levels`) the first block keeps ``first_dilation``,
        the dilation of the stage before (torchvision's ``previous_dilation``, timm's
        ``first_dilation``), and the others have ``dilation``; None means ``dilation`` for all.
        ``depth=0`` is an empty stage (the identity), allowed only where nothing changes.

        Raises:
            ValueError: For ``depth=0`` with a change of channels or a stride.
        """
        if depth == 0:
            if in_planes != out_planes or any(s != 1 for s in check_tuple("stride", stride, self.ndim)):
                raise ValueError(
                    f"a stage of 0 blocks cannot change {in_planes} -> {out_planes} channels or stride by {stride!r}"
                )
            return nn.Sequential()
        first = self.build(in_planes, out_planes, stride, dilation=dilation if first_dilation is None else first_dilation)
        return nn.Sequential(first, *(self.build(out_planes, out_planes, dilation=dilation) for _ in range(depth - 1)))

    def with_kernel(self, kernel_size: IntOrTuple) -> BlockSpec:
        """The same spec with another kernel size (one level's, of ``kernel_sizes``)."""
        return replace(self, kernel_size=kernel_size)

    def at_level(self, kernel_size: IntOrTuple, hidden_planes: int | None) -> BlockSpec:
        """The same spec with one level's kernel size and explicit hidden width (None: the ``width`` rule)."""
        return replace(self, kernel_size=kernel_size, hidden_planes=hidden_planes)


class GradCheckpointing:
    """Mixin for networks of residual blocks: ``set_grad_checkpointing`` (timm's name)."""

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each residual block's inside during the backward pass instead of storing it.

        Training then keeps only the blocks' inputs, trading one more forward pass of each block for
        much less activation memory; outputs and gradients are unchanged. With ``normalizer='batch'``
        the running statistics are updated again by the recomputation, as in every checkpointed model.

        An outside encoder with its own ``set_grad_checkpointing`` (a timm model) is switched too.

        Args:
            enable: True to checkpoint every block, False to store activations as usual.
        """
        check_bool("enable", enable)
        for module in self.modules():
            if isinstance(module, ResidualBlock):
                module.grad_checkpointing = enable
            elif module is not self and not isinstance(module, GradCheckpointing) and callable(
                getattr(module, "set_grad_checkpointing", None)
            ):
                module.set_grad_checkpointing(enable)


class BlockPlain1d(BlockPlain):
    """`BlockPlain` in 1-D: inputs (B, C, L)."""

    fixed_ndim = 1


class BlockPlain2d(BlockPlain):
    """`BlockPlain` in 2-D: inputs (B, C, H, W)."""

    fixed_ndim = 2


class BlockPlain3d(BlockPlain):
    """`BlockPlain` in 3-D: inputs (B, C, D, H, W)."""

    fixed_ndim = 3


class BlockBottleneck1d(BlockBottleneck):
    """`BlockBottleneck` in 1-D: inputs (B, C, L)."""

    fixed_ndim = 1


class BlockBottleneck2d(BlockBottleneck):
    """`BlockBottleneck` in 2-D: inputs (B, C, H, W)."""

    fixed_ndim = 2


class BlockBottleneck3d(BlockBottleneck):
    """`BlockBottleneck` in 3-D: inputs (B, C, D, H, W)."""

    fixed_ndim = 3
