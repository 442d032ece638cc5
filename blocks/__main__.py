"""The command line: ``python -m blocks`` (or ``blocks``) prints summaries of the models here.

Examples::

    python -m blocks                      # the built-in default
    python -m blocks list
    python -m blocks summary bottleneck --input 16 4 255 --batch 4 --set normalizer=batch
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .conv import ConvModern2d
from .residual import BlockBottleneck2d, BlockPlain2d
from .resnet import ARCHS, resnet18, resnet34, resnet50, resnet101, resnet152
from .summary import summary
from .unet import UNet2d, shape_table

__all__ = ["MODELS", "ModelEntry", "main", "parse_value"]


@dataclass(frozen=True)
class ModelEntry:
    """A model the command line can build.

    Attributes:
        build: Called with the ``--set`` keyword arguments; returns the model.
        input_size: Default (C, H, W) of one input.
        description: One line for ``python -m blocks list``.
    """

    build: Callable[..., nn.Module]
    input_size: tuple[int, int, int]
    description: str


MODELS: dict[str, ModelEntry] = {
    "conv": ModelEntry(
        lambda **kw: ConvModern2d(**{"in_planes": 16, "out_planes": 32, **kw}),
        (16, 64, 64),
        "ConvModern2d(16, 32)",
    ),
    "plain": ModelEntry(
        lambda **kw: BlockPlain2d(**{"in_planes": 16, "out_planes": 32, "stride": 2, **kw}),
        (16, 64, 64),
        "BlockPlain2d(16, 32, stride=2)",
    ),
    "bottleneck": ModelEntry(
        lambda **kw: BlockBottleneck2d(**{"in_planes": 16, "out_planes": 32, "stride": (1, 2), **kw}),
        (16, 4, 255),
        "BlockBottleneck2d(16, 32, stride=(1, 2)), the example of MDNC's docs",
    ),
    "unet": ModelEntry(
        lambda **kw: UNet2d(**{"in_planes": 1, "out_planes": 2, **kw}),
        (1, 512, 512),
        "UNet2d(in_planes=1, out_planes=2): grey images to a 2-class map",
    ),
    **{
        build.__name__: ModelEntry(
            build, (3, 224, 224), f"ResNet{tuple(ARCHS[build.__name__][0])}, {ARCHS[build.__name__][1]} blocks"
        )
        for build in (resnet18, resnet34, resnet50, resnet101, resnet152)
    },
}
"""Models by command-line name; ``--set key=value`` overrides their keyword arguments."""

DEFAULT_MODEL = "unet"
"""What ``python -m blocks`` with no arguments summarizes."""

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
    return key, parse_value(value)


def _parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m blocks``."""
    parser = argparse.ArgumentParser(prog="blocks", description="Summaries of the blocks and backbones of `blocks`.")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("list", help="list the model names")
    show = commands.add_parser("summary", help="print the summary table of a model")
    show.add_argument("name", choices=sorted(MODELS), help="model name (see `list`)")
    show.add_argument("--input", nargs=3, type=int, metavar=("C", "H", "W"), help="input size (default: per model)")
    show.add_argument("--batch", type=int, default=-1, help="batch size shown in the table (default: -1)")
    show.add_argument("--set", type=_parse_set, action="append", default=[], metavar="KEY=VALUE",
                      help="keyword argument for the model, e.g. --set normalizer=batch (repeatable)")
    return parser


def run_summary(name: str, input_size: Sequence[int] | None = None, batch: int = -1, **kwargs: Any) -> str:
    """Build the model ``name`` with ``kwargs`` and return (and print) its summary table.

    Args:
        name: A key of `MODELS`.
        input_size: (C, H, W); defaults to the model's own.
        batch: Batch size shown in the table.
        **kwargs: Keyword arguments for the model.

    Returns:
        The summary table.
    """
    entry = MODELS[name]
    model = entry.build(**kwargs)
    size = tuple(input_size) if input_size else entry.input_size
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
            print(f"{name:12s} {entry.description}  (input {list(entry.input_size)})")
        return 0
    if args.command is None:
        show_default()
        return 0
    try:
        run_summary(args.name, args.input, args.batch, **dict(args.set))
    except (ValueError, TypeError) as error:
        parser.error(str(error))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
