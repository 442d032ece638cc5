"""Tests of the docs: the build-time generator (docs/hooks.py) and, after a build, the site itself.

The generator tests need only the test tools. The site tests read the HTML that
``mkdocs build`` wrote; they run when ``BLOCKS_DOCS_SITE`` names the built site (``.ci/run`` sets
it after the build) and are skipped otherwise.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import doctest
import html
import importlib.util
import inspect
import io
import os
import re
import sys
from pathlib import Path

import pytest
import torch

import blocks
from blocks import layers

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SITE = os.environ.get("BLOCKS_DOCS_SITE")

MDNC_BLOCK = "BlockBottleneck2d(16, 32, stride=(1, 2))"
MDNC_UP = "BlockBottleneck2d(32, 16, stride=(1, 2), scaler='up', output_size=(4, 255))"
RESNET_COUNTS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}


def load_hooks():
    """Import docs/hooks.py as MkDocs does: with its folder on the import path while it loads."""
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it is executed
    sys.path.insert(0, str(DOCS))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(DOCS))
    return module


hooks = load_hooks()


def printed_summary(model, input_size, **kwargs) -> str:
    with contextlib.redirect_stdout(io.StringIO()):
        return blocks.summary(model, input_size, **kwargs)


def fenced(markdown: str) -> str:
    """The text inside the first fenced code block of ``markdown``."""
    return re.search(r"```[^\n]*\n(.*?)\n```", markdown, re.DOTALL)[1]


def table_rows(markdown: str) -> list[list[str]]:
    """The body rows of a Markdown table, as lists of stripped cells."""
    lines = [line.strip() for line in markdown.splitlines() if line.strip().startswith("|")][2:]
    cells = r"((?:`[^`]*`|[^|`])*)\|"  # a pipe inside inline code does not end a cell
    return [[cell.strip() for cell in re.findall(cells, line[1:])] for line in lines]


def page_directives() -> list[tuple[str, str]]:
    """(page, call) for every directive of every page."""
    return [
        (page.name, match["call"])
        for page in sorted(DOCS.glob("*.md"))
        for match in hooks.DIRECTIVE.finditer(page.read_text())
    ]


# --------------------------------------------------------------------------------------- generator


@pytest.mark.parametrize(
    ("model", "input_size", "total"), [(MDNC_BLOCK, (16, 4, 255), "3,792"), (MDNC_UP, (32, 4, 128), "11,584")]
)
def test_summary_directive_is_what_blocks_summary_prints(model, input_size, total):
    generated = fenced(hooks.run(f"summary({model!r}, {input_size})"))
    expected = printed_summary(hooks.build(model, "cpu"), input_size)
    assert generated == expected
    assert f"Total params: {total}" in generated
    assert re.search(r"^BlockBottleneck2d-1\d ", generated, re.MULTILINE)


def test_summary_directive_passes_the_batch_size():
    generated = fenced(hooks.run(f"summary({MDNC_BLOCK!r}, (16, 4, 255), batch_size=4)"))
    assert "[4, 32, 4, 128]" in generated and "[-1," not in generated


@pytest.mark.parametrize(
    ("kind", "registry"), [("normalizer", layers.NORMALIZERS), ("activator", layers.ACTIVATORS)]
)
def test_registry_table_has_one_row_per_registered_name(kind, registry):
    rows = table_rows(hooks.run(f"registry({kind!r})"))
    assert [row[0] for row in rows] == [f"`{name!r}`" for name in registry]
    prelu = dict((row[0], row) for row in rows).get("`'prelu'`")
    if prelu:
        assert prelu[2:] == ["`PReLU`", "16"]


def test_registry_table_refuses_a_name_without_a_description():
    blocks.register_activator("tanh-for-test", lambda channels, **kw: torch.nn.Tanh())
    try:
        with pytest.raises(hooks.DirectiveError, match="tanh-for-test"):
            hooks.run("registry('activator')")
    finally:
        del layers.ACTIVATORS["tanh-for-test"]


@pytest.mark.parametrize(
    "name", ["ConvModern2d", "BlockPlain2d", "BlockBottleneck2d", "ResNet", "UNet2d", "BlockPlain", "UNet3d"]
)
def test_arguments_table_lists_the_signature_in_order(name):
    import inspect

    rows = table_rows(hooks.run(f"arguments({name!r})"))
    parameters = list(inspect.signature(getattr(blocks, name)).parameters.values())
    assert [row[0].split()[0] for row in rows] == [f"`{p.name}`" for p in parameters]
    for row, parameter in zip(rows, parameters):
        default = "required" if parameter.default is parameter.empty else f"`{parameter.default!r}`"
        assert row[2] == default and row[3]


@pytest.mark.parametrize("name", ["ConvModern", "BlockPlain", "BlockBottleneck", "UNet"])
def test_arguments_table_of_the_1d_and_3d_classes_is_the_generic_ones(name):
    generic = table_rows(hooks.run(f"arguments({name!r})"))
    assert generic[-1][0] == "`ndim` *(keyword-only)*"
    for ndim in (1, 2, 3):
        assert table_rows(hooks.run(f"arguments('{name}{ndim}d')")) == generic


def test_docstring_args_reads_continuations_and_stops_at_the_next_section():
    doc = "Summary.\n\nArgs:\n    a: First ``x``\n        continued.\n    b (int): See :mod:`m`.\n\nReturns:\n    c: no."
    assert hooks.docstring_args(doc) == {"a": "First `x` continued.", "b": "See `m`."}


def leaf_labels(svg: str) -> list[str]:
    return re.findall(r'fill-opacity="0.16"[^>]*/><text[^>]*class="label">([^<]*)</text>', svg)


def test_diagram_has_a_box_per_leaf_layer_in_execution_order():
    new = hooks.run(f'diagram(["{MDNC_BLOCK}"], (16, 4, 255))')
    old = hooks.run(f"diagram([\"BlockBottleneck2d(16, 32, stride=(1, 2), layer_order='old')\"], (16, 4, 255))")
    assert leaf_labels(new) == [
        "InstanceNorm2d", "PReLU", "Conv2d 1×1, 16→16",
        "InstanceNorm2d", "PReLU", "Conv2d 3×3, 16→16, stride (1, 2)",
        "InstanceNorm2d", "PReLU", "Conv2d 1×1, 16→32",
        "Conv2d 1×1, 16→32, stride (1, 2)", "InstanceNorm2d",
    ]
    assert leaf_labels(old)[:3] == ["Conv2d 1×1, 16→16", "InstanceNorm2d", "PReLU"]
    assert leaf_labels(old)[-1] == "PReLU"  # the activation after the sum
    assert "output 32×4×128" in new and "shortcut: projection" in new


def test_diagram_of_an_up_scaling_block_and_of_an_identity_shortcut():
    up = hooks.run(f'diagram(["{MDNC_UP}"], (32, 4, 128))')
    assert leaf_labels(up).count("Upsample to (4, 255)") == 2 and "output 16×4×255" in up
    identity = hooks.run('diagram(["BlockPlain2d(16, 16)"], (16, 8, 8))')
    assert "shortcut: identity" in identity and "shortcut: projection" not in identity
    unit = hooks.run('diagram(["ConvModern2d(16, 32)"], (16, 8, 8))')
    assert "shortcut" not in unit and leaf_labels(unit) == ["InstanceNorm2d", "PReLU", "Conv2d 3×3, 16→32"]


def boxes(svg: str) -> list[tuple[str, str]]:
    """(colour, label) of each layer box of a diagram."""
    return re.findall(r'fill="(#\w+)" fill-opacity="0.16"[^>]*/><text[^>]*class="label">([^<]*)</text>', svg)


def test_diagram_reads_and_colours_the_layers_of_a_3d_block():
    svg = hooks.run('diagram(["BlockPlain3d(8, 16, stride=2)"], (8, 16, 16, 16))')
    norm, act, conv = (sys.modules["drawing"].COLORS[kind] for kind in ("norm", "act", "conv"))
    assert boxes(svg) == [
        (norm, "InstanceNorm3d"), (act, "PReLU"), (conv, "Conv3d 3×3×3, 8→8"),
        (norm, "InstanceNorm3d"), (act, "PReLU"), (conv, "Conv3d 3×3×3, 8→16, stride 2"),
        (conv, "Conv3d 1×1×1, 8→16, stride 2"), (norm, "InstanceNorm3d"),
    ]
    assert "input 8×16×16×16" in svg and "output 16×8×8×8" in svg and "out 16×8×8×8 · 3,456 params" in svg


def test_diagram_of_a_1d_up_scaling_block():
    svg = hooks.run("diagram([\"BlockBottleneck1d(16, 8, stride=2, scaler='up', output_size=255)\"], (16, 128))")
    assert [label for _, label in boxes(svg)] == [
        "InstanceNorm1d", "PReLU", "Conv1d 1-wide, 16→16",
        "InstanceNorm1d", "PReLU", "Upsample to (255,)", "Conv1d 3-wide, 16→16",
        "InstanceNorm1d", "PReLU", "Conv1d 1-wide, 16→8",
        "Upsample to (255,)", "Conv1d 1-wide, 16→8", "InstanceNorm1d",
    ]
    assert "output 8×255" in svg


@pytest.mark.parametrize(("value", "text"), [(2.0, "2"), ((2, 2, 2), "2"), ((1, 1, 2), "(1, 1, 2)"), ((1.5,), "1.5")])
def test_pair_text_takes_one_value_or_one_per_dimension(value, text):
    assert hooks.pair_text(value) == text


def test_registry_class_column_names_the_layer_of_each_dimension():
    rows = {row[0]: row[2] for row in table_rows(hooks.run("registry('normalizer')"))}
    assert rows["`'batch'`"] == "`BatchNorm1d` / `BatchNorm2d` / `BatchNorm3d`"
    assert rows["`'pinst'`"] == "`InstanceNorm1d` / `InstanceNorm2d` / `InstanceNorm3d`"
    assert rows["`'group'`"] == "`GroupNorm`" and rows["`'null'`"] == "none"


def test_sizes_table_shows_that_255_and_256_both_go_to_128():
    rows = table_rows(hooks.run("sizes(3, 2, 1, [255, 256])"))
    assert [row[:4] for row in rows] == [["255", "128", "128", "256"], ["256", "128", "128", "256"]]
    assert rows[0][4].startswith("no") and rows[1][4] == "yes"


def test_chain_round_trips_255_to_128_to_255():
    rows = table_rows(hooks.run(f'chain(["{MDNC_BLOCK}", "{MDNC_UP}"], (8, 16, 4, 255))'))
    assert [row[-1] for row in rows] == ["`[8, 16, 4, 255]`", "`[8, 32, 4, 128]`", "`[8, 16, 4, 255]`"]


def test_presets_table_counts_the_parameters_of_each_preset():
    rows = table_rows(hooks.run('presets({"defaults": "", "grey": "in_planes=1, num_classes=None"})'))
    assert {row[0]: row[3] for row in rows} == {f"`{name}()`": f"{n:,}" for name, n in RESNET_COUNTS.items()}
    with torch.device("meta"):
        grey = sum(p.numel() for p in blocks.resnet50(in_planes=1, num_classes=None).parameters())
    assert rows[2][4] == f"{grey:,}"


def test_features_table_is_forward_features_of_resnet50():
    rows = table_rows(hooks.run('features("resnet50()", (1, 3, 224, 224))'))
    assert [row[-1] for row in rows] == [
        "`[1, 64, 112, 112]`", "`[1, 256, 56, 56]`", "`[1, 512, 28, 28]`", "`[1, 1024, 14, 14]`", "`[1, 2048, 7, 7]`"
    ]


def test_unet_table_is_what_the_unet_computes():
    rows = table_rows(hooks.run('unet("UNet2d(in_planes=1, out_planes=2)", (4, 1, 512, 512))'))
    shapes = {row[0]: row[-1] for row in rows}
    with torch.device("meta"):
        net = blocks.UNet2d(in_planes=1, out_planes=2)
        x = torch.empty(4, 1, 512, 512)
        encoded = net.encode(x)
        output = net(x)
    for i, feature in enumerate(encoded):
        assert shapes[f"`encoder[{i}]`"] == f"`{list(feature.shape)}`"
    assert shapes["`encoder[4]`"] == "`[4, 1024, 32, 32]`"
    assert [shapes[f"`decoder[{i}]`"] for i in range(4)] == [
        "`[4, 512, 64, 64]`", "`[4, 256, 128, 128]`", "`[4, 128, 256, 256]`", "`[4, 64, 512, 512]`"
    ]
    assert shapes["`head`"] == f"`{list(output.shape)}`" == "`[4, 2, 512, 512]`"


UNET3D = "UNet3d(in_planes=1, out_planes=2, channels=(16, 32, 64, 128))"


@pytest.mark.parametrize(
    ("model", "input_size", "decoded"),
    [
        (UNET3D, (1, 1, 64, 64, 64), ["[1, 64, 16, 16, 16]", "[1, 32, 32, 32, 32]", "[1, 16, 64, 64, 64]"]),
        (UNET3D.replace("3d", "1d"), (4, 1, 3000), ["[4, 64, 750]", "[4, 32, 1500]", "[4, 16, 3000]"]),
    ],
)
def test_unet_table_in_1d_and_3d_is_what_the_unet_computes(model, input_size, decoded):
    shapes = {row[0]: row[-1] for row in table_rows(hooks.run(f"unet({model!r}, {input_size})"))}
    with torch.device("meta"):
        net = hooks.build(model)
        encoded = net.encode(torch.empty(input_size))
    assert [shapes[f"`encoder[{i}]`"] for i in range(4)] == [f"`{list(f.shape)}`" for f in encoded]
    assert [shapes[f"`decoder[{i}]`"] for i in range(3)] == [f"`{shape}`" for shape in decoded]
    assert shapes["`head`"] == f"`{[input_size[0], 2, *input_size[2:]]}`"
    assert shapes["`stem`"] == f"`{[input_size[0], 16, *input_size[2:]]}`"


def test_unet_diagram_in_3d():
    svg = hooks.run(f"unet_diagram({UNET3D!r}, (1, 1, 64, 64, 64))")
    assert svg.count('class="edge skip"') == 3
    assert "input 1×64×64×64" in svg and "output 2×64×64×64" in svg and "out 128×8×8×8" in svg


@pytest.mark.parametrize(
    ("model", "input_size", "shapes"),
    [
        ("resnet18(ndim=1)", (1, 3, 4096), [[64, 2048], [64, 1024], [128, 512], [256, 256], [512, 128]]),
        ("resnet50(ndim=3)", (1, 3, 16, 112, 112),
         [[64, 8, 56, 56], [256, 4, 28, 28], [512, 2, 14, 14], [1024, 1, 7, 7], [2048, 1, 4, 4]]),
    ],
)
def test_features_table_in_1d_and_3d(model, input_size, shapes):
    rows = table_rows(hooks.run(f"features({model!r}, {input_size})"))
    assert [row[-1] for row in rows] == [f"`{[1, *shape]}`" for shape in shapes]
    assert [row[3] for row in rows] == ["2", "4", "8", "16", "32"]


def test_unet_diagram_has_a_box_per_stage_and_a_skip_per_inner_level():
    svg = hooks.run('unet_diagram("UNet2d(in_planes=1, out_planes=2)", (4, 1, 512, 512))')
    rows = {label: float(y) for y, label in re.findall(r'y="([\d.]+)" class="label">((?:en|de)coder\[\d\])<', svg)}
    assert sorted(rows) == [*[f"decoder[{i}]" for i in range(4)], *[f"encoder[{i}]" for i in range(5)]]
    assert [rows[f"encoder[{i}]"] for i in range(5)] == sorted(rows[f"encoder[{i}]"] for i in range(5))
    assert all(rows[f"decoder[{i}]"] == rows[f"encoder[{3 - i}]"] for i in range(4))  # level by level
    assert svg.count('class="edge skip"') == 4 and "output 2×512×512" in svg


def test_cli_directive_prints_what_the_command_line_prints(capsys):
    from blocks.__main__ import main

    main(["list"])
    assert fenced(hooks.run('cli("list")')) == "$ python -m blocks list\n" + capsys.readouterr().out.rstrip()


def test_cli_directive_shows_a_usage_error_only_when_asked_to():
    argv = "summary unet --ndim 3 --input 1 64 64"
    shown = fenced(hooks.run(f"cli({argv!r}, status=2)"))
    assert shown.splitlines()[0] == f"$ python -m blocks {argv}"
    error = "blocks summary: error: --input takes 4 ints with --ndim 3 (C D H W), got 3: 1 64 64"
    assert shown.splitlines()[-1] == error
    with pytest.raises(hooks.DirectiveError, match="exited with status 2, expected 0"):
        hooks.run(f"cli({argv!r})")
    with pytest.raises(hooks.DirectiveError, match="exited with status 0, expected 2"):
        hooks.run("cli('list', status=2)")


def test_include_gives_a_markdown_file_of_the_repository_verbatim():
    assert hooks.run("include('CHANGELOG.md')") == (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    for path in ["../CHANGELOG.md", "pyproject.toml", "/etc/passwd"]:
        with pytest.raises(hooks.DirectiveError, match="a Markdown file of the repository"):
            hooks.run(f"include({path!r})")


def test_every_page_is_in_the_nav():
    nav = set(re.findall(r"^ +- (?:[^:\n]+: )?(\S+\.md)$", (ROOT / "mkdocs.yml").read_text(), re.MULTILINE))
    assert nav == {page.name for page in DOCS.glob("*.md")}
    assert "changelog.md" in nav


def test_api_has_one_entry_per_public_name():
    page = hooks.run("api()")
    entries = re.findall(r"^::: ([\w.]+)$", page, re.MULTILINE)
    presets = re.findall(r"^\| `(\w+)\((?:out_size, )?ndim=2, \*\*kwargs\)` \|", page, re.MULTILINE)
    from blocks.presets import PRESETS

    assert sorted(presets) == sorted(PRESETS)  # the presets, one table row each
    assert sorted([entry.rsplit(".", 1)[1] for entry in entries] + presets) == sorted(blocks.__all__)
    for entry in entries:
        module, name = entry.rsplit(".", 1)
        assert getattr(blocks, name).__module__ == module


def unbound_names(sources: list[str]) -> set[str]:
    """The names a doctest's examples use without importing or assigning them first."""
    bound, used = set(dir(builtins)), set()
    for source in sources:
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                bound |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                bound.add(node.name)
            elif isinstance(node, ast.arg):
                bound.add(node.arg)
            elif isinstance(node, ast.Name):
                (bound if isinstance(node.ctx, ast.Store) else used).add(node.id)
        used -= bound
    return used


def test_api_examples_use_only_public_names():
    """What the API reference shows can be run with ``import blocks`` / ``from blocks import *``:
    no internal helper, no registry dict, no clean-up line (tests clean up: conftest.py)."""
    assert unbound_names(["del NORMALIZERS['x']", "import torch\ntorch.ones(1)"]) == {"NORMALIZERS"}
    parser = doctest.DocTestParser()
    for name in blocks.__all__:
        obj = getattr(blocks, name)
        members = [*vars(obj), *(hooks.internal_members(obj) or [])] if isinstance(obj, type) else []
        for label, documented in [(name, obj), *((f"{name}.{key}", getattr(obj, key)) for key in members
                                                  if not key.startswith("_"))]:
            examples = [example.source for example in parser.get_examples(inspect.getdoc(documented) or "")]
            assert unbound_names(examples) <= set(blocks.__all__), label


def test_api_entry_of_a_class_on_internal_mixins_shows_their_methods_and_no_bases():
    entry = hooks.api_entry("blocks.resnet", "ResNet")
    assert "show_bases: false" in entry
    for method in ["forward_features", "forward", "set_grad_checkpointing", "save_pretrained"]:
        assert f'"{method}"' in entry, method
    assert hooks.api_entry("blocks.unet", "UNet2d") == "::: blocks.unet.UNet2d"  # its base UNet documents them


def test_every_directive_on_every_page_parses():
    directives = page_directives()
    assert len(directives) > 30
    for page, call in directives:
        function, args, kwargs = hooks.parse(call)
        assert function in hooks.DIRECTIVES.values(), (page, call)


def test_examples_used_by_the_pages_exist():
    used = {args[0] for _, call in page_directives() for f, args, _ in [hooks.parse(call)] if f is hooks.example}
    assert used == {path.name for path in (DOCS / "examples").glob("*.py")}


def test_example_shows_the_script_and_its_output_and_leaves_the_registries_as_they_were():
    before = dict(layers.NORMALIZERS), dict(layers.ACTIVATORS)
    generated = hooks.run('example("register.py")')
    assert (DOCS / "examples" / "register.py").read_text().strip() in generated
    assert "normalizer='btach' is not a registered normalizer" in generated and "Tanh-2" in generated
    assert (dict(layers.NORMALIZERS), dict(layers.ACTIVATORS)) == before


def test_render_replaces_directives_and_keeps_indentation():
    text = "a\n\n    <!-- gen params([\"BlockPlain2d(8, 8)\"]) -->\n\nb"
    rendered = hooks.render(text)
    assert "<!-- gen" not in rendered
    assert "    | `BlockPlain2d(8, 8)` | 1,200 |" in rendered.splitlines()  # 2 x (16 + 8 + 576)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<!-- gen nothing() -->", "unknown directive 'nothing'"),
        ("<!-- gen summary('NotAModel()', (1, 2, 3)) -->", "NameError"),
        ("text <!-- gen params([]) -->", "not alone on its line"),
        ("<!-- gen params(models) -->", "ValueError"),
    ],
)
def test_a_bad_directive_stops_the_build_naming_the_page(text, message):
    with pytest.raises(hooks.DirectiveError, match=re.escape(message)) as error:
        hooks.render(text, "page.md")
    assert str(error.value).startswith("page.md")


def meta_count(expression: str) -> int:
    """Parameters of a model expression of the docs, built on the meta device."""
    return sum(p.numel() for p in hooks.build(expression).parameters())


def test_stages_table_is_what_each_stage_of_an_encoder_network_outputs():
    rows = table_rows(hooks.run('stages("EncoderNet2d()", (2, 1, 97, 131))'))
    with torch.device("meta"):
        net = blocks.EncoderNet2d()
        x = torch.empty(2, 1, 97, 131)
        maps = net.forward_intermediates(x, intermediates_only=True)
        output = net(x)
    shapes = {row[0]: row[-1] for row in rows}
    assert [row[0] for row in rows] == [
        "input", "`stem`", *[f"`encoder[{i}]`" for i in range(5)], "`norm_act`", "`avgpool`", "`fc`", "total"
    ]
    assert [shapes[f"`encoder[{i}]`"] for i in range(4)] == [f"`{list(m.shape)}`" for m in maps[:4]]
    assert shapes["`norm_act`"] == f"`{list(maps[-1].shape)}`" == "`[2, 1024, 7, 9]`"
    assert shapes["total"] == f"`{list(output.shape)}`" == "`[2, 2]`"
    assert rows[-1][2] == f"{sum(p.numel() for p in net.parameters()):,}"
    assert {row[0]: row[1] for row in rows}["`fc`"] == "Linear 1024→2"
    assert sum(int(row[2].replace(",", "")) for row in rows[1:-1]) == sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(
    ("model", "input_size", "output"),
    [
        ("DecoderNet2d((97, 131))", (2, 2), [2, 1, 97, 131]),
        ("DecoderNet2d((97, 131), in_length=None)", (2, 1024, 7, 9), [2, 1, 97, 131]),
        ("DecoderNet1d(3000, in_length=8, channels=(16, 32, 64, 128))", (4, 8), [4, 1, 3000]),
    ],
)
def test_stages_table_of_a_decoder_network_goes_up_level_by_level(model, input_size, output):
    rows = table_rows(hooks.run(f"stages({model!r}, {input_size})"))
    net = hooks.build(model)
    shapes = {row[0]: row[-1] for row in rows}
    assert shapes["total"] == shapes["`head`"] == f"`{output}`"
    levels = [f"`{[input_size[0], c, *size]}`" for c, size in zip(net.channels, net.sizes)]
    assert shapes["`bottom`"] == levels[-1]
    assert [shapes[f"`decoder[{j}]`"] for j in range(len(net.channels) - 1)] == levels[-2::-1]
    assert ("`fc`" in shapes) == (net.fc is not None)
    assert rows[-1][2] == f"{meta_count(model):,}"


def test_stages_refuses_a_stage_that_does_not_run(monkeypatch):
    listed = hooks.stage_list
    monkeypatch.setattr(hooks, "stage_list", lambda net: [*listed(net), ("spare", torch.nn.ReLU())])
    with pytest.raises(hooks.DirectiveError, match="stage spare did not run"):
        hooks.run('stages("EncoderNet2d(channels=(4, 8), layers=1)", (1, 1, 9, 9))')


def test_unet_table_of_an_auto_encoder_says_which_level_each_stage_goes_to():
    rows = table_rows(hooks.run('unet("AE2d()", (1, 1, 97, 131))'))
    what = {row[0]: row[1] for row in rows}
    assert [what[f"`decoder[{i}]`"] for i in range(4)] == [
        f"up-scale to encoder[{3 - i}]'s size, 2 blocks" for i in range(4)
    ]
    assert {row[0]: row[-1] for row in rows}["`head`"] == "`[1, 1, 97, 131]`"


def test_unet_table_of_a_backbone_with_extra_stages_names_their_sizes():
    pytest.importorskip("timm")
    model = ("UNet2d(out_planes=2, encoder=timm.create_model('convnext_atto', features_only=True), "
             "decoder_channels=(256, 128, 64, 32, 16))")
    rows = table_rows(hooks.run(f"unet({model!r}, (1, 3, 224, 224))"))
    what = {row[0]: (row[1], row[-1]) for row in rows}
    assert what["`encoder.stages_0`"][1] == "`[1, 40, 56, 56]`"  # timm's flattened module names
    assert what["`decoder[3]`"] == ("up-scale to 1/2 of the input size, 2 blocks", "`[1, 32, 112, 112]`")
    assert what["`decoder[4]`"] == ("up-scale to the input size, 2 blocks", "`[1, 16, 224, 224]`")


def test_flop_count_on_the_meta_device_is_the_real_count():
    from torch.utils.flop_counter import FlopCounterMode

    conv = hooks.build("torch.nn.Conv2d(1, 8, 3, padding=1, bias=False)")
    assert hooks.flop_count(conv, (1, 1, 10, 10)) == 2 * 8 * 9 * 100  # a multiply-add is two FLOPs
    torch.manual_seed(0)
    net = blocks.unet16(channels=(4, 8, 16))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.randn(1, 1, 37, 53))
    assert hooks.flop_count(hooks.build("unet16(channels=(4, 8, 16))"), (1, 1, 37, 53)) == counter.get_total_flops()


def test_preset_costs_table_has_every_preset_with_its_parameters_and_flops():
    from blocks.presets import PRESETS

    rows = table_rows(hooks.run("preset_costs((1, 1, 256, 256), (256, 256))"))
    assert [row[0] for row in rows] == [f"`{name}`" for name in PRESETS]
    by_name = {row[0].strip("`"): row for row in rows}
    for name, (network, layers, block) in PRESETS.items():
        row = by_name[name]
        model = hooks.build(hooks.preset_call(name, (256, 256)))
        assert row[1:5] == [f"{network.__name__}2d", ", ".join(map(str, layers)), block,
                            f"{model.channels[0]} … {model.channels[-1]}"]
        assert model.channels == tuple(64 * 2**i for i in range(len(layers)))
        assert row[5] == f"{sum(p.numel() for p in model.parameters()):,}"
        shape = (1, 2) if network.__name__ == "DecoderNet" else (1, 1, 256, 256)
        assert row[6] == f"{hooks.flop_count(model, shape) / 1e9:,.1f}" and float(row[6].replace(",", "")) > 0
    assert hooks.preset_call("decnet13", (256, 256)) == "decnet13((256, 256))"
    assert by_name["decnet13"][5] == f"{meta_count('decnet13((256, 256))'):,}"


def test_mdnc_counts_table_puts_blocks_counts_beside_the_given_ones():
    rows = table_rows(hooks.run('mdnc_counts({"unet32": 2441473, "decnet13": 29159617}, (256, 256), '
                                'notes={"unet32": "a note"})'))
    ours = [meta_count("unet32()"), meta_count("decnet13((256, 256))")]
    assert rows == [
        ["`unet32`", "2,441,473", f"{ours[0]:,}", f"{ours[0] / 2441473:.2f}", "a note"],
        ["`decnet13`", "29,159,617", f"{ours[1]:,}", f"{ours[1] / 29159617:.2f}", ""],
    ]
    with pytest.raises(hooks.DirectiveError, match="unet17"):
        hooks.run('mdnc_counts({"unet17": 1}, (256, 256))')


def test_encoders_table_is_what_the_adapter_reads_and_what_the_unets_count():
    pytest.importorskip("timm")
    backbones = ["timm.create_model('resnet10t', features_only=True)", "timm.create_model('resnet10t')",
                 "timm.create_model('swin_tiny_patch4_window7_224', features_only=True)", "resnet18(num_classes=None)"]
    rows = table_rows(hooks.run(f"encoders({backbones!r}, (256, 128, 64, 32, 16))"))
    assert [row[0] for row in rows] == [f"`{b}`" for b in backbones]
    for row, backbone in zip(rows, backbones):
        net = hooks.build(f"UNet2d(out_planes=2, encoder={backbone})")
        narrow = hooks.build(f"UNet2d(out_planes=2, encoder={backbone}, decoder_channels=(256, 128, 64, 32, 16))")
        assert row[1:4] == [", ".join(map(str, net.reader.channels)), ", ".join(map(str, net.reader.reductions)),
                            "yes" if any(net.reader.channels_last) else "no"]
        assert row[4:] == [f"{sum(p.numel() for p in m.parameters()):,}" for m in (net, narrow)]
    assert rows[0][4:] == rows[1][4:]  # the whole model's classifier is pruned
    assert rows[2][3] == "yes" and rows[2][2] == "4, 8, 16, 32" and rows[0][3] == "no"


def test_raises_shows_the_error_and_refuses_an_expression_that_does_not_raise_it():
    shown = fenced(hooks.run('raises("unet16(block=\'bottleneck\')")'))
    assert shown.splitlines() == [
        ">>> unet16(block='bottleneck')",
        "ValueError: unet16 fixes block='plain'; got block='bottleneck' (build UNet for other values)",
    ]
    saved = fenced(hooks.run('raises("UNet2d(channels=(4, 8), normalizer=nn.BatchNorm2d).save_pretrained(folder)")'))
    assert "cannot be written to config.json" in saved
    with pytest.raises(hooks.DirectiveError, match="raised nothing"):
        hooks.run('raises("unet16()")')
    with pytest.raises(hooks.DirectiveError, match="raised TypeError, not ValueError"):
        hooks.run('raises("unet16(order=3)")')


def test_models_table_has_every_registered_name_with_its_parameters():
    from blocks.registry import model_entry

    rows = table_rows(hooks.run("models()"))
    assert [row[0] for row in rows] == [f"`{name}`" for name in blocks.list_models()]
    for row in rows:
        name = row[0].strip("`")
        entry = model_entry(name)
        with torch.device("meta"):
            model = blocks.create_model(name)
        assert row[2] == ", ".join(f"{n}-D" for n in entry.ndims)
        assert row[3] == f"{sum(p.numel() for p in model.parameters()):,}"
        assert row[4] == f"`{entry.input_size()}`"
    by_name = {row[0]: row for row in rows}
    assert by_name["`resnet50`"][3] == "25,557,032" and by_name["`unet3d`"][2] == "3-D"
    assert by_name["`decodernet2d`"][5] == "`out_size=(256, 256)`"


def test_inflation_table_is_the_cosine_of_the_outputs_and_the_center_rule_is_exact():
    rows = table_rows(hooks.run('inflation("resnet18(num_classes=4)", (1, 3, 32, 32), (4,), center_depths=(3,))'))
    torch.manual_seed(0)
    flat = blocks.resnet18(num_classes=4).eval()
    image = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        deep = blocks.inflate(flat).eval()(image.unsqueeze(2).expand(-1, -1, 4, -1, -1))
        cosine = torch.nn.functional.cosine_similarity(deep.flatten(), flat(image).flatten(), dim=0).item()
    assert [row[:2] for row in rows] == [["`'i3d'`", "4"], ["`'center'`", "3"]]
    assert rows[0][2] == f"{cosine:.3f}"
    assert rows[1][2] == "1.000" and float(rows[1][3]) < 1e-4


def test_example_forgets_the_models_a_script_registers():
    before = blocks.list_models()
    generated = hooks.run('example("registry.py")')
    assert "['tiny_unet'] UNet" in generated and "did you mean 'unet16'" in generated
    assert blocks.list_models() == before


def test_one_thread_restores_the_thread_count_even_after_an_error():
    threads = torch.get_num_threads()
    with pytest.raises(RuntimeError), hooks.one_thread():
        assert torch.get_num_threads() == 1
        raise RuntimeError("inside")
    assert torch.get_num_threads() == threads


def test_directive_expressions_name_timm_and_torchvision_only_when_used():
    assert "timm" not in hooks.namespace()
    pytest.importorskip("timm")
    assert type(hooks.evaluate("timm.create_model('resnet10t', features_only=True)")).__name__ == "FeatureListNet"
    extractor = hooks.evaluate("create_feature_extractor(torchvision.models.resnet18(), {'layer1': 'a'})")
    assert next(extractor.parameters()).device.type == "meta"


# -------------------------------------------------------------------------------------- built site

needs_site = pytest.mark.skipif(not SITE, reason="set BLOCKS_DOCS_SITE to the built site (mkdocs build) to run")


def site_text(page: str) -> str:
    """The visible text of a built page: tags dropped, entities unescaped."""
    raw = (Path(SITE) / page).read_text(encoding="utf-8")
    return html.unescape(re.sub(r"<[^>]+>", "", raw))


@needs_site
def test_site_pages_hold_the_generated_numbers():
    pages = {page: site_text(page) for page in ["bottleneck.html", "resnet.html", "unet.html"]}
    assert "BlockBottleneck2d-12" in pages["bottleneck.html"]
    assert "3,792" in pages["bottleneck.html"] and "11,584" in pages["bottleneck.html"]
    assert "25,557,032" in pages["resnet.html"] and "11,689,512" in pages["resnet.html"]
    assert "[4, 1024, 32, 32]" in pages["unet.html"]


@needs_site
@pytest.mark.parametrize(("model", "input_size"), [(MDNC_BLOCK, (16, 4, 255)), (MDNC_UP, (32, 4, 128))])
def test_site_summary_tables_are_what_the_code_prints_now(model, input_size):
    text = site_text("bottleneck.html")
    for line in printed_summary(hooks.build(model, "cpu"), input_size).splitlines():
        assert line in text


@needs_site
def test_site_has_an_api_entry_with_its_docstring_for_every_public_name():
    raw = (Path(SITE) / "api.html").read_text(encoding="utf-8")
    text = " ".join(site_text("api.html").split())
    from blocks.presets import PRESETS

    for name in blocks.__all__:
        obj = getattr(blocks, name)
        if name in PRESETS:  # one table row each
            assert f"<code>{name}(" in raw, name
            continue
        assert f'id="{obj.__module__}.{name}"' in raw, name
        first_line = obj.__doc__.strip().splitlines()[0]
        assert hooks.markdown_of_rst(first_line).replace("`", "") in text, name


@needs_site
@pytest.mark.parametrize("page", ["index.html", "conv.html", "plain.html", "bottleneck.html", "unet.html"])
def test_site_pages_have_diagrams_and_tables(page):
    raw = (Path(SITE) / page).read_text(encoding="utf-8")
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="gen-svg"' in raw
    assert "<table>" in raw or "<code>" in raw


@needs_site
@pytest.mark.parametrize(
    ("page", "model", "input_size"),
    [
        ("conv.html", "ConvModern1d(16, 8, stride=2, scaler='up')", (16, 128)),
        ("plain.html", "BlockPlain3d(8, 16, stride=2)", (8, 16, 16, 16)),
        ("bottleneck.html", "BlockBottleneck1d(16, 32, stride=2)", (16, 255)),
    ],
)
def test_site_block_pages_show_a_1d_or_3d_summary(page, model, input_size):
    text = site_text(page)
    assert "In 1-D and 3-D" in text
    table = printed_summary(hooks.build(model, "cpu"), input_size)
    assert re.search(r"(Conv|InstanceNorm)[13]d-1 ", table)
    for line in table.splitlines():
        assert line in text, line


@needs_site
def test_site_shows_3d_and_1d_networks():
    names = ["plain.html", "unet.html", "resnet.html", "layers.html", "summary.html"]
    pages = {page: site_text(page) for page in names}
    assert "Conv3d 3×3×3, 8→16, stride 2" in pages["plain.html"]  # the 3-D diagram
    unet = pages["unet.html"]
    assert "InstanceNorm3d → PReLU → Conv3d" in unet and "[1, 2, 64, 64, 64]" in unet
    assert "output 2×64×64×64" in unet  # the 3-D diagram
    assert "[4, 2, 3000]" in unet and "[4, 128, 375]" in unet
    assert "[1, 2048, 1, 4, 4]" in pages["resnet.html"] and "[1, 512, 128]" in pages["resnet.html"]
    with torch.device("meta"):
        assert f"{sum(p.numel() for p in blocks.resnet50(ndim=3).parameters()):,}" in pages["resnet.html"]
    assert "BatchNorm1d / BatchNorm2d / BatchNorm3d" in pages["layers.html"]
    assert "BlockPlain3d: BatchNorm3d -> PReLU -> Conv3d" in pages["layers.html"]
    assert "error: --input takes 4 ints with --ndim 3 (C D H W), got 3: 1 64 64" in pages["summary.html"]
    assert re.search(r"Conv3d-1 +\[-1, 64, 64, 64, 64\] +1,792", pages["summary.html"])


@needs_site
def test_site_changelog_page_is_the_changelog_and_in_the_nav():
    text = " ".join(site_text("changelog.html").split())
    for line in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8").splitlines():
        words = re.sub(r"^#+ |^- |`", "", line.strip())
        assert " ".join(words.split()) in text, line
    assert 'href="changelog.html"' in (Path(SITE) / "index.html").read_text(encoding="utf-8")


@needs_site
def test_site_api_links_each_named_class_to_its_generic_class():
    raw = (Path(SITE) / "api.html").read_text(encoding="utf-8")
    named = [name for name in blocks.__all__ if getattr(getattr(blocks, name), "fixed_ndim", None)]
    assert {"ConvModern1d", "BlockPlain3d", "BlockBottleneck1d", "UNet3d"} <= set(named)
    for name in named:
        cls = getattr(blocks, name)
        generic = cls.__mro__[1]
        entry = raw[raw.index(f'id="{cls.__module__}.{name}"'):]
        bases = re.search(r"Bases: (.*?)</p>", entry, re.DOTALL)[1]
        assert f'href="#{generic.__module__}.{generic.__name__}"' in bases, name


@needs_site
def test_site_api_bases_name_only_documented_or_torch_classes():
    raw = (Path(SITE) / "api.html").read_text(encoding="utf-8")
    bases = re.findall(r"Bases: (.*?)</p>", raw, re.DOTALL)
    assert bases
    for line in bases:
        for item in re.findall(r"<code>(.*?)</code>", line, re.DOTALL):
            assert 'href="#blocks.' in item or 'title="torch.' in item, item


@needs_site
def test_site_left_no_directive_and_loads_nothing_from_the_internet():
    for path in Path(SITE).rglob("*.html"):
        raw = path.read_text(encoding="utf-8")
        assert "<!-- gen" not in raw, path
        assert not re.search(r'<(script|link|img)[^>]+(src|href)="(https?:)?//', raw.replace('rel="canonical"', "")), path


@needs_site
def test_site_networks_page_shows_the_shapes_of_the_three_networks():
    text = site_text("networks.html")
    assert f"{meta_count('EncoderNet2d()'):,}" in text and f"{meta_count('DecoderNet2d((97, 131))'):,}" in text
    for shape in ["[1, 1, 97, 131]", "[2, 1024, 7, 9]", "[2, 1, 97, 131]", "[2, 64512]", "[4, 1, 3000]"]:
        assert shape in text, shape
    assert "up-scale to encoder[3]'s size" in text and "forward_intermediates: [(2, 8, 37, 53)" in text
    for name in ["AE2d", "EncoderNet2d", "DecoderNet2d"]:
        assert "out_size" in text and name in text


@needs_site
def test_site_presets_page_has_every_preset_with_its_count():
    from blocks.presets import PRESETS

    text = site_text("presets.html")
    for name in PRESETS:
        assert f"{meta_count(hooks.preset_call(name, (256, 256))):,}" in text, name
    model = hooks.build("unet83()")
    assert f"{hooks.flop_count(model, (1, 1, 256, 256)) / 1e9:,.1f}" in text
    assert "unet16 fixes block='plain'" in text


@needs_site
def test_site_mdnc_page_maps_the_names_and_shows_the_differences():
    text = " ".join(site_text("mdnc.html").split())
    for name in ["BlockPlain1d/2d/3d", "UNet1d/2d/3d", "EncoderNet1d/2d/3d", "DecoderNet1d/2d/3d", "nlayers",
                 "input_size", "order", "decnet13/33/48/63(out_size, order=2, **kwargs)"]:
        assert name in text, name
    assert "1,647,105" in text and f"{meta_count('unet16()'):,}" in text
    assert "expected input's size at dim=1 to match num_features (256), but got: 192" in text
    assert "old order, ReLU, backward: (2, 8, 9, 9)" in text and "Upsample layers: 0" in text
    assert "out_planes=[2, 2, 2] must be a positive int" in text


@needs_site
def test_site_encoders_page_has_the_backbone_table():
    pytest.importorskip("timm")
    text = site_text("encoders.html")
    for expression in ["timm.create_model('swin_tiny_patch4_window7_224', features_only=True)", "resnet34()"]:
        assert expression in text
    assert f"{meta_count('UNet2d(out_planes=2, encoder=resnet34())'):,}" in text
    assert "96, 192, 384, 768" in text and "a plain ViT's maps are all at one reduction" in text
    assert "in_planes=1 does not match the encoder's 3 input channels" in text


@needs_site
def test_site_models_page_has_the_registry_saving_and_inflation():
    text = site_text("models.html")
    for name in blocks.list_models():
        assert name in text, name
    assert f"{meta_count('UNet3d()'):,}" in text
    assert "['README.md', 'config.json', 'model.safetensors']" in text and "equal outputs: True" in text
    assert "'center'" in text and "cosine to the 2-D output" in text
    assert "is not a blocks network, so config.json cannot rebuild it" in text
    index = (Path(SITE) / "index.html").read_text(encoding="utf-8")
    for page in ["networks.html", "presets.html", "encoders.html", "models.html", "mdnc.html"]:
        assert f'href="{page}"' in index, page


@needs_site
def test_site_footer_shows_the_version():
    assert f"blocks {blocks.__version__}" in (Path(SITE) / "index.html").read_text(encoding="utf-8")
    assert blocks.__version__ == "0.3.0.dev0"


@needs_site
def test_site_has_the_installation_and_training_sections():
    install = site_text("installation.html")
    assert "blocks-sdk" in install and "download.pytorch.org/whl/cpu" in install and "-m 'not slow'" in install
    training = site_text("training.html")
    assert "checkpointing keeps the gradients: True" in training and "compiled output equals eager: True" in training


@needs_site
def test_site_quickstart_shows_its_figures_pictures_and_loop():
    raw = (Path(SITE) / "quickstart.html").read_text(encoding="utf-8")
    assert raw.count('src="data:image/png;base64,') == 2
    assert "validation Dice <strong>0.9" in raw
    text = site_text("quickstart.html")
    assert "loss.backward()" in text and "optimizer.step()" in text


def test_quickstart_loop_is_the_scripts_own():
    loop = hooks.quickstart_loop()
    source = (Path(__file__).parents[1] / "examples" / "quickstart.py").read_text()
    assert loop.splitlines()[0].startswith("model = blocks.UNet2d(") and loop.splitlines()[-1].strip() == "optimizer.step()"
    assert all(line.strip() in source for line in loop.splitlines())


def returns_items(docstring: str) -> list[str]:
    """The items of a Google-style ``Returns:`` section: lines at the section's first indentation."""
    lines = docstring.expandtabs().splitlines()
    for index, line in enumerate(lines):
        if line.strip() != "Returns:":
            continue
        body = []
        for following in lines[index + 1:]:
            if following.strip() and len(following) - len(following.lstrip()) <= len(line) - len(line.lstrip()):
                break  # the next section, at the header's indentation
            body.append(following)
        content = [b for b in body if b.strip()]
        if not content:
            return []
        first = len(content[0]) - len(content[0].lstrip())
        return [b.strip() for b in content if len(b) - len(b.lstrip()) == first]
    return []


def test_returns_sections_hold_one_item_each():
    """A continuation line of ``Returns:`` is indented deeper, or mkdocstrings shows it as a second value."""
    assert returns_items("Do.\n\nReturns:\n    One thing,\n    split.\n") == ["One thing,", "split."]  # the check works
    assert returns_items("Do.\n\nReturns:\n    One thing,\n        split.\n\nRaises:\n    E: x.\n") == ["One thing,"]
    split = []
    for path in sorted((ROOT / "blocks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                items = returns_items(ast.get_docstring(node, clean=True) or "")
                if len(items) > 1:
                    split.append(f"{path.name}:{node.lineno} {node.name}: {items}")
    assert not split, "\n".join(split)


def test_design_page_names_owners_that_exist():
    """Every ``file: function`` of the Design page's tables is a name that file defines (the page cannot drift)."""
    import importlib

    page = (ROOT / "docs" / "design.md").read_text()
    rows = re.findall(r"^\| [^|]+ \| `(\w+)\.py`: (.+) \|$", page, re.MULTILINE)
    assert len(rows) >= 25
    for module, names in rows:
        defined = vars(importlib.import_module(f"blocks.{module}"))
        for name in re.findall(r"`(\w+)`", names):
            assert name in defined, (module, name)
    floors = re.findall(r"^\| \d+ \| (.+?) \|", page, re.MULTILINE)
    listed = {f for cell in floors for f in re.findall(r"`(\w+\.py)`", cell)}
    assert listed == {p.name for p in (ROOT / "blocks").glob("*.py")}


# ---- issue 30: decoder widths from results.json, the API page's order -----------------------------------------


def test_decoder_widths_come_from_results_json_and_match_the_models(monkeypatch):
    """The figures are read from benchmarks/results.json (never measured by the build) and are those of the models."""
    import json

    entry = json.loads((ROOT / "benchmarks" / "results.json").read_text())["decoder_widths"]
    assert not entry["quick"] and entry["input"] == [1, 3, 256, 256]
    monkeypatch.setattr(blocks, "UNet2d", None)  # a build that measured would need it
    page = hooks.run("decoder_widths()")
    monkeypatch.undo()
    counted = {}
    for row in entry["rows"]:
        arguments = ", ".join(f"{k}={tuple(v) if isinstance(v, list) else repr(v)}" for k, v in row["arguments"].items())
        expression = f"UNet2d(out_planes=2, encoder=resnet50(num_classes=None){', ' + arguments if arguments else ''})"
        counted[row["decoder"]] = meta_count(expression)
        assert row["params"] == counted[row["decoder"]], row["decoder"]
        assert f"| {row['params'] / 1e6:.1f} M | {row['decoder_params'] / 1e6:.1f} M |" in page
        assert f"| {row['train_step_ms']:.0f} |" in page
    assert counted["default"] == 77_477_378 and counted["smp widths, interpolate"] == 27_190_754  # 77.5 M, 27.2 M
    assert "python benchmarks/run.py --decoder-widths" in page
    for name in ("unet.md", "encoders.md"):
        assert "<!-- gen decoder_widths() -->" in (DOCS / name).read_text()


def test_api_page_opens_with_the_blocks_and_networks():
    page = hooks.run("api()")
    modules = re.findall(r"^## `(blocks\.\w+)`", page, re.MULTILINE)
    assert modules[:4] == ["blocks.residual", "blocks.unet", "blocks.networks", "blocks.resnet"]
    helpers = ["blocks.registry", "blocks.hub", "blocks.inflate", "blocks.summary", "blocks.layers"]
    assert all(modules.index(h) > modules.index("blocks.conv") for h in helpers)


@needs_site
def test_site_unet_and_encoders_pages_show_the_measured_decoder_widths():
    for name in ("unet.html", "encoders.html"):
        text = " ".join(site_text(name).split())
        assert "77.5 M" in text and "27.2 M" in text and "28.2 M" in text, name
        assert "measured by python benchmarks/run.py --decoder-widths" in text, name
