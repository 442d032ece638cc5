"""The command line: ``python -m blocks`` (or ``blocks``) prints summaries of the models here.

The models are the command line's own demos (`DEMOS`: ``conv``, ``plain``, ``bottleneck`` and
``unet``, the default) and every name of the registry (`blocks.list_models`); a demo name comes
first. ``--ndim`` picks the dimension (2 by default) of the names that take one, and ``--input``
then takes the channels and one size per dimension.

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
import difflib
from collections.abc import Sequence
from typing import Any

import torch

from .checks import NDIMS, SPATIAL, named_class
from .conv import ConvModern
from .registry import ModelEntry, list_models, model_entry
from .residual import BlockBottleneck, BlockPlain
from .summary import shape_table, summary
from .unet import UNet

__all__ = ["DEMOS", "main", "parse_value", "run_summary"]


_BLOCK_INPUTS = {1: (16, 1024), 2: (16, 64, 64), 3: (16, 16, 16, 16)}
"""The default input of the unit and the plain block per dimension (channels, then sizes)."""

DEMOS: dict[str, ModelEntry] = {
    "conv": ModelEntry(
        "conv", lambda ndim, **kw: named_class(ConvModern, ndim)(**kw), _BLOCK_INPUTS,
        lambda ndim: {"in_planes": 16, "out_planes": 32}, "ConvModern{ndim}d(16, 32)",
    ),
    "plain": ModelEntry(
        "plain", lambda ndim, **kw: named_class(BlockPlain, ndim)(**kw), _BLOCK_INPUTS,
        lambda ndim: {"in_planes": 16, "out_planes": 32, "stride": 2}, "BlockPlain{ndim}d(16, 32, stride=2)",
    ),
    "bottleneck": ModelEntry(
        "bottleneck", lambda ndim, **kw: named_class(BlockBottleneck, ndim)(**kw),
        {1: (16, 255), 2: (16, 4, 255), 3: (16, 4, 4, 255)},
        lambda ndim: {"in_planes": 16, "out_planes": 32, "stride": {1: 2, 2: (1, 2), 3: (1, 1, 2)}[ndim]},
        {1: "BlockBottleneck1d(16, 32, stride=2)",
         2: "BlockBottleneck2d(16, 32, stride=(1, 2)), the example of MDNC's docs",
         3: "BlockBottleneck3d(16, 32, stride=(1, 1, 2))"},
    ),
    "unet": ModelEntry(
        "unet", lambda ndim, **kw: named_class(UNet, ndim)(**kw), {1: (1, 4096), 2: (1, 512, 512), 3: (1, 64, 64, 64)},
        lambda ndim: {"in_planes": 1, "out_planes": 2},
        {ndim: f"UNet{ndim}d(in_planes=1, out_planes=2): {what} to a 2-class map"
         for ndim, what in ((1, "1-channel signals"), (2, "grey images"), (3, "grey volumes"))},
    ),
}
"""The command line's demos, in every dimension: a unit, the two blocks and the U-Net of its examples.

They are examples of the command line, not models to create by name, so they are not in the
registry (``blocks.create_model("unet")`` is refused and suggests ``unet2d``). Each is a
`blocks.registry.ModelEntry` (builder, default keywords and input per dimension), so
``summary NAME`` treats a demo and a registered name alike.
"""

DEFAULT_MODEL = "unet"
"""The demo that ``python -m blocks`` with no arguments summarizes (in 2-D)."""

DEFAULT_BATCH = 4
"""The batch size of that summary."""


def parse_value(text: str) -> Any:
    """Parse a ``--set`` value: a Python literal (``1``, ``(1, 2)``, ``None``) or else a plain string.

    Examples:
        >>> parse_value("(1, 2)"), parse_value("batch")
        ((1, 2), 'batch')
    """
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
    show.add_argument("name", help="model name (see `list`)")
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
        hint = ""
        if len(input_size) == 2 + ndim:
            volume = f"; for {SPATIAL[ndim + 1].count(',') + 1} sizes, --ndim {ndim + 1}" if ndim < 3 else ""
            hint = f" (if {input_size[0]} is the batch, pass it as --batch {input_size[0]}{volume})"
        raise ValueError(
            f"--input takes {1 + ndim} ints with --ndim {ndim} ({names}), got {len(input_size)}: {given}{hint}"
        )
    if any(size < 1 for size in input_size):
        raise ValueError(f"--input sizes must be positive, got {' '.join(map(str, input_size))}")
    return tuple(input_size)


def model_of(name: str) -> ModelEntry:
    """The demo ``name`` (`DEMOS`), else the registry's entry of ``name``.

    Raises:
        ValueError: For a name that is neither, with the closest registered names (and demos).
    """
    if name in DEMOS:
        return DEMOS[name]
    try:
        return model_entry(name)
    except ValueError as error:
        close = difflib.get_close_matches(name, list(DEMOS), n=3, cutoff=0.5)
        if not close:
            raise
        raise ValueError(f"{error}; demos of the command line close to it: {', '.join(map(repr, close))}") from None


def run_summary(
    name: str, input_size: Sequence[int] | None = None, batch: int = -1, *, ndim: int = 2, **kwargs: Any
) -> str:
    """Build the model ``name`` in ``ndim`` dimensions with ``kwargs`` and return (and print) its summary table.

    The model is built on the ``meta`` device: the table needs only its shapes and parameter counts.

    Args:
        name: A demo (`DEMOS`) or a name of `blocks.list_models`.
        input_size: (C, *spatial) with one size per dimension; defaults to the model's own.
        batch: Batch size shown in the table.
        ndim: Spatial dimensions, 1, 2 or 3.
        **kwargs: Keyword arguments for the model.

    Returns:
        The summary table.

    Raises:
        ValueError: If ``name`` is neither a demo nor a registered name, ``input_size`` does not
            have ``1 + ndim`` positive ints, or the model refuses its arguments or its input.
    """
    entry = model_of(name)
    size = check_input_size(input_size, ndim) if input_size else entry.input_size(ndim)
    with torch.device("meta"):
        model = entry.create(ndim=ndim, **kwargs)
    print(f"{name}: {type(model).__name__}, input {list(size)}, batch {batch}")
    return summary(model, size, batch_size=batch)


def show_default() -> None:
    """Print the summary and the per-level shape table of the default model, built on ``meta`` (instant)."""
    entry = DEMOS[DEFAULT_MODEL]
    size = entry.input_size(2)
    with torch.device("meta"):
        model = entry.create()
    print(f"{DEFAULT_MODEL}: {type(model).__name__}, input {list(size)}, batch {DEFAULT_BATCH}")
    summary(model, size, batch_size=DEFAULT_BATCH)
    print(shape_table(model, torch.empty(DEFAULT_BATCH, *size, device="meta")))


def _print_entry(entry: ModelEntry, ndim: int) -> None:
    """One line of ``list``: the name, the description and the default input in ``ndim`` dimensions."""
    print(f"{entry.name:12s} {entry.describe(ndim)}  (input {list(entry.input_size(ndim))})")


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
        print("Demos of the command line:")
        for entry in DEMOS.values():
            _print_entry(entry, args.ndim)
        print("\nRegistered models (blocks.create_model):")
        for name in list_models():
            entry = model_entry(name)
            if args.ndim in entry.ndims:
                _print_entry(entry, args.ndim)
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
