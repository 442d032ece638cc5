"""The command line: ``python -m blocks`` (or ``blocks``) prints summaries of the models here.

Every model exists in 1-D, 2-D and 3-D: ``--ndim`` picks the dimension (2 by default), and
``--input`` then takes the channels and one size per dimension.

Examples::

    python -m blocks                      # the built-in default
    python -m blocks list
    python -m blocks list --ndim 3
    python -m blocks summary bottleneck --input 16 4 255 --batch 4 --set normalizer=batch
    python -m blocks summary bottleneck --ndim 1 --input 16 255
    python -m blocks summary unet --ndim 3 --input 1 64 64 64
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .checks import NDIMS, SPATIAL, named_class
from .conv import ConvModern
from .residual import BlockBottleneck, BlockPlain
from .resnet import ARCHS, resnet18, resnet34, resnet50, resnet101, resnet152
from .summary import summary
from .unet import UNet, shape_table

__all__ = ["MODELS", "ModelEntry", "main", "parse_value"]


@dataclass(frozen=True)
class ModelEntry:
    """A model the command line can build, in 1-D, 2-D and 3-D.

    Attributes:
        build: Called as ``build(ndim=ndim, **kwargs)`` with the ``--set`` keyword arguments
            (``ndim`` defaults to 2); returns the model.
        input_sizes: Default (C, *spatial) of one input, per dimension.
        descriptions: One line for ``python -m blocks list``, per dimension.
    """

    build: Callable[..., nn.Module]
    input_sizes: Mapping[int, tuple[int, ...]]
    descriptions: Mapping[int, str]

    @property
    def input_size(self) -> tuple[int, ...]:
        """The default 2-D input (C, H, W)."""
        return self.input_sizes[2]

    @property
    def description(self) -> str:
        """The 2-D description."""
        return self.descriptions[2]


def call_text(name: str, kwargs: Mapping[str, Any], positional: int = 0) -> str:
    """``name(...)`` as Python source: the first ``positional`` arguments by value, the others as keywords.

    Examples:
        >>> call_text("BlockPlain2d", {"in_planes": 16, "out_planes": 32, "stride": 2}, positional=2)
        'BlockPlain2d(16, 32, stride=2)'
    """
    items = list(kwargs.items())
    shown = [repr(value) for _, value in items[:positional]] + [f"{key}={value!r}" for key, value in items[positional:]]
    return f"{name}({', '.join(shown)})"


def named_entry(
    generic: type[nn.Module],
    defaults: Mapping[int, Mapping[str, Any]],
    input_sizes: Mapping[int, tuple[int, ...]],
    positional: int = 0,
    notes: Mapping[int, str] | None = None,
) -> ModelEntry:
    """The entry of a unit, block or U-Net: the named class of ``generic`` for each dimension.

    ``BlockPlain`` with ``ndim=3`` builds ``BlockPlain3d``, so a summary's last row names the class
    a user imports (and the 2-D tables stay those of 0.1.0).

    Args:
        generic: The dimension-generic class.
        defaults: Its keyword arguments per dimension; ``--set`` overrides them.
        input_sizes: The default input per dimension.
        positional: How many of the defaults the description shows by value.
        notes: Text after the description, per dimension.

    Returns:
        The entry, building ``generic``'s named class of the dimension asked for.
    """

    def build(ndim: int = 2, **kwargs: Any) -> nn.Module:
        return named_class(generic, ndim)(**{**defaults[ndim], **kwargs}, ndim=ndim)

    descriptions = {
        ndim: call_text(named_class(generic, ndim).__name__, defaults[ndim], positional) + (notes or {}).get(ndim, "")
        for ndim in NDIMS
    }
    return ModelEntry(build, input_sizes, descriptions)


def resnet_entry(build: Callable[..., nn.Module]) -> ModelEntry:
    """The entry of a ResNet preset (it takes ``ndim=`` itself): 224² RGB images, 16×112² clips, 4096-long signals."""
    layers, block = ARCHS[build.__name__]
    description = f"ResNet{tuple(layers)}, {block} blocks"
    return ModelEntry(
        build,
        {1: (3, 4096), 2: (3, 224, 224), 3: (3, 16, 112, 112)},
        {ndim: description + ("" if ndim == 2 else f", ndim={ndim}") for ndim in NDIMS},
    )


_BLOCK = {"in_planes": 16, "out_planes": 32}
_SMALL = {1: (16, 1024), 2: (16, 64, 64), 3: (16, 16, 16, 16)}

MODELS: dict[str, ModelEntry] = {
    "conv": named_entry(ConvModern, {ndim: _BLOCK for ndim in NDIMS}, _SMALL, positional=2),
    "plain": named_entry(BlockPlain, {ndim: {**_BLOCK, "stride": 2} for ndim in NDIMS}, _SMALL, positional=2),
    "bottleneck": named_entry(
        BlockBottleneck,
        {1: {**_BLOCK, "stride": 2}, 2: {**_BLOCK, "stride": (1, 2)}, 3: {**_BLOCK, "stride": (1, 1, 2)}},
        {1: (16, 255), 2: (16, 4, 255), 3: (16, 4, 4, 255)},
        positional=2,
        notes={2: ", the example of MDNC's docs"},
    ),
    "unet": named_entry(
        UNet,
        {ndim: {"in_planes": 1, "out_planes": 2} for ndim in NDIMS},
        {1: (1, 4096), 2: (1, 512, 512), 3: (1, 64, 64, 64)},
        notes={1: ": 1-channel signals to a 2-class map", 2: ": grey images to a 2-class map",
               3: ": grey volumes to a 2-class map"},
    ),
    **{build.__name__: resnet_entry(build) for build in (resnet18, resnet34, resnet50, resnet101, resnet152)},
}
"""Models by command-line name; ``--ndim`` picks the dimension, ``--set key=value`` overrides keyword arguments."""

DEFAULT_MODEL = "unet"
"""What ``python -m blocks`` with no arguments summarizes (in 2-D)."""

DEFAULT_BATCH = 4
"""The batch size of that summary."""


def parse_value(text: str) -> Any:
    """Parse a ``--set`` value: a Python literal (``1``, ``(1, 2)``, ``None``) or else a plain string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _parse_set(item: str) -> tuple[str, Any]:
    """Split ``key=value`` into the key and its parsed value."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--set expects key=value, got {item!r}")
    if key == "ndim":
        raise argparse.ArgumentTypeError("the dimension is set with --ndim, not --set ndim=...")
    return key, parse_value(value)


def _parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m blocks``."""
    parser = argparse.ArgumentParser(prog="blocks", description="Summaries of the blocks and backbones of `blocks`.")
    commands = parser.add_subparsers(dest="command")
    listing = commands.add_parser("list", help="list the model names")
    show = commands.add_parser("summary", help="print the summary table of a model")
    for sub in (listing, show):
        sub.add_argument("--ndim", type=int, choices=NDIMS, default=2,
                         help="spatial dimensions: 1 (signals), 2 (images) or 3 (volumes) (default: 2)")
    show.add_argument("name", choices=sorted(MODELS), help="model name (see `list`)")
    show.add_argument("--input", nargs="+", type=int, metavar=("C", "SIZE"),
                      help="input size: channels, then one size per dimension, e.g. C H W in 2-D (default: per model)")
    show.add_argument("--batch", type=int, default=-1, help="batch size shown in the table (default: -1)")
    show.add_argument("--set", type=_parse_set, action="append", default=[], metavar="KEY=VALUE",
                      help="keyword argument for the model, e.g. --set normalizer=batch (repeatable)")
    show.set_defaults(parser=show)  # errors found after parsing show the usage of `summary`
    return parser


def check_input_size(input_size: Sequence[int], ndim: int) -> tuple[int, ...]:
    """Return ``input_size`` as a tuple if it is the channels plus ``ndim`` positive sizes, else raise a ValueError.

    Examples:
        >>> check_input_size([1, 64, 64], 3)
        Traceback (most recent call last):
        ...
        ValueError: --input takes 4 ints with --ndim 3 (C D H W), got 3: 1 64 64
    """
    names = " ".join(["C", *SPATIAL[ndim].split(", ")])
    if len(input_size) != 1 + ndim:
        given = " ".join(map(str, input_size))
        raise ValueError(f"--input takes {1 + ndim} ints with --ndim {ndim} ({names}), got {len(input_size)}: {given}")
    if any(size < 1 for size in input_size):
        raise ValueError(f"--input sizes must be positive, got {' '.join(map(str, input_size))}")
    return tuple(input_size)


def run_summary(
    name: str, input_size: Sequence[int] | None = None, batch: int = -1, *, ndim: int = 2, **kwargs: Any
) -> str:
    """Build the model ``name`` in ``ndim`` dimensions with ``kwargs`` and return (and print) its summary table.

    The model is built on the ``meta`` device: the table needs only its shapes and parameter counts.

    Args:
        name: A key of `MODELS`.
        input_size: (C, *spatial) with one size per dimension; defaults to the model's own.
        batch: Batch size shown in the table.
        ndim: Spatial dimensions, 1, 2 or 3.
        **kwargs: Keyword arguments for the model.

    Returns:
        The summary table.

    Raises:
        ValueError: If ``input_size`` does not have ``1 + ndim`` positive ints, or the model refuses
            its arguments or its input.
    """
    entry = MODELS[name]
    size = check_input_size(input_size, ndim) if input_size else entry.input_sizes[ndim]
    with torch.device("meta"):
        model = entry.build(ndim=ndim, **kwargs)
    print(f"{name}: {type(model).__name__}, input {list(size)}, batch {batch}")
    return summary(model, size, batch_size=batch)


def show_default() -> None:
    """Print the summary and the per-level shape table of the default model, built on ``meta`` (instant)."""
    entry = MODELS[DEFAULT_MODEL]
    with torch.device("meta"):
        model = entry.build()
    print(f"{DEFAULT_MODEL}: {type(model).__name__}, input {list(entry.input_size)}, batch {DEFAULT_BATCH}")
    summary(model, entry.input_size, batch_size=DEFAULT_BATCH)
    print(shape_table(model, torch.empty(DEFAULT_BATCH, *entry.input_size, device="meta")))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        The exit status: 0 on success, 2 on bad arguments.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "list":
        for name, entry in MODELS.items():
            print(f"{name:12s} {entry.descriptions[args.ndim]}  (input {list(entry.input_sizes[args.ndim])})")
        return 0
    if args.command is None:
        show_default()
        return 0
    try:
        run_summary(args.name, args.input, args.batch, ndim=args.ndim, **dict(args.set))
    except (ValueError, TypeError) as error:
        args.parser.error(str(error))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
