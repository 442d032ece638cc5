"""UNet1d/2d/3d: a U-Net of residual blocks that takes any input size and returns exactly that size.

Built from the family's shared parts: ``stem`` and `blocks.encoder.Encoder` (the stages), then
`blocks.decoder.Decoder` (deepest first) and the head (`blocks.decoder.make_head`).

Layout (``L`` levels; level ``i`` is at ``1 / 2**i`` of the input in every dimension, sizes rounded up)::

    x -> stem -> encoder[0] -> encoder[1] -> ... -> encoder[L-1]
    y <- head <- decoder[L-2] <- ... <- decoder[0] <-------+

``decoder`` is deepest first: ``decoder[j]`` is level ``L-2-j`` and fuses the output of
``encoder[L-2-j]`` (its skip).

* ``stem``: one unit at the input resolution, ``in_planes -> channels[0]``. In ``'new'`` order it is
  a bare conv (with bias), since every block starts with its own norm and activation
  (pre-activation ResNet); in ``'old'`` order it is conv -> norm -> act.
* ``encoder[i]``: ``layers[i]`` blocks; from level 1 on, the first block halves the size (a stride-2
  block, so ``n -> ceil(n / 2)``) and changes the channels.
* ``decoder`` stage of level ``i``: an up-scaling block (``scaler='up'``) from ``channels[i + 1]`` to
  ``channels[i]`` channels, to exactly the skip's size read at run time; then the skip is
  concatenated (``torch.cat``) and ``layers[i]`` blocks fuse ``2 * channels[i] -> channels[i]``.
* ``head``: a 1x1 conv with bias to ``out_planes``, preceded by norm + act in ``'new'`` order (the
  blocks leave their sum un-normalized) and by nothing in ``'old'`` order.
* Every block has hidden width ``min(in, out)``, so a bottleneck is never wider than its ends; plain
  blocks down-scale in their first unit (as torchvision's BasicBlock) and up-scale in their last.

Because every up-scaling goes to a size read from a tensor, any height and width work and the
output has exactly the input's size, with nothing cropped or padded. The only limit is the deepest
level: each normalizer needs more than one value per group there. An input larger than the deepest
reduction in at least one dimension (``max(H, W) >= min_size`` in 2-D) always works; a smaller one
makes the deepest map one pixel, which works only where every normalizer still has two values or
more (batch norm in training with a batch of 2 or more, or in eval mode; group norm with two
channels or more per group): `blocks.levels.one_pixel_problem` is the rule.

Weight initialisation: the layers a U-Net builds keep PyTorch's defaults (0.1.0's choice, kept:
a measured comparison found Kaiming everywhere fits faster early but ends at a lower validation
Dice); an ``encoder=`` backbone keeps its own weights and initialisation (`ResNet`'s is
torchvision's Kaiming rule), since it may be pretrained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, ClassVar, List, Tuple, Union

import torch
from torch import Tensor, nn

from .backbones import BackboneReader, check_backbone_size, check_deepest_map, prune_head, read_backbone
from .checks import (
    IntOrTuple,
    check_bool,
    check_input,
    check_min_size,
    check_per_level,
    check_positive_int,
    check_tuple,
    compact,
    is_int,
    is_tracing,
    resolve_ndim,
)
from .configurable import Configurable, records_config
from .conv import ChannelAliases, Layers
from .decoder import Decoder, make_head
from .encoder import (
    DEFAULT_CHANNELS, Encoder, check_channels, check_hidden_planes, family_levels, family_spec, make_unet_stem,
)
from .features import make_global_pool
from .layers import DropoutSpec, LayerSpec
from .levels import PerLevel, min_sizes, one_pixel_problem, reductions_of
from .residual import GradCheckpointing

__all__ = [
    "AUX_ACTIVATIONS", "AE", "AE1d", "AE2d", "AE3d", "ClassificationHead", "UNet", "UNet1d", "UNet2d", "UNet3d",
    "check_aux_params",
]

AUX_ACTIVATIONS: dict[str | None, Any] = {
    None: nn.Identity,
    "identity": nn.Identity,
    "sigmoid": nn.Sigmoid,
    "softmax": lambda: nn.Softmax(dim=1),
    "logsoftmax": lambda: nn.LogSoftmax(dim=1),
    "tanh": nn.Tanh,
}
"""``aux_params['activation']`` values: smp's names that make sense on logits (B, classes), each over the
classes; smp's ``'argmax'``, ``'clamp'`` and callables are not taken (a saved config must rebuild the model)."""

AUX_DEFAULTS: dict[str, Any] = {"pooling": "avg", "dropout": 0.2, "activation": None}
"""smp's defaults of the auxiliary head's keys besides ``classes``."""


def check_aux_params(aux_params: Any) -> dict[str, Any]:
    """Return smp's ``aux_params`` with its defaults filled in, else raise a ValueError naming the bad entry.

    Examples:
        >>> check_aux_params({"classes": 3})
        {'classes': 3, 'pooling': 'avg', 'dropout': 0.2, 'activation': None}
    """
    allowed = ["classes", *AUX_DEFAULTS]
    if not isinstance(aux_params, Mapping) or "classes" not in aux_params or set(aux_params) - set(allowed):
        raise ValueError(
            f"aux_params={aux_params!r} must be a dict with 'classes' (an int >= 1) and optionally 'pooling', "
            f"'dropout', 'activation' (smp's keys; allowed: {allowed})"
        )
    params = {"classes": aux_params["classes"], **AUX_DEFAULTS, **{k: v for k, v in aux_params.items() if k != "classes"}}
    check_positive_int("aux_params['classes']", params["classes"])
    if params["pooling"] not in ("avg", "max"):
        raise ValueError(f"aux_params['pooling']={params['pooling']!r} is not allowed; use 'avg' or 'max'")
    dropout = params["dropout"]
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"aux_params['dropout']={dropout!r} must be a number in [0, 1) (0 for no dropout)")
    if not (params["activation"] is None or isinstance(params["activation"], str)) or (
        params["activation"] not in AUX_ACTIVATIONS
    ):
        raise ValueError(
            f"aux_params['activation']={params['activation']!r} is not allowed; use one of {list(AUX_ACTIVATIONS)}"
        )
    return params


class ClassificationHead(Layers):
    """smp's auxiliary classification head on a network's deepest map: pool, flatten, dropout, linear, activation.

    Its five entries are smp's, in smp's order, so its keys are ``classification_head.3.weight`` and
    ``.bias`` as in smp's models. The linear layer keeps PyTorch's initialisation (as the U-Net's).

    Args:
        in_planes: Channels of the deepest map.
        classes: Number of classes.
        pooling: ``'avg'`` or ``'max'`` global pooling.
        dropout: Dropout probability before the linear layer; 0 for none (an ``nn.Identity``).
        activation: A name of `AUX_ACTIVATIONS`.
        ndim: Spatial dimensions.

    Examples:
        >>> import torch
        >>> head = ClassificationHead(16, 3, "max", ndim=3)
        >>> head(torch.zeros(2, 16, 4, 5, 6)).shape, [type(m).__name__ for m in head]
        (torch.Size([2, 3]), ['AdaptiveMaxPool3d', 'Flatten', 'Dropout', 'Linear', 'Identity'])
    """

    def __init__(
        self,
        in_planes: int,
        classes: int,
        pooling: str = "avg",
        dropout: float = 0.2,
        activation: str | None = None,
        ndim: int = 2,
    ) -> None:
        params = check_aux_params({"classes": classes, "pooling": pooling, "dropout": dropout, "activation": activation})
        super().__init__(
            make_global_pool(pooling, ndim),
            nn.Flatten(),
            nn.Dropout(p=params["dropout"], inplace=True) if params["dropout"] else nn.Identity(),
            nn.Linear(in_planes, classes),
            AUX_ACTIVATIONS[activation](),
        )


def check_layers(layers: int | Sequence[int], levels: int, stem_is_level_0: bool) -> tuple[int, ...]:
    """The blocks per level of the own encoder: one int >= 1 per level, ``layers[0] = 0`` allowed where the stem's output is level 0.

    Raises:
        ValueError: For a malformed count, or 0 blocks at level 0 where its stage has to change the
            stem's channels or stride.

    Examples:
        >>> check_layers((0, 2), 2, True), check_layers(1, 3, False)
        ((0, 2), (1, 1, 1))
    """
    try:
        return check_per_level("layers", layers, levels)
    except ValueError as error:
        if stem_is_level_0 and isinstance(layers, (tuple, list)) and len(layers) == levels and layers[0] == 0:
            rest = check_per_level("layers[1:]", tuple(layers)[1:], levels - 1) if levels > 1 else ()
            return (0, *rest)
        raise ValueError(
            f"{error}; layers[0] may also be 0 where the stem's output is level 0 (strides[0] = 1 and "
            "stem_planes = channels[0])"
        ) from None


class UNet(Configurable, ChannelAliases, GradCheckpointing, nn.Module):
    """A U-Net of residual blocks in 1-D, 2-D or 3-D: any input size, output of exactly that size.

    See the module docstring for the layout. ``normalizer``, ``activator``, ``layer_order``,
    ``block`` and ``kernel_size`` reach every block, the stem and the head. `UNet1d`, `UNet2d` and
    `UNet3d` are this class with ``ndim`` fixed.

    With ``encoder=`` a backbone replaces ``stem`` and the own encoder (e.g.
    ``blocks.resnet34(in_planes=1, num_classes=None)`` or ``timm.create_model('convnext_atto',
    features_only=True)``). ``self.encoder`` is then the backbone (its keys stay its own),
    ``self.stem`` is None, the levels are its maps (``channels`` are their channels), a whole
    model's classifier is pruned, and, when its first map is below the input resolution (a ResNet's
    is at 1/2), decoder stages without skip bring the output to the input's size.
    ``normalizer``, ``activator``, ``layer_order``, ``block`` and ``kernel_size`` then build the
    decoder and head; the backbone keeps its own.

    Args:
        in_planes: Input channels; None means 1 without an encoder and the encoder's own with one
            (its ``in_planes``, timm's ``in_chans``, else its first conv's); a given value that
            disagrees with the encoder raises.
        out_planes: Output channels (classes).
        channels: Channels per level, at least two; level ``i`` is at ``1 / 2**i`` of the input.
            None means (64, 128, 256, 512, 1024) without an encoder and the encoder's feature
            channels with one; a given value that disagrees with the encoder raises.
        layers: Blocks per level, an int or one per level: ``layers[i]`` blocks in encoder stage ``i``
            and ``layers[i]`` blocks after the fusion in the decoder stage of level ``i`` (the deepest
            level has no decoder stage; with ``encoder`` its count is unused). ``layers[0]`` may be 0
            when the stem's output is level 0 (``strides[0] = 1``, ``stem_planes = channels[0]``):
            the stem is then level 0's only unit (nnU-Net's ``PlainConvUNet``), and ``decoder_layers``
            must be given.
        block: ``'bottleneck'`` or ``'plain'``.
        kernel_size: Odd kernel size of every block and of the stem, an int or one per dimension.
        normalizer: Normalizer spec, see `blocks.layers`.
        activator: Activator spec, see `blocks.layers`.
        layer_order: ``'new'`` (pre-activation) or ``'old'``.
        encoder: A backbone to use instead of the own encoder, or None: any hierarchical backbone
            (see `blocks.backbones`: timm models and feature extractors, torchvision extractors,
            blocks' `ResNet` and `EncoderNet`, modules returning a list or dict of maps).
        decoder_channels: Output channels of each decoder stage, deepest first (smp's name), or None
            for ``channels[i]`` per level (0.1.0's layout). Given, an encoder whose first map is at
            ``1 / 2**k`` gets ``k`` stages without a skip, so it has one entry per level down to the input's size.
        upsample: How a decoder stage up-scales: ``'block'`` (a block with ``scaler='up'``, MDNC's
            way), ``'interpolate'`` (a plain (bi/tri)linear interpolation to the skip's size, no
            learnable layer, smp's lighter way), ``'nearest'`` (the same by nearest neighbour, as smp)
            or ``'transpose'`` (a transposed conv with kernel = stride = the level's stride, then cut
            to the skip's size: nnU-Net's and MONAI's way).
        strides: One entry per level, an int or one per dimension: level ``i`` is
            ``ceil(level[i - 1] / strides[i])`` in each dimension (level ``-1`` is the input); None
            for ``(1, 2, 2, ...)``. ``strides[0] > 1`` strides the first encoder stage (the stem stays
            at the input's size) and a stage without skip brings the output back to the input's
            size. Only for the own encoder (an ``encoder=`` backbone has its own).
        kernel_sizes: One entry per level, an int or one per dimension, for every conv of that level
            (encoder and decoder; the stem uses level 0's); None for ``kernel_size`` everywhere.
        decoder_layers: Blocks of each decoder stage after its fusion, deepest first, an int or
            ``L - 1`` ints (nnU-Net's ``n_conv_per_stage_decoder``); None for ``layers[L-2], ..., layers[0]``.
        decoder_block: The decoder's block, ``'bottleneck'``, ``'plain'`` or ``'conv'``; None for ``block``.
        deep_supervision: Build a 1x1 head on every decoder stage; while ``deep_supervision`` is True,
            `forward` returns a list of outputs, full resolution first, each at its stage's size.
        stem_planes: Output channels of the stem, from which encoder stage 0 starts (nnU-Net's
            ``stem_channels``); None for ``channels[0]``. Own encoder only.
        hidden_planes: The blocks' hidden width: None for ``'narrow'`` (``min(in, out)``), another
            rule of `blocks.residual.HIDDEN_WIDTHS` (``'output'``: a plain block's first conv goes
            in -> out, as timm's and nnU-Net's), or one int per level (every block of level ``i``,
            encoder and decoder: nnU-Net's ``bottleneck_channels``).
        bias: The bias of every conv of the stem, the blocks, the ``'conv'`` units and the transposed
            convs; None for blocks' rule (a bias only without a normalizer; transposed convs have one).
            The shortcuts keep their rule and the heads always have a bias.
        dropout: A dropout after the conv of the stem, of every ``'conv'`` unit and of each residual
            block's first k x k unit (nnU-Net's places): None, a probability or a factory
            ``f() -> nn.Module`` (see `blocks.layers.make_dropout`).
        shortcut: The residual blocks' shortcut rule: ``'auto'`` (a strided 1x1 projection) or
            ``'pool'`` (average pooling, then a 1x1 projection only if the channels change: ResNet-D
            as nnU-Net's residual encoders); up-scaling blocks keep ``'auto'``.
        aux_params: smp's auxiliary classification head on the deepest map, or None: ``dict(classes=n,
            pooling='avg' | 'max', dropout=0.2, activation=None)`` (`ClassificationHead`; activation one of
            `AUX_ACTIVATIONS`). `forward` then returns ``(mask, logits)`` (``(list_of_masks, logits)``
            with deep supervision on), as smp's models do.
        ndim: Spatial dimensions, 1, 2 or 3 (fixed by the named classes; with an encoder that has an
            ``ndim``, that one; else 2).

    Attributes:
        min_size: An input with one spatial size ``>= min_size`` (deepest reduction + 1) always works;
            smaller ones only where every normalizer can take a one-pixel deepest map (see the module
            docstring). An int, or one per dimension when the levels are anisotropic.
        reductions: Down-scaling factor of each level: an int, or one per dimension.
        strides: The checked per-level strides (own encoder), one per dimension, else None.
        kernel_sizes: The per-level kernel sizes, one per dimension.
        heads: The deep-supervision heads of the stages before the last, deepest first (or None).
        classification_head: The auxiliary head of ``aux_params`` (or None).

    Raises:
        ValueError: For any argument out of its allowed values.

    Examples:
        >>> import torch
        >>> net = UNet2d(in_planes=1, out_planes=2, channels=(8, 16, 32), layers=1)
        >>> net(torch.zeros(1, 1, 37, 53)).shape
        torch.Size([1, 2, 37, 53])
        >>> [tuple(f.shape[1:]) for f in net.encode(torch.zeros(1, 1, 37, 53))]
        [(8, 37, 53), (16, 19, 27), (32, 10, 14)]
        >>> UNet3d(channels=(4, 8), layers=1)(torch.zeros(1, 1, 5, 6, 7)).shape
        torch.Size([1, 1, 5, 6, 7])
        >>> ani = UNet3d(channels=(4, 8, 16), layers=1, strides=(1, (1, 2, 2), 2), kernel_sizes=((1, 3, 3), 3, 3))
        >>> [tuple(f.shape[2:]) for f in ani.encode(torch.zeros(1, 1, 7, 30, 27))]
        [(7, 30, 27), (7, 15, 14), (4, 8, 7)]
    """

    fixed_ndim: ClassVar[int | None] = None
    """The dimension of the named classes; None for the generic class."""

    skips: ClassVar[bool] = True
    """Whether the decoder fuses the encoder's features (U-Net) or only up-scales to their sizes (`AE`)."""

    @records_config
    def __init__(
        self,
        in_planes: int | None = None,
        out_planes: int = 1,
        channels: Sequence[int] | None = None,
        layers: int | Sequence[int] = 2,
        block: str = "bottleneck",
        kernel_size: IntOrTuple = 3,
        normalizer: LayerSpec = "pinst",
        activator: LayerSpec = "prelu",
        layer_order: str = "new",
        encoder: nn.Module | None = None,
        *,
        decoder_channels: Sequence[int] | None = None,
        upsample: str = "block",
        strides: PerLevel | None = None,
        kernel_sizes: PerLevel | None = None,
        decoder_layers: int | Sequence[int] | None = None,
        decoder_block: str | None = None,
        deep_supervision: bool = False,
        stem_planes: int | None = None,
        hidden_planes: str | int | Sequence[int] | None = None,
        bias: bool | None = None,
        dropout: DropoutSpec = None,
        shortcut: str = "auto",
        aux_params: Mapping[str, Any] | None = None,
        ndim: int | None = None,
    ) -> None:
        super().__init__()
        if ndim is None and self.fixed_ndim is None and encoder is not None:
            ndim = getattr(encoder, "ndim", None)
        self.ndim = ndim = resolve_ndim(type(self), ndim)
        if in_planes is not None:
            check_positive_int("in_planes", in_planes)
        check_positive_int("out_planes", out_planes)
        check_bool("deep_supervision", deep_supervision)
        options = {"bias": bias, "dropout": dropout, "shortcut": shortcut}
        aux = None if aux_params is None else check_aux_params(aux_params)
        if encoder is None:
            in_planes = 1 if in_planes is None else in_planes
            channels = DEFAULT_CHANNELS if channels is None else check_channels(channels)
        else:
            if strides is not None or stem_planes is not None:
                name, value = ("strides", strides) if strides is not None else ("stem_planes", stem_planes)
                raise ValueError(
                    f"{name}={value!r} sets the own encoder's levels; an encoder= backbone has its own "
                    f"(leave {name}=None)"
                )
            if getattr(encoder, "ndim", ndim) != ndim:
                raise ValueError(f"encoder={type(encoder).__name__} is {encoder.ndim}-D; this U-Net is {ndim}-D")
            self.reader = read_backbone(encoder, in_planes, ndim)
            if channels is not None and tuple(channels) != self.reader.channels:
                raise ValueError(
                    f"channels={channels!r} does not match the encoder's feature channels {self.reader.channels}; "
                    "leave channels=None when giving encoder="
                )
            channels, in_planes = self.reader.channels, self.reader.in_planes
        width, hidden = check_hidden_planes(hidden_planes, len(channels))
        spec = family_spec(block, kernel_size, normalizer, activator, layer_order, ndim, width=width, **options)
        decoder_spec = family_spec(block if decoder_block is None else decoder_block, kernel_size, normalizer,
                                   activator, layer_order, ndim, width=width, **options)

        if encoder is None:
            self.strides, self.kernel_sizes = family_levels(len(channels), strides, kernel_sizes, kernel_size, ndim)
            reductions = reductions_of(self.strides)
            stem = channels[0] if stem_planes is None else check_positive_int("stem_planes", stem_planes)
            counts = check_layers(layers, len(channels), stem == channels[0] and self.strides[0] == (1,) * ndim)
            self.stem: nn.Module | None = make_unet_stem(in_planes, stem, spec.with_kernel(self.kernel_sizes[0]))
            self.encoder = Encoder(channels, counts, spec, self.strides, self.kernel_sizes, in_planes=stem,
                                   hidden_planes=hidden)
            self.reader: BackboneReader | None = None
        else:
            prune_head(encoder, self.reader)
            reductions = [check_tuple("reduction", r, ndim) for r in self.reader.reductions]
            self.strides = None
            _, self.kernel_sizes = family_levels(len(channels), None, kernel_sizes, kernel_size, ndim)
            counts = check_per_level("layers", layers, len(channels))
            self.stem = None
            self.encoder = encoder
        if decoder_layers is None:
            decoder_counts = tuple(reversed(counts[:-1]))
        else:
            decoder_counts = check_per_level("decoder_layers", decoder_layers, len(channels) - 1)
        self.decoder = Decoder(channels, decoder_counts, decoder_spec, reductions, self.skips, decoder_channels,
                               upsample, self.kernel_sizes, hidden)
        self.head = make_head(self.decoder.out_planes, out_planes, decoder_spec)
        self.heads = None
        if deep_supervision:
            self.heads = nn.ModuleList(make_head(p, out_planes, decoder_spec) for p in self.decoder.stage_planes[:-1])
        self.decoder.deep_supervision = deep_supervision
        self.classification_head = None if aux is None else ClassificationHead(channels[-1], **aux, ndim=ndim)

        self.in_planes = in_planes
        self.out_planes = out_planes
        self.channels = channels
        self.layers = counts
        self.decoder_layers = decoder_counts
        self.reductions = tuple(compact(r) for r in reductions)
        self.min_size = compact(min_sizes(reductions[-1]))

    @property
    @torch.jit.unused
    def deep_supervision(self) -> bool:
        """nnU-Net's switch, ``decoder.deep_supervision``: while True, `forward` returns one output per decoder stage.

        Raises:
            ValueError: When set to True on a U-Net built without ``deep_supervision=True`` (no heads).
        """
        return self.decoder.deep_supervision

    @deep_supervision.setter
    def deep_supervision(self, enable: bool) -> None:
        check_bool("deep_supervision", enable)
        if enable and self.heads is None:
            raise ValueError(
                f"{type(self).__name__} was built without deep-supervision heads; build it with deep_supervision=True"
            )
        self.decoder.deep_supervision = enable

    def check_input(self, x: Tensor) -> None:
        """Raise a ValueError unless ``x`` is (B, in_planes, *spatial) with a spatial size of at least ``min_size``.

        Steps aside while fx traces.

        Examples:
            >>> import torch
            >>> UNet2d(channels=(8, 16, 32)).check_input(torch.zeros(1, 1, 4, 4))  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            ValueError: UNet2d needs an input of height or width >= 5 ...
        """
        check_input(self, x, self.in_planes, self.ndim)
        check_min_size(self, x, self.min_size, self.reductions[-1], partial(one_pixel_problem, self))

    def encode(self, x: Tensor) -> list[Tensor]:
        """The encoder's outputs, shallowest first: one per level.

        Args:
            x: Input of shape (B, in_planes, *spatial).

        Returns:
            One tensor per level, ``(B, channels[i], *ceil(spatial / 2**i))`` for the own encoder.

        Raises:
            ValueError: If ``x`` has the wrong shape or is too small (see `check_input`).

        Examples:
            >>> import torch
            >>> net = UNet2d(channels=(8, 16), layers=1)
            >>> [tuple(f.shape) for f in net.encode(torch.zeros(1, 1, 9, 4))]
            [(1, 8, 9, 4), (1, 16, 5, 2)]
        """
        self.check_input(x)
        return self._encode(x)

    def _encode(self, x: Tensor) -> list[Tensor]:
        """`encode` without the input check."""
        if self.stem is None:  # an encoder of its own; TorchScript compiles only the own encoder's path
            if torch.jit.is_scripting():
                raise RuntimeError("a U-Net with an outside encoder does not compile with TorchScript")
            return self._backbone_features(x)
        return self.encoder(self.stem(x))

    @torch.jit.unused
    def _backbone_features(self, x: Tensor) -> list[Tensor]:
        """The outside encoder's maps; a too-small input gets blocks' error with each side's minimum."""
        try:
            features = self.reader(self.encoder, x)
        except (RuntimeError, ValueError, IndexError) as error:
            if not is_tracing(x):
                check_backbone_size(self, self.encoder, self.reader, x, error, partial(one_pixel_problem, self))
            raise
        if not is_tracing(x):
            if len(features) != len(self.channels):
                raise ValueError(
                    f"encoder {type(self.encoder).__name__} returned {len(features)} maps, expected "
                    f"{len(self.channels)} (one per feature_info entry)"
                )
            check_deepest_map(self, self.encoder, self.reader, x, features[-1], partial(one_pixel_problem, self))
        return features

    def decode(self, features: Sequence[Tensor], output_size: Sequence[int]) -> Tensor:
        """Run the decoder on the encoder's outputs; return the last stage's output (before the head).

        Args:
            features: The output of `encode`.
            output_size: The input's spatial size; used by the last stage of a backbone U-Net.

        Returns:
            (B, channels[0], *output_size).

        Examples:
            >>> import torch
            >>> net = UNet2d(channels=(8, 16), layers=1)
            >>> x = torch.zeros(1, 1, 9, 4)
            >>> net.decode(net.encode(x), x.shape[-2:]).shape
            torch.Size([1, 8, 9, 4])
        """
        return self.decoder(features, output_size)

    def forward(
        self, x: Tensor
    ) -> Union[Tensor, List[Tensor], Tuple[Tensor, Tensor], Tuple[List[Tensor], Tensor]]:
        """Apply the U-Net.

        Args:
            x: Input of shape (B, in_planes, *spatial), with a spatial size of at least ``min_size``.

        Returns:
            (B, out_planes, *spatial): exactly the input's size; while `deep_supervision` is True,
                one output per decoder stage, full resolution first, each at its stage's size. With
                ``aux_params``, ``(that, logits)``, the logits (B, classes) of the auxiliary head.

        Raises:
            ValueError: If ``x`` has the wrong shape or is too small (see `check_input`).
        """
        if not torch.jit.is_scripting():
            self.check_input(x)
        features = self._encode(x)
        masks = self._masks(self.decoder(features, x.shape[2:]))
        if self.classification_head is None:
            return masks
        return masks, self.classification_head(features[-1])

    def _masks(self, decoded: Union[Tensor, List[Tensor]]) -> Union[Tensor, List[Tensor]]:
        """The head on the decoder's output; one head per stage while `deep_supervision` is True."""
        if not isinstance(decoded, list):  # decoder.deep_supervision is False (fx's Proxy is not a list either)
            return self.head(decoded)
        heads = self.heads
        if heads is None:
            if not torch.jit.is_scripting():
                raise ValueError(
                    f"decoder.deep_supervision is True but {type(self).__name__} was built without deep-supervision "
                    "heads; build it with deep_supervision=True"
                )
            raise ValueError("decoder.deep_supervision is True but the U-Net was built without deep-supervision heads")
        else:
            outputs = [self.head(decoded[-1])]  # full resolution first, then each coarser stage's head
            for j, head in enumerate(heads):  # heads[j] reads stage j (deepest first)
                outputs.insert(1, head(decoded[j]))
            return outputs


class UNet1d(UNet):
    """`UNet` in 1-D: inputs (B, C, L)."""

    fixed_ndim = 1


class UNet2d(UNet):
    """`UNet` in 2-D: inputs (B, C, H, W)."""

    fixed_ndim = 2


class UNet3d(UNet):
    """`UNet` in 3-D: inputs (B, C, D, H, W)."""

    fixed_ndim = 3


class AE(UNet):
    """An auto-encoder of residual blocks: the `UNet` without skips, in 1-D, 2-D or 3-D.

    It takes the U-Net's arguments (and defaults, ``in_planes=None`` meaning 1 without an encoder).
    Each decoder stage up-scales to exactly the size its encoder level had (read at run time) and
    concatenates nothing, so any input size comes back at exactly that size; the decoder's blocks
    then run ``channels[i] -> channels[i]``. `AE1d`, `AE2d` and `AE3d` are this class with ``ndim``
    fixed.

    Examples:
        >>> import torch
        >>> AE2d(channels=(4, 8, 16), layers=1)(torch.zeros(1, 1, 37, 53)).shape
        torch.Size([1, 1, 37, 53])
        >>> AE1d(channels=(4, 8), layers=1).decoder[0].skip_planes
        0
    """

    skips = False


class AE1d(AE):
    """`AE` in 1-D: inputs (B, C, L)."""

    fixed_ndim = 1


class AE2d(AE):
    """`AE` in 2-D: inputs (B, C, H, W)."""

    fixed_ndim = 2


class AE3d(AE):
    """`AE` in 3-D: inputs (B, C, D, H, W)."""

    fixed_ndim = 3
