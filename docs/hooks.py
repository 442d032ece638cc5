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
from collections.abc import Callable, Iterator, Sequence
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


def on_config(config: Any, **kwargs: Any) -> Any:
    """Show the package's version in every page's footer (``blocks.__version__``, one source)."""
    config["copyright"] = f"blocks {blocks.__version__} · MIT licence"
    return config


CODE_LINE = re.compile(r'(<span id="__span-[\d-]+")>((?:<a [^>]*></a>)?)((?:<span class="w">)?)( +)')
"""The start of a code line with its leading spaces (pymdownx.highlight's ``line_spans``; Pygments may put the
spaces in a whitespace token)."""


def on_page_content(html: str, **kwargs: Any) -> str:
    """Give each indented code line its indent as ``--indent``, so that a wrapped line goes on under its own
    start rather than at the left margin (docs/stylesheets/blocks.css)."""
    return CODE_LINE.sub(lambda m: f'{m[1]} style="--indent: {len(m[4])}ch">{m[2]}{m[3]}{m[4]}', html)


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


OUTSIDE = re.compile(r"\b(timm|torchvision|create_feature_extractor)\b")
"""Names of outside libraries an expression may use; they are imported only when it does."""


def outside_namespace() -> dict[str, Any]:
    """``timm``, ``torchvision`` and torchvision's ``create_feature_extractor`` (imported on first use)."""
    import timm
    import torchvision
    from torchvision.models.feature_extraction import create_feature_extractor

    return {"timm": timm, "torchvision": torchvision, "create_feature_extractor": create_feature_extractor}


def evaluate(expression: str, device: str = "meta", **names: Any) -> Any:
    """Evaluate an expression of the docs with tensors created on ``device`` and ``names`` in scope.

    The scope is `namespace`, plus `outside_namespace` when the expression names timm or torchvision.
    """
    scope = namespace()
    if OUTSIDE.search(expression):
        scope.update(outside_namespace())
    with torch.device(device):
        return eval(expression, {**scope, **names})  # noqa: S307 - the expressions are the docs' own


def build(expression: str, device: str = "meta") -> nn.Module:
    """Evaluate a model expression with its parameters created on ``device``."""
    model = evaluate(expression, device)
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


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the enclosed real (CPU) computations on one intra-op thread, then restore the count.

    The docs compute for real only on small models, where threads bring no speed; on a busy
    machine they cost a lot (a build took twice as long with two threads on two shared cores).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


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
    with one_thread():
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
    return f'<div class="gen-args" markdown>\n\n{table(["argument", "type", "default", "meaning"], rows)}\n\n</div>'


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
def params(models: Sequence[str], labels: Sequence[str] | None = None) -> str:
    """The parameter count of each model expression (built on the meta device), named by its expression or label."""
    names = [code(m) for m in models] if labels is None else list(labels)
    return table(["model", "parameters"], [[name, f"{count(build(m)):,}"] for name, m in zip(names, models)], "lr")


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
def levels(model: str, input_size: Sequence[int]) -> str:
    """The levels of a network of the U-Net family: stride, kernel size, reduction, channels and size of each.

    Sizes are those of the encoder's maps for ``input_size`` on the meta device; they must follow
    the ceil rule from the strides (checked here, so the page cannot show a wrong plan).
    """
    net = build(model)
    with torch.no_grad():
        maps = net.encode(torch.empty(tuple(input_size), device="meta"))
    rows, size = [], list(input_size[2:])
    reductions = blocks.levels.reductions_of(net.strides)
    for i, (stride, kernel, reduction, tensor) in enumerate(zip(net.strides, net.kernel_sizes, reductions, maps)):
        size = [-(-n // s) for n, s in zip(size, stride)]
        if list(tensor.shape[2:]) != size:
            raise DirectiveError(f"level {i}: the ceil rule gives {size} but the map is {list(tensor.shape)}")
        rows.append([i, code(str(tuple(stride))), code(str(tuple(kernel))), code(str(tuple(reduction))),
                     tensor.shape[1], code(" × ".join(map(str, size)))])
    return table(["level", "stride", "kernel", "reduction", "channels", "size"], rows, "rlllrl")


@directive
def options(names: Sequence[str], classes: Sequence[str]) -> str:
    """Which class takes which keyword (from the constructors' signatures): one row per option."""
    rows = []
    for name in names:
        row = [code(name)]
        for cls in classes:
            row.append("yes" if name in inspect.signature(getattr(blocks, cls)).parameters else "")
        rows.append(row)
    return table(["option", *(code(c) for c in classes)], rows, "l" + "l" * len(classes))


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
        per_dim = entry.get("reductions", (reduction,) * (len(input_size) - 2))
        if tensor.shape[1] != channels or [-(-n // r) for n, r in zip(input_size[2:], per_dim)] != list(tensor.shape[2:]):
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
def nnunet_benchmark(path: str = "benchmarks/nnunet.json") -> str:
    """The side-by-side of nnU-Net's ResEnc U-Net and blocks' twins (written by ``benchmarks/nnunet.py``)."""
    spec = importlib.util.spec_from_file_location("benchmarks_nnunet", DOCS.parent / "benchmarks" / "nnunet.py")
    script = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script.table(json.loads((DOCS.parent / path).read_text()))


@directive
def decoder_widths(path: str = "benchmarks/results.json") -> str:
    """What ``decoder_channels`` does on ResNet-50, from the ``decoder_widths`` entry that ``benchmarks/run.py
    --decoder-widths`` writes: parameters, FLOPs and times, never measured here."""
    entry = json.loads((DOCS.parent / path).read_text())["decoder_widths"]
    rows = [
        [code(", ".join(f"{k}={tuple(v) if isinstance(v, list) else repr(v)}" for k, v in row["arguments"].items())
              or "(default)"),
         f"{row['params'] / 1e6:.1f} M", f"{row['decoder_params'] / 1e6:.1f} M", f"{row['forward_gflops']:.1f}",
         f"{row['forward_ms']:.0f}", f"{row['train_step_ms']:.0f}"]
        for row in entry["rows"]
    ]
    size = "×".join(map(str, entry["input"]))
    header = ["decoder", "params", "decoder + head", "GFLOPs", "forward (ms)", "train step (ms)"]
    return (f"{table(header, rows, 'lrrrrr')}\n\n`{entry['model']}` on a {size} input, measured by "
            f"`python benchmarks/run.py --decoder-widths` on {entry['date']} (CPU, {entry['threads']} threads, "
            f"{'best' if entry.get('statistic') == 'min' else 'median'} of {entry['repeats']}; torch {entry['torch']}).\n")


@directive
def quickstart(steps: int = 120) -> str:
    """Run ``examples/quickstart.py`` (its ``main``) and show its figures and pictures, embedded as PNG data."""
    import base64
    import tempfile

    spec = importlib.util.spec_from_file_location("quickstart", DOCS.parent / "examples" / "quickstart.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with tempfile.TemporaryDirectory() as folder:
        figures = script.main(steps=steps, out_dir=Path(folder))
        pictures = {name: base64.b64encode((Path(folder) / name).read_bytes()).decode() for name in
                    ("loss.png", "predictions.png")}
    lines = [
        f"Measured while this page was built: {steps} steps, {figures['seconds_per_step']:.2f} s a step "
        f"({figures['seconds']:.0f} s in all), validation Dice **{figures['dice']:.3f}**; the loss went from "
        f"{figures['losses'][0]:.2f} to {figures['losses'][-1]:.2f}.",
        "",
        *(f'<img alt="{name}" src="data:image/png;base64,{data}" style="max-width: 100%">' for name, data in
          pictures.items()),
        "",
        "The model and the training loop, as they stand in `examples/quickstart.py`:",
        "",
        fence(quickstart_loop(), "python", title="examples/quickstart.py"),
    ]
    return "\n".join(lines)


def quickstart_loop() -> str:
    """The lines of ``examples/quickstart.py`` from the model to the optimizer step, dedented."""
    source = (DOCS.parent / "examples" / "quickstart.py").read_text().splitlines()
    start = next(i for i, line in enumerate(source) if "model = blocks.UNet2d(" in line)
    stop = next(i for i, line in enumerate(source) if "optimizer.step()" in line and i > start)
    return textwrap.dedent("\n".join(source[start:stop + 1]))


@directive
def example(name: str) -> str:
    """The script ``docs/examples/<name>`` and what it prints, run as ``__main__`` in this process.

    Names the script registers (normalizers, activators, models) are removed afterwards, so no page
    sees another page's example.
    """
    from blocks import registry as models_registry

    path = DOCS / "examples" / name
    registries = [layers.NORMALIZERS, layers.ACTIVATORS, models_registry._MODELS]
    saved = [dict(registry) for registry in registries]
    try:
        torch.manual_seed(0)
        with one_thread():
            output = printed(runpy.run_path, str(path), run_name="__main__")
    finally:
        for registry, entries in zip(registries, saved):
            registry.clear()
            registry.update(entries)
    source = fence(path.read_text().rstrip(), "python", title=name)
    return f"{source}\n\nIt prints:\n\n{fence(output, title='output')}"


# ---------------------------------------------------- networks, presets, encoders, models (and MDNC)


def stage_list(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """A network's stages in order: its children, with the items of a ``ModuleList`` one by one (``encoder[0]``)."""
    named: list[tuple[str, nn.Module]] = []
    for name, child in net.named_children():
        if isinstance(child, nn.ModuleList):
            named += [(f"{name}[{i}]", item) for i, item in enumerate(child)]
        else:
            named.append((name, child))
    return named


@directive
def stages(model: str, input_size: Sequence[int]) -> str:
    """The output shape and parameters of each stage of a network (`stage_list`), run on the meta device.

    Every stage must run; the last row is the whole network and its output.
    """
    net = build(model)
    named = stage_list(net)
    result, outputs = meta_forward(net, input_size, [module for _, module in named])
    rows = [["input", "", "", code(shape_text(input_size))]]
    for name, module in named:
        if id(module) not in outputs:
            raise DirectiveError(f"{model}: stage {name} did not run on an input of {tuple(input_size)}")
        output = outputs[id(module)]
        rows.append([code(name), stage_text(module), f"{count(module):,}", code(shape_text(output.shape))])
    rows.append(["total", "", f"{count(net):,}", code(shape_text(result.shape))])
    return table(["stage", "what", "parameters", "output shape"], rows, "llrl")


def flop_count(model: nn.Module, input_size: Sequence[int]) -> int:
    """FLOPs of one forward pass on a meta input of ``input_size`` (``torch.utils.flop_counter``).

    It counts the matrix products and convolutions, a multiply-add as two FLOPs; norms, activations
    and interpolations are not counted. The meta device gives the same count as real tensors.
    """
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.empty(tuple(input_size), device="meta"))
    return counter.get_total_flops()


def size_text(shape: Sequence[int]) -> str:
    """A shape as the prose writes it: ``1×1×256×256``."""
    return "×".join(map(str, shape))


def preset_call(name: str, out_size: Sequence[int]) -> str:
    """The call that builds preset ``name`` with its defaults: ``unet16()``, ``decnet13((256, 256))``."""
    from blocks.networks import DecoderNet
    from blocks.presets import PRESETS

    return f"{name}({tuple(out_size)})" if PRESETS[name].network is DecoderNet else f"{name}()"


@directive
def preset_costs(input_size: Sequence[int], out_size: Sequence[int], in_length: int = 2) -> str:
    """MDNC's presets of ``blocks.presets.PRESETS`` in 2-D: layout, default widths, parameters and GFLOPs.

    U-Nets, auto-encoders and encoder networks run on an input of ``input_size``; decoder networks
    are built for ``out_size`` and run on a batch of ``in_length`` vectors (the same batch size).
    ``channels`` shows the first and the last level's widths (``64 × 2**i`` in between). The page
    states the inputs and ``out_size``.
    """
    from blocks.networks import DecoderNet
    from blocks.presets import PRESETS

    rows = []
    for name, (network, layers, block) in PRESETS.items():
        call = preset_call(name, out_size)
        model = build(call)
        shape = (input_size[0], in_length) if network is DecoderNet else tuple(input_size)
        rows.append([
            code(name), f"{network.__name__}2d", ", ".join(map(str, layers)), block,
            f"{model.channels[0]} … {model.channels[-1]}", f"{count(model):,}",
            f"{flop_count(model, shape) / 1e9:,.1f}",
        ])
    head = ["preset", "builds", "blocks per level", "block", "channels", "parameters", "GFLOPs"]
    return table(head, rows, "lllllrr")


@directive
def mdnc_counts(counts: dict[str, int], out_size: Sequence[int], notes: dict[str, str] | None = None) -> str:
    """The parameters of MDNC's presets (``counts``, measured with MDNC's code) beside blocks' presets of the same name.

    blocks' counts are computed now (decoder networks for ``out_size``); ``notes`` adds a remark per preset.
    """
    from blocks.presets import PRESETS

    unknown = sorted(set(counts) - set(PRESETS))
    if unknown:
        raise DirectiveError(f"not presets of blocks: {unknown}")
    notes = notes or {}
    rows = []
    for name, theirs in counts.items():
        ours = count(build(preset_call(name, out_size)))
        rows.append([code(name), f"{theirs:,}", f"{ours:,}", f"{ours / theirs:.2f}", notes.get(name, "")])
    return table(["preset", "MDNC's parameters", "blocks' parameters", "blocks / MDNC", "note"], rows, "lrrrl")


@directive
def encoders(
    backbones: Sequence[str], decoder_channels: Sequence[int], input_size: Sequence[int] = (1, 3, 224, 224)
) -> str:
    """Outside backbones as U-Net encoders: what the adapter reads, and the U-Net's parameters.

    Each expression of ``backbones`` is built on the meta device, given to
    ``UNet2d(out_planes=2, encoder=...)`` (once with the default decoder, once with
    ``decoder_channels``), and the U-Net is run on the meta device: its output must have the
    input's size (``input_size``, its channel count replaced by what the adapter read). The page
    states ``decoder_channels`` (the last column's title does not repeat it).
    """
    rows = []
    for expression in backbones:
        net = build(f"UNet2d(out_planes=2, encoder={expression})")
        reader = net.reader
        shape = (input_size[0], reader.in_planes, *input_size[2:])
        result, _ = meta_forward(net, shape, [])
        if tuple(result.shape) != (shape[0], 2, *shape[2:]):
            raise DirectiveError(f"UNet2d(encoder={expression}) gave {tuple(result.shape)} for an input of {shape}")
        narrow = build(f"UNet2d(out_planes=2, encoder={expression}, decoder_channels={tuple(decoder_channels)})")
        rows.append([
            code(expression), ", ".join(map(str, reader.channels)), ", ".join(map(str, reader.reductions)),
            "yes" if any(reader.channels_last) else "no", f"{count(net):,}", f"{count(narrow):,}",
        ])
    head = ["`encoder=`", "feature channels", "reductions", "NHWC", "U-Net parameters", "with smp's widths"]
    return table(head, rows, "lllrrr")


@directive
def raises(expression: str, error: str = "ValueError") -> str:
    """The error that evaluating ``expression`` (on the meta device) raises, as a user sees it.

    ``folder`` names a fresh temporary folder in the expression's scope (for ``save_pretrained``);
    an expression that raises nothing, or another error than ``error``, stops the build.
    """
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        try:
            evaluate(expression, folder=folder)
        except Exception as raised:  # noqa: BLE001 - which error it is, is checked just below
            if type(raised).__name__ != error:
                raise DirectiveError(f"{expression} raised {type(raised).__name__}, not {error}: {raised}") from raised
            return fence(f">>> {expression}\n{type(raised).__name__}: {raised}", "pycon")
    raise DirectiveError(f"{expression} raised nothing; expected a {error}")


@directive
def models(filter: str = "*") -> str:  # noqa: A002 - list_models' keyword
    """The registry (``blocks.list_models(filter)``): description, dimensions, parameters, default input and keywords.

    Parameters and the default input are those of 2-D, or of the model's only dimension; each model
    is built by ``blocks.create_model(name)`` on the meta device.
    """
    from blocks.registry import model_entry

    rows = []
    for name in blocks.list_models(filter):
        entry = model_entry(name)
        ndim = 2 if 2 in entry.ndims else entry.ndims[0]
        with torch.device("meta"):
            model = blocks.create_model(name)
        defaults = ", ".join(f"{key}={value!r}" for key, value in entry.defaults(ndim).items())
        rows.append([
            code(name), markdown_of_rst(entry.describe()), ", ".join(f"{n}-D" for n in entry.ndims),
            f"{count(model):,}", code(str(entry.input_size())), code(defaults) if defaults else "",
        ])
    head = ["name", "description", "dimensions", "parameters", "default input", "keywords it passes"]
    return table(head, rows, "lllrll")


@directive
def inflation(
    model: str, input_size: Sequence[int], depths: Sequence[int], center_depths: Sequence[int] | None = None,
    seed: int = 0,
) -> str:
    """How close the 3-D twin (``blocks.inflate``, each rule) of a 2-D model comes to it, per depth.

    ``model`` is built on the CPU after ``torch.manual_seed(seed)`` (PyTorch's initialisation) and
    put in eval mode; one random batch of ``input_size`` is repeated along depth: ``depths`` for the
    I3D rule, ``center_depths`` (by default the same) for the center rule. Each row is the cosine of
    the flattened outputs and their largest difference. The center rule must be exact (else the
    build stops). Real arithmetic: keep the model small.
    """
    from blocks.inflate import RULES

    torch.manual_seed(seed)
    flat = build(model, "cpu").eval()
    image = torch.randn(tuple(input_size))
    per_rule = {"i3d": depths, "center": depths if center_depths is None else center_depths}
    if set(per_rule) != set(RULES):
        raise DirectiveError(f"blocks.inflate's rules are {RULES}; this directive knows {tuple(per_rule)}")
    rows = []
    with torch.no_grad(), one_thread():
        expected = flat(image)
        for rule in RULES:
            deep = blocks.inflate(flat, rule=rule).eval()
            for depth in per_rule[rule]:
                got = deep(image.unsqueeze(2).expand(-1, -1, depth, *image.shape[2:]))
                if rule == "center" and not torch.allclose(got, expected, atol=1e-5, rtol=1e-4):
                    raise DirectiveError(f"the center rule is not exact for {model} at depth {depth}")
                cosine = nn.functional.cosine_similarity(got.flatten(), expected.flatten(), dim=0).item()
                rows.append([code(repr(rule)), depth, f"{cosine:.3f}", f"{(got - expected).abs().max().item():.1e}"])
    return table(["rule", "depth", "cosine to the 2-D output", "largest difference"], rows, "lrrr")


MODULE_ORDER = [
    "blocks.residual", "blocks.unet", "blocks.networks", "blocks.resnet", "blocks.presets", "blocks.conv",
    "blocks.registry", "blocks.hub", "blocks.inflate", "blocks.summary", "blocks.layers",
]
"""Order of the modules on the API page, what users build first: the blocks, the networks, then the helpers
(a new module must be added here: the build says so)."""


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
            parts += [api_entry(module, name) for name in names]
    return "\n\n".join(parts)


def api_entry(module: str, name: str) -> str:
    """The mkdocstrings entry of one public name.

    A class built on the package's internal mixins (``Configurable``, ``FeatureAPI``, ...) shows their
    methods (``forward_features``, ``save_pretrained``, ``set_grad_checkpointing``, ...) as its own and
    no "Bases:" line of names the reference does not document; a class with a public base (``UNet2d``)
    keeps its "Bases:" link, where those methods are.
    """
    inherited = internal_members(getattr(blocks, name))
    if inherited is None:
        return f"::: {module}.{name}"
    return "\n".join([f"::: {module}.{name}", "    options:", "      show_bases: false",
                      f"      inherited_members: {json.dumps(inherited)}"])


def internal_members(obj: Any) -> list[str] | None:
    """The public methods a class takes from internal base classes of the package, or None when it has none.

    None also for a class with a public base of the package: the base's entry documents them.
    """
    if not isinstance(obj, type):
        return None
    mro = [base for base in obj.__mro__[1:] if base.__module__.startswith("blocks.")]
    if not mro or any(base.__name__ in blocks.__all__ for base in mro):
        return None
    names: list[str] = []
    for base in mro:
        for key, value in vars(base).items():
            if not key.startswith("_") and key not in vars(obj) and key not in names and (
                    callable(value) or isinstance(value, property)):
                names.append(key)
    return names


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


def layer_box(layer: nn.Module, outputs: dict[int, Any], stride: Sequence[int] | None = None) -> Box:
    """The box of one leaf layer: what it is, its output shape (per sample) and its parameters.

    ``stride`` overrides a conv's own: the stride of a unit whose conv subsamples its input instead.
    """
    if isinstance(layer, CONVS):
        sizes = layer.kernel_size
        kernel = f"{sizes[0]}-wide" if len(sizes) == 1 else "×".join(map(str, sizes))
        label = f"{type(layer).__name__} {kernel}, {layer.in_channels}→{layer.out_channels}"
        stride = stride or layer.stride
        label += f", stride {pair_text(stride)}" if any(s != 1 for s in stride) else ""
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
        subsample = getattr(unit, "subsample", None)  # blocks.conv.subsamples: the conv's stride, taken before it
        return title, [layer_box(layer, outputs, subsample if isinstance(layer, CONVS) else None)
                       for layer in unit.children()]

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


def stage_text(stage: nn.Module, target: str | None = None) -> str:
    """A few words on a network's stage: its blocks, or its layers.

    ``target`` says where a decoder stage without a skip up-scales to (e.g. ``"the input size"``).
    """
    if hasattr(stage, "up") and hasattr(stage, "blocks"):  # a decoder stage
        if getattr(stage, "skip_planes", 0):
            up = "up-scale, concat skip"
        else:
            up = f"up-scale to {target}" if target else "up-scale"
        return f"{up}, {len(stage.blocks)} blocks" if len(stage.blocks) else up
    if isinstance(stage, nn.Linear):
        return f"Linear {stage.in_features}→{stage.out_features}"
    children = list(stage.children()) if isinstance(stage, nn.Sequential) else []
    if children and all(type(c) is type(children[0]) for c in children) and hasattr(children[0], "branch"):
        return f"{len(children)} × {type(children[0]).__name__}"
    if children:
        return " → ".join(type(c).__name__ for c in children)
    return type(stage).__name__


def feature_modules(backbone: nn.Module) -> list[str]:
    """The submodule of ``backbone`` that outputs each of its maps, from its ``feature_info``.

    timm's feature extractors (``features_only=True``) hold their stages under flattened names
    (``stages.0`` becomes ``stages_0``); either spelling is accepted.
    """
    names = []
    for feature in backbone.feature_info:
        name = feature["module"]
        try:
            backbone.get_submodule(name)
        except AttributeError:
            name = name.replace(".", "_")
        names.append(name)
    return names


def decoder_target(net: nn.Module, index: int) -> str:
    """Where decoder stage ``index`` of a U-Net or auto-encoder up-scales to when it has no skip.

    An auto-encoder's stages take the size of their encoder level; the stages past the encoder's first
    map (a backbone at 1/2 or less) go to the input's size, or to 1/2, 1/4 ... of it on the way there.
    """
    decoder = net.decoder
    if index < decoder.levels:
        level = decoder.levels - 1 - index
        return f"encoder[{level}]'s size" if isinstance(net.encoder, nn.ModuleList) else f"the size of map {level}"
    factor = 2 ** (len(decoder) - 1 - index) if len(decoder) - decoder.levels > 1 else 1
    return "the input size" if factor == 1 else f"1/{factor} of the input size"


def unet_levels(net: nn.Module, input_size: Sequence[int]) -> list[Level]:
    """Run a U-Net on the meta device; return its stem, encoder levels, decoder stages and head, in order."""
    stages: list[tuple[str, nn.Module, str]] = []
    if net.stem is not None:
        stages.append(("stem", net.stem, "stem"))
    if isinstance(net.encoder, nn.ModuleList):
        stages += [(f"encoder[{i}]", stage, "encoder") for i, stage in enumerate(net.encoder)]
    else:  # a backbone: its features are the outputs of the modules named in feature_info
        stages += [(f"encoder.{name}", net.encoder.get_submodule(name), "encoder")
                   for name in feature_modules(net.encoder)]
    stages += [(f"decoder[{i}]", stage, "decoder") for i, stage in enumerate(net.decoder)]
    stages.append(("head", net.head, "head"))
    result, outputs = meta_forward(net, input_size, [stage for _, stage, _ in stages])
    targets = {id(stage): decoder_target(net, i) for i, stage in enumerate(net.decoder)}
    levels = [Level(name, stage_text(stage, targets.get(id(stage))), count(stage), list(outputs[id(stage)].shape), part)
              for name, stage, part in stages]
    if list(result.shape) != levels[-1].shape:
        raise DirectiveError(f"the head gave {levels[-1].shape} but the U-Net returned {list(result.shape)}")
    return levels
