"""MkDocs hook: the tables, shapes and diagrams of the docs, computed from the code at build time.

A page asks for generated content with a directive alone on its line: an HTML comment holding a
call whose arguments are Python literals, e.g.

    <!-- gen summary("BlockBottleneck2d(16, 32, stride=(1, 2))", (16, 4, 255)) -->

``on_page_markdown`` replaces each directive with the Markdown (or raw HTML) returned by the
function of that name in ``DIRECTIVES``: one function per kind of directive. Model arguments are
Python expressions evaluated with ``torch``, ``nn``, ``blocks`` and every name of
``blocks.__all__`` in scope. Models are built on the ``meta`` device, so shapes and parameter
counts cost no memory and no arithmetic, except where a directive needs real weights
(``torchsummary``) or runs a user's script (``example``). A directive that is malformed, unknown
or fails stops the build with an error naming the page and the directive: nothing is skipped.

The SVG layout lives beside this file in ``drawing.py`` (MkDocs puts a hook's folder on the import
path while loading it). Neither file imports MkDocs, so tests import them with only the test tools.
"""

from __future__ import annotations

import ast
import contextlib
import html
import importlib.util
import inspect
import io
import json
import os
import re
import runpy
import shlex
import sys
import textwrap
import unittest.mock
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

import blocks
from blocks import layers
from drawing import Box, Diagram, Lane, Level, draw_block, draw_unet, figure, figures

DOCS = Path(__file__).resolve().parent
"""The docs folder (``examples/`` lives here)."""

DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)<!--[ \t]*gen[ \t]+(?P<call>.*?)[ \t]*-->[ \t]*$", re.MULTILINE)
"""A directive line: ``<!-- gen kind(arguments) -->``, possibly indented."""

LOOSE = re.compile(r"<!--\s*gen\b")
"""Anything that starts like a directive; each must be a well-formed directive line."""

DIRECTIVES: dict[str, Callable[..., str]] = {}
"""Directive kind -> function returning the generated Markdown."""


class DirectiveError(RuntimeError):
    """A directive that cannot be generated; the message names the page and the directive."""


# ------------------------------------------------------------------------------------ MkDocs events


def on_page_markdown(markdown: str, page: Any = None, **kwargs: Any) -> str:
    """MkDocs event: replace every directive of a page before the Markdown is converted."""
    where = page.file.src_uri if page is not None else "<markdown>"
    return render(markdown, where)


def render(markdown: str, where: str = "<markdown>") -> str:
    """Replace every directive in ``markdown``; raise ``DirectiveError`` on any bad one."""
    if len(LOOSE.findall(markdown)) != len(DIRECTIVE.findall(markdown)):
        raise DirectiveError(f"{where}: a '<!-- gen' directive is not alone on its line as '<!-- gen kind(...) -->'")

    def replace(match: re.Match[str]) -> str:
        try:
            text = run(match["call"])
        except Exception as error:
            raise DirectiveError(f"{where}: <!-- gen {match['call']} -->: {type(error).__name__}: {error}") from error
        return textwrap.indent(text, match["indent"], lambda line: True) if match["indent"] else text

    return DIRECTIVE.sub(replace, markdown)


def parse(call: str) -> tuple[Callable[..., str], list[Any], dict[str, Any]]:
    """Split a directive call such as ``params(["resnet18()"])`` into its function and literal arguments."""
    node = ast.parse(call, mode="eval").body
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise DirectiveError(f"expected kind(arguments), got {call!r}")
    if node.func.id not in DIRECTIVES:
        raise DirectiveError(f"unknown directive {node.func.id!r}; known: {sorted(DIRECTIVES)}")
    args = [ast.literal_eval(arg) for arg in node.args]
    kwargs = {keyword.arg: ast.literal_eval(keyword.value) for keyword in node.keywords}
    return DIRECTIVES[node.func.id], args, kwargs


def run(call: str) -> str:
    """Run one directive call and return its Markdown."""
    function, args, kwargs = parse(call)
    return function(*args, **kwargs)


def directive(function: Callable[..., str]) -> Callable[..., str]:
    """Register ``function`` as the directive of the same name."""
    DIRECTIVES[function.__name__] = function
    return function


# ----------------------------------------------------------------------------------------- helpers


def namespace() -> dict[str, Any]:
    """Names visible to model expressions: torch, nn, blocks and ``blocks.__all__``."""
    return {"torch": torch, "nn": nn, "blocks": blocks, **{name: getattr(blocks, name) for name in blocks.__all__}}


def build(expression: str, device: str = "meta") -> nn.Module:
    """Evaluate a model expression with its parameters created on ``device``."""
    with torch.device(device):
        model = eval(expression, namespace())  # noqa: S307 - the expressions are the docs' own
    if not isinstance(model, nn.Module):
        raise DirectiveError(f"{expression!r} gave a {type(model).__name__}, not an nn.Module")
    return model


def count(model: nn.Module) -> int:
    """Number of parameters of ``model`` (works on the meta device)."""
    return sum(p.numel() for p in model.parameters())


def shape_text(shape: Sequence[int]) -> str:
    """A shape as the summaries print it: ``[4, 1024, 32, 32]``."""
    return str(list(shape))


def code(text: str) -> str:
    """Inline code (a pipe inside it does not split a table cell)."""
    return f"`{text}`"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> str:
    """A Markdown table; ``align`` has one letter per column, ``l`` or ``r`` (default left)."""
    align = align or "l" * len(header)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = [header, rule, *[[str(cell).replace("\n", " ") for cell in row] for row in rows]]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def fence(text: str, language: str = "text", title: str | None = None) -> str:
    """A fenced code block, with an optional title bar."""
    head = f'```{language} title="{title.replace(chr(34), chr(39))}"' if title else f"```{language}"
    return f"{head}\n{text.rstrip()}\n```"


def printed(function: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """Call ``function`` and return what it printed."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        function(*args, **kwargs)
    return buffer.getvalue()


def markdown_of_rst(text: str) -> str:
    """Turn a docstring's ``literal`` and :role:`name` markup into Markdown code."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def docstring_args(doc: str) -> dict[str, str]:
    """The ``Args:`` section of a Google-style docstring: parameter name -> description."""
    described: dict[str, str] = {}
    lines = doc.splitlines()
    if "Args:" not in lines:
        return described
    name = None
    for line in lines[lines.index("Args:") + 1 :]:
        if line and not line.startswith(" "):
            break  # the next section
        match = re.match(r"^ {4}\**(\w+)(?: \([^)]*\))?: (.*)$", line)
        if match:
            name = match[1]
            described[name] = match[2]
        elif name and line.strip():
            described[name] += " " + line.strip()
    return {key: markdown_of_rst(value) for key, value in described.items()}


def meta_forward(model: nn.Module, input_size: Sequence[int], hooked: Sequence[nn.Module]) -> tuple[Any, dict]:
    """Run ``model`` on a meta input of ``input_size``; return its output and each hooked module's output."""
    outputs: dict[int, Any] = {}
    handles = [
        module.register_forward_hook(lambda m, args, out: outputs.setdefault(id(m), out)) for module in hooked
    ]
    try:
        with torch.no_grad():
            result = model(torch.empty(tuple(input_size), device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    return result, outputs


# -------------------------------------------------------------------------------------- directives


@directive
def summary(model: str, input_size: Sequence[int], batch_size: int = -1) -> str:
    """The ``blocks.summary`` table of ``model`` for one input of ``input_size`` (C, *spatial)."""
    batch = "" if batch_size == -1 else f", batch_size={batch_size}"
    text = printed(blocks.summary, build(model), tuple(input_size), batch_size=batch_size)
    return fence(text, title=f"blocks.summary({model}, {tuple(input_size)}{batch})")


@directive
def torchsummary(model: str, input_size: Sequence[int]) -> str:
    """The table of stock ``torchsummary.summary`` for ``model`` (a real CPU model: keep it small)."""
    import torchsummary as stock

    torch.manual_seed(0)
    text = printed(stock.summary, build(model, "cpu"), tuple(input_size), device="cpu")
    return fence(text, title=f"torchsummary.summary({model}, {tuple(input_size)}, device='cpu')")


@directive
def registry(kind: str) -> str:
    """The table of the registered normalizers or activators (``kind``), with the layer each builds."""
    names, notes, make = {
        "normalizer": (layers.NORMALIZERS, layers.NORMALIZER_DOCS, layers.make_normalizer),
        "activator": (layers.ACTIVATORS, layers.ACTIVATOR_DOCS, layers.make_activator),
    }[kind]
    missing = sorted(set(names) - set(notes))
    if missing:
        raise DirectiveError(f"registered {kind}s without a line in blocks.layers' docs table: {missing}")
    rows = []
    for name in names:
        built = [make(name, 16, ndim) for ndim in (1, 2, 3)]
        classes = list(dict.fromkeys(type(layer).__name__ for layer in built if layer is not None))
        layer = built[1]  # 2-D; the parameters do not depend on the dimension
        rows.append([code(repr(name)), notes[name], " / ".join(map(code, classes)) or "none",
                     f"{count(layer):,}" if layer is not None else "0"])
    return table([f"{kind}=", "builds", "class (1-D / 2-D / 3-D)", "parameters at 16 channels"], rows, "lllr")


@directive
def arguments(name: str) -> str:
    """The table of the constructor arguments of ``blocks.<name>``: type, default and description.

    A thin per-dimension class (``BlockPlain3d``) is described by its generic class's docstring.
    """
    obj = namespace()[name]
    documented = next((cls for cls in getattr(obj, "__mro__", (obj,)) if "Args:" in (cls.__doc__ or "")), obj)
    described = docstring_args(inspect.getdoc(documented) or "")
    rows = []
    for parameter in inspect.signature(obj).parameters.values():
        if parameter.name not in described:
            raise DirectiveError(f"{name}'s docstring does not describe its argument {parameter.name!r}")
        annotation = parameter.annotation
        kind = " *(keyword-only)*" if parameter.kind is parameter.KEYWORD_ONLY else ""
        rows.append([
            code(parameter.name) + kind,
            code(annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)),
            "required" if parameter.default is parameter.empty else code(repr(parameter.default)),
            described[parameter.name],
        ])
    return table(["argument", "type", "default", "meaning"], rows)


@directive
def chain(models: Sequence[str], input_size: Sequence[int]) -> str:
    """The output shape after each model of ``models`` applied in turn to an input of ``input_size``."""
    x = torch.empty(tuple(input_size), device="meta")
    rows = [["input", "", code(shape_text(x.shape))]]
    for step, expression in enumerate(models, 1):
        with torch.no_grad():
            x = build(expression)(x)
        rows.append([str(step), code(expression), code(shape_text(x.shape))])
    return table(["step", "module", "output shape"], rows)


@directive
def sizes(kernel: int, stride: int, padding: int, heights: Sequence[int]) -> str:
    """Down-scaled sizes by the formula and by ``nn.Conv2d``, and what up-scaling by ``stride`` gives back."""
    conv = nn.Conv2d(1, 1, kernel, stride, padding, device="meta")
    rows = []
    for height in heights:
        formula = (height + 2 * padding - kernel) // stride + 1
        measured = conv(torch.empty(1, 1, height, 1, device="meta")).shape[2]
        if formula != measured:
            raise DirectiveError(f"the formula gives {formula} for {height} but nn.Conv2d gives {measured}")
        back = "yes" if formula * stride == height else "no: explicit `output_size` needed"
        rows.append([height, formula, measured, formula * stride, back])
    head = [
        "in",
        f"⌊(in + 2·{padding} − {kernel}) / {stride}⌋ + 1",
        "`nn.Conv2d` gives",
        f"up-scaled ×{stride}",
        "round trip by the factor alone?",
    ]
    return table(head, rows, "rrrrl")


@directive
def params(models: Sequence[str]) -> str:
    """The parameter count of each model expression (built on the meta device)."""
    return table(["model", "parameters"], [[code(m), f"{count(build(m)):,}"] for m in models], "lr")


@directive
def presets(variants: dict[str, str]) -> str:
    """The ResNet presets of ``blocks.resnet.ARCHS``, one parameter-count column per variant.

    ``variants`` maps a column title to the keyword arguments of that variant (``""`` for the defaults).
    """
    from blocks.resnet import ARCHS

    rows = []
    for name, (depths, block) in ARCHS.items():
        counts = [f"{count(build(f'{name}({kwargs})')):,}" for kwargs in variants.values()]
        rows.append([code(f"{name}()"), code(str(tuple(depths))), code(repr(block)), *counts])
    head = ["preset", "blocks per stage", "block", *variants]
    return table(head, rows, "lll" + "r" * len(variants))


@directive
def unet(model: str, input_size: Sequence[int]) -> str:
    """The shapes through a U-Net: stem, each encoder level, each decoder stage, the output."""
    net = build(model)
    levels = unet_levels(net, input_size)
    rows = [["input", "", "", code(shape_text(input_size))]]
    rows += [[code(lv.name), lv.what, f"{lv.params:,}", code(shape_text(lv.shape))] for lv in levels]
    return table(["stage", "what", "parameters", "output shape"], rows, "llrl")


@directive
def features(model: str, input_size: Sequence[int]) -> str:
    """``forward_intermediates`` shapes of ``model`` beside its ``feature_info`` (they must agree)."""
    net = build(model)
    with torch.no_grad():
        maps = net.forward_intermediates(torch.empty(tuple(input_size), device="meta"), intermediates_only=True)
    info = list(net.feature_info)
    if len(info) != len(maps):
        raise DirectiveError(f"feature_info has {len(info)} entries but forward_intermediates gave {len(maps)} maps")
    rows = []
    for index, (entry, tensor) in enumerate(zip(info, maps)):
        channels, reduction = entry["num_chs"], entry["reduction"]
        if tensor.shape[1] != channels or [-(-n // reduction) for n in input_size[2:]] != list(tensor.shape[2:]):
            raise DirectiveError(f"feature {index}: feature_info says {entry} but the map is {list(tensor.shape)}")
        rows.append([index, code(str(entry.get("module", ""))), channels, reduction, code(shape_text(tensor.shape))])
    return table(["feature", "module", "channels", "reduction", "shape"], rows, "rlrrl")


@directive
def cli(argv: str, status: int = 0) -> str:
    """What ``python -m blocks <argv>`` prints, run in-process (help text wrapped at 72 columns).

    ``status`` is the exit status it must end with: 2 shows a usage error (what it printed to stderr).
    """
    from blocks.__main__ import main

    buffer = io.StringIO()
    code = 0
    with (unittest.mock.patch.dict(os.environ, {"COLUMNS": "72"}), contextlib.redirect_stdout(buffer),
          contextlib.redirect_stderr(buffer)):
        try:
            main(shlex.split(argv))
        except SystemExit as done:  # argparse exits after --help, and on bad arguments
            code = done.code or 0
    if code != status:
        raise DirectiveError(f"python -m blocks {argv} exited with status {code}, expected {status}")
    return fence(f"$ python -m blocks {argv}".rstrip() + "\n" + buffer.getvalue(), "console")


@directive
def readme_command(index: int) -> str:
    """The ``index``-th ``bash`` block of the README (0: the main job, 1: the tests), verbatim."""
    commands = re.findall(r"```bash\n(.+?)\n```", (DOCS.parent / "README.md").read_text(), re.DOTALL)
    return fence(commands[index], "bash")


@directive
def include(path: str) -> str:
    """The Markdown file ``path`` of the repository (e.g. ``CHANGELOG.md``), verbatim: its own title is the page's."""
    root = DOCS.parent.resolve()
    source = (root / path).resolve()
    if root not in source.parents or source.suffix != ".md":
        raise DirectiveError(f"include() takes a Markdown file of the repository, got {path!r}")
    return source.read_text(encoding="utf-8")


@directive
def benchmarks(path: str = "benchmarks/results.json") -> str:
    """The latest benchmark results (written by ``benchmarks/run.py``), as its own Markdown table."""
    spec = importlib.util.spec_from_file_location("benchmarks_run", DOCS.parent / "benchmarks" / "run.py")
    runner = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # dataclasses look it up there
    spec.loader.exec_module(runner)
    return runner.table(json.loads((DOCS.parent / path).read_text()))


@directive
def example(name: str) -> str:
    """The script ``docs/examples/<name>`` and what it prints, run as ``__main__`` in this process.

    Names the script registers are removed afterwards, so no page sees another page's example.
    """
    path = DOCS / "examples" / name
    registries = [layers.NORMALIZERS, layers.ACTIVATORS]
    saved = [dict(registry) for registry in registries]
    try:
        torch.manual_seed(0)
        output = printed(runpy.run_path, str(path), run_name="__main__")
    finally:
        for registry, entries in zip(registries, saved):
            registry.clear()
            registry.update(entries)
    source = fence(path.read_text().rstrip(), "python", title=name)
    return f"{source}\n\nIt prints:\n\n{fence(output, title='output')}"


MODULE_ORDER = [
    "blocks.layers", "blocks.conv", "blocks.residual", "blocks.resnet", "blocks.unet", "blocks.networks",
    "blocks.presets", "blocks.registry", "blocks.hub", "blocks.inflate", "blocks.summary",
]
"""Order of the modules on the API page (a new module must be added here: the build says so)."""


def preset_table(names: Sequence[str]) -> str:
    """The presets as a table: name, network, blocks per level, block type, default widths, signature."""
    from blocks.presets import PRESETS

    rows = []
    for name in names:
        network, layers, block = PRESETS[name]
        call = f"{name}(out_size, ndim=2, **kwargs)" if network.__name__ == "DecoderNet" else f"{name}(ndim=2, **kwargs)"
        widths = ", ".join(str(64 * 2**i) for i in range(len(layers)))
        rows.append([code(call), f"`{network.__name__}{{ndim}}d`", code(str(list(layers))), block, widths])
    return table(["preset", "builds", "blocks per level", "block", "channels (default)"], rows)


@directive
def api() -> str:
    """One mkdocstrings entry per name of ``blocks.__all__``, grouped by the module defining it."""
    modules: dict[str, list[str]] = {}
    for name in blocks.__all__:
        modules.setdefault(getattr(getattr(blocks, name), "__module__", "blocks"), []).append(name)
    unknown = sorted(set(modules) - set(MODULE_ORDER))
    if unknown:
        raise DirectiveError(f"modules {unknown} define public names; add them to MODULE_ORDER in docs/hooks.py")
    parts = []
    for module, names in sorted(modules.items(), key=lambda item: MODULE_ORDER.index(item[0])):
        about = (sys.modules[module].__doc__ or "").strip().split("\n\n")[0]
        parts.append(f"## `{module}`\n\n{markdown_of_rst(' '.join(about.split()))}")
        if module == "blocks.presets":  # builder functions made from one table: the table documents them
            parts.append(preset_table(names))
        else:
            parts += [f"::: {module}.{name}" for name in names]
    return "\n\n".join(parts)


@directive
def diagram(models: Sequence[str], input_size: Sequence[int]) -> str:
    """SVG diagrams of units or blocks, drawn from the modules: every layer, the shortcut, the shapes."""
    return figures([
        figure(draw_block(describe(build(model), input_size)), caption(model, input_size)) for model in models
    ])


@directive
def unet_diagram(model: str, input_size: Sequence[int]) -> str:
    """An SVG of a U-Net's levels: encoder down the left, decoder up the right, skips across."""
    svg = draw_unet(unet_levels(build(model), input_size), input_size)
    return figures([figure(svg, caption(model, input_size))])


def caption(model: str, input_size: Sequence[int]) -> str:
    """The HTML caption of a diagram: the model expression and the input size."""
    return f"<code>{html.escape(model)}</code> on a {'×'.join(map(str, input_size))} input"


# -------------------------------------------------------------------- reading modules for diagrams


def pair_text(value: float | Sequence[float]) -> str:
    """One value per dimension as a diagram prints it: ``2`` for 2, (2, 2) or (2, 2, 2), else ``(1, 2)``.

    Floats that are whole print as ints; a single number stands for every dimension.
    """
    values = [int(v) if float(v).is_integer() else v for v in (value if isinstance(value, Sequence) else [value])]
    return str(values[0]) if len(set(values)) == 1 else f"({', '.join(map(str, values))})"


CONVS = nn.modules.conv._ConvNd
"""Every convolution, in any dimension (``nn.Conv1d``, ``nn.Conv2d``, ``nn.Conv3d``)."""

NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
"""Every normalization, in any dimension (batch and instance norms share ``_NormBase``)."""


def kind_of(layer: nn.Module) -> str:
    """The colour class of a layer, in any dimension."""
    if isinstance(layer, CONVS):
        return "conv"
    if isinstance(layer, nn.Upsample):
        return "up"
    if isinstance(layer, NORMS):
        return "norm"
    if type(layer).__module__ == "torch.nn.modules.activation":
        return "act"
    return "other"


def layer_box(layer: nn.Module, outputs: dict[int, Any]) -> Box:
    """The box of one leaf layer: what it is, its output shape (per sample) and its parameters."""
    if isinstance(layer, CONVS):
        sizes = layer.kernel_size
        kernel = f"{sizes[0]}-wide" if len(sizes) == 1 else "×".join(map(str, sizes))
        label = f"{type(layer).__name__} {kernel}, {layer.in_channels}→{layer.out_channels}"
        label += f", stride {pair_text(layer.stride)}" if any(s != 1 for s in layer.stride) else ""
        label += ", bias" if layer.bias is not None else ""
    elif isinstance(layer, nn.Upsample):
        size = layer.size
        if size:
            label = f"Upsample to {tuple(size) if isinstance(size, Sequence) else (size,)}"
        else:
            label = f"Upsample ×{pair_text(layer.scale_factor)}"
    else:
        label = type(layer).__name__
    shape = "×".join(map(str, outputs[id(layer)].shape[1:]))
    parameters = count(layer)
    detail = f"out {shape}" + (f" · {parameters:,} params" if parameters else "")
    return Box(label, detail, kind_of(layer))


def describe(model: nn.Module, input_size: Sequence[int]) -> Diagram:
    """Read a unit (``ConvModern2d``, any dimension) or a residual block (``branch``, ``shortcut``, ``activation``)."""
    leaves = [m for m in model.modules() if not list(m.children())]
    result, outputs = meta_forward(model, (1, *input_size), leaves)

    def unit_group(unit: nn.Module, title: str) -> tuple[str, list[Box]]:
        return title, [layer_box(layer, outputs) for layer in unit.children()]

    def unit_title(unit: nn.Module) -> str:
        return f"{type(unit).__name__} {unit.in_planes}→{unit.out_planes}"

    if hasattr(model, "branch"):
        units = list(model.branch.children())
        branch = Lane([unit_group(u, f"unit {i}: {u.in_planes}→{u.out_planes}") for i, u in enumerate(units, 1)])
        shortcut = Lane([] if model.shortcut is None else [unit_group(model.shortcut, "shortcut: projection")])
        after = [] if model.activation is None else [layer_box(model.activation, outputs)]
    else:
        branch, shortcut, after = Lane([unit_group(model, unit_title(model))]), None, []
    return Diagram(list(input_size), list(result.shape[1:]), branch, shortcut, after)


def stage_text(stage: nn.Module) -> str:
    """A few words on a U-Net stage: its blocks, or its layers."""
    if hasattr(stage, "up") and hasattr(stage, "blocks"):  # a decoder stage
        up = "up-scale, concat skip" if getattr(stage, "skip_planes", 0) else "up-scale to the input size"
        return f"{up}, {len(stage.blocks)} blocks" if len(stage.blocks) else up
    children = list(stage.children()) if isinstance(stage, nn.Sequential) else []
    if children and all(type(c) is type(children[0]) for c in children) and hasattr(children[0], "branch"):
        return f"{len(children)} × {type(children[0]).__name__}"
    if children:
        return " → ".join(type(c).__name__ for c in children)
    return type(stage).__name__


def unet_levels(net: nn.Module, input_size: Sequence[int]) -> list[Level]:
    """Run a U-Net on the meta device; return its stem, encoder levels, decoder stages and head, in order."""
    stages: list[tuple[str, nn.Module, str]] = []
    if net.stem is not None:
        stages.append(("stem", net.stem, "stem"))
    if isinstance(net.encoder, nn.ModuleList):
        stages += [(f"encoder[{i}]", stage, "encoder") for i, stage in enumerate(net.encoder)]
    else:  # a backbone: its features are the outputs of the modules named in feature_info
        stages += [(f"encoder.{f['module']}", net.encoder.get_submodule(f["module"]), "encoder")
                   for f in net.encoder.feature_info]
    stages += [(f"decoder[{i}]", stage, "decoder") for i, stage in enumerate(net.decoder)]
    stages.append(("head", net.head, "head"))
    result, outputs = meta_forward(net, input_size, [stage for _, stage, _ in stages])
    levels = [Level(name, stage_text(stage), count(stage), list(outputs[id(stage)].shape), part)
              for name, stage, part in stages]
    if list(result.shape) != levels[-1].shape:
        raise DirectiveError(f"the head gave {levels[-1].shape} but the U-Net returned {list(result.shape)}")
    return levels
