"""Tests of the command line (blocks/__main__.py)."""

import re
import subprocess
import sys

import pytest
import torch

import blocks
from blocks.__main__ import DEMOS, main, parse_value
from blocks.registry import list_models, model_entry

REGISTERED = {name: model_entry(name) for name in list_models()}
MODELS = {**DEMOS, **REGISTERED}
"""What the command line builds: its own demos, then every registered name."""

DEMOS_HEADING = "Demos of the command line:"
REGISTERED_HEADING = "Registered models (blocks.create_model):"


def total_params(text):
    return int(re.search(r"Total params: ([\d,]+)", text).group(1).replace(",", ""))


def listed_names(out):
    """The names of the two parts of ``list``'s output: the demos, then the registered models."""
    demos, registered = out.split("\n\n")
    demos, registered = demos.splitlines(), registered.splitlines()
    assert demos[0] == DEMOS_HEADING and registered[0] == REGISTERED_HEADING
    return [line.split()[0] for line in demos[1:]], [line.split()[0] for line in registered[1:]]


def test_list_names_every_model(capsys):
    for ndim in (1, 2, 3):
        assert main(["list", "--ndim", str(ndim)]) == 0
        demos, registered = listed_names(capsys.readouterr().out)
        assert demos == ["conv", "plain", "bottleneck", "unet"]  # every demo exists in every dimension
        assert registered == [name for name, entry in REGISTERED.items() if ndim in entry.ndims]  # in order
        assert f"unet{ndim}d" in registered and "resnet18" in registered and "unet16" in registered
        assert all(f"unet{n}d" not in registered for n in {1, 2, 3} - {ndim})
    assert main(["list"]) == 0  # 2-D by default
    assert listed_names(capsys.readouterr().out)[1] == [name for name, entry in REGISTERED.items() if 2 in entry.ndims]


def test_summary_of_a_block_with_input_batch_and_settings(capsys):
    assert main(["summary", "bottleneck", "--input", "16", "8", "32", "--batch", "4", "--set", "normalizer=batch",
                 "--set", "stride=2"]) == 0
    out = capsys.readouterr().out
    assert "BatchNorm2d-1" in out and "[4, 32, 4, 16]" in out
    assert total_params(out) == sum(p.numel() for p in MODELS["bottleneck"].create(normalizer="batch").parameters())


def test_bad_setting_is_a_clean_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["summary", "plain", "--set", "normalizer=bn"])
    assert exit_info.value.code == 2
    assert "normalizer='bn' is not a registered normalizer" in capsys.readouterr().err


def test_unknown_model_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["summary", "vgg"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.rstrip().endswith(
        f"error: unknown model 'vgg' (list_models() names all {len(REGISTERED)})"
    )


def test_a_misspelt_demo_is_suggested_after_the_registered_names(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["summary", "botleneck"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.rstrip().endswith(
        f"error: unknown model 'botleneck' (list_models() names all {len(REGISTERED)}); "
        "demos of the command line close to it: 'bottleneck'"
    )
    with pytest.raises(SystemExit):
        main(["summary", "unet3"])
    assert capsys.readouterr().err.rstrip().endswith(
        f"error: unknown model 'unet3'; did you mean 'unet83', 'unet3d', 'unet32'? (list_models() names all "
        f"{len(REGISTERED)}); demos of the command line close to it: 'unet'"
    )


@pytest.mark.parametrize("text, value", [("1", 1), ("(1, 2)", (1, 2)), ("None", None), ("batch", "batch"),
                                         ("('group', {'num_groups': 4})", ("group", {"num_groups": 4}))])
def test_values_are_python_literals_or_strings(text, value):
    assert parse_value(text) == value


def test_python_dash_m_blocks_runs():
    result = subprocess.run([sys.executable, "-m", "blocks", "list"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stderr == ""
    demos, registered = listed_names(result.stdout)
    assert demos == list(DEMOS) and registered == [name for name, entry in REGISTERED.items() if 2 in entry.ndims]


# ------------------------------------------------------------------------------- 1-D, 2-D and 3-D


def count(model):
    return sum(p.numel() for p in model.parameters())


def table_rows(text):
    """(name, shape, params) of each row of a summary table."""
    return [(m[1], m[2], m[3]) for m in re.finditer(r"^ *(\S+-\d+) +(\[[^\]]*\]) +([\d,]+)$", text, re.MULTILINE)]


def test_bottleneck_in_1d_is_mdncs_example_in_1d_row_for_row(capsys):
    assert main(["summary", "bottleneck", "--ndim", "1", "--input", "16", "255"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "bottleneck: BlockBottleneck1d, input [16, 255], batch -1"
    assert table_rows(out) == [
        ("InstanceNorm1d-1", "[-1, 16, 255]", "32"), ("PReLU-2", "[-1, 16, 255]", "16"),
        ("Conv1d-3", "[-1, 16, 255]", "256"),
        ("InstanceNorm1d-4", "[-1, 16, 255]", "32"), ("PReLU-5", "[-1, 16, 255]", "16"),
        ("Conv1d-6", "[-1, 16, 128]", "768"),  # 16 x 16 x 3, stride 2
        ("InstanceNorm1d-7", "[-1, 16, 128]", "32"), ("PReLU-8", "[-1, 16, 128]", "16"),
        ("Conv1d-9", "[-1, 32, 128]", "512"),
        ("Conv1d-10", "[-1, 32, 128]", "512"), ("InstanceNorm1d-11", "[-1, 32, 128]", "64"),  # the shortcut
        ("BlockBottleneck1d-12", "[-1, 32, 128]", "0"),
    ]
    assert total_params(out) == 2_256


def test_unet_in_3d_reads_conv3d_and_totals_the_models_parameters(capsys):
    assert main(["summary", "unet", "--ndim", "3", "--input", "1", "64", "64", "64", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert out.splitlines()[0] == "unet: UNet3d, input [1, 64, 64, 64], batch 2"
    assert rows[:3] == [
        ("Conv3d-1", "[2, 64, 64, 64, 64]", "1,792"),  # the stem: 64 x 27 + 64 (bias)
        ("InstanceNorm3d-2", "[2, 64, 64, 64, 64]", "128"),
        ("PReLU-3", "[2, 64, 64, 64, 64]", "64"),
    ]
    assert rows[-1] == (f"UNet3d-{len(rows)}", "[2, 2, 64, 64, 64]", "0")
    assert total_params(out) == count(blocks.UNet3d(in_planes=1, out_planes=2))


@pytest.mark.parametrize(
    "name, ndim", [(name, ndim) for name, entry in MODELS.items() for ndim in entry.ndims]
)
def test_every_model_in_every_dimension_on_its_default_input(name, ndim, capsys):
    entry = MODELS[name]
    decoder = name.startswith("dec")  # a DecoderNet takes a vector
    assert len(entry.input_sizes[ndim]) == (1 if decoder else 1 + ndim)
    assert main(["summary", name, "--ndim", str(ndim)]) == 0
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert rows[0][0].split("-")[0] in ({"Linear"} if decoder else {f"Conv{ndim}d", f"InstanceNorm{ndim}d"})
    mapped = rows[-1] if decoder else rows[0]  # a map: batch, channels, one size per dimension
    assert len(mapped[1].split(",")) == 2 + ndim
    with torch.device("meta"):
        model = entry.create(ndim=ndim)
    assert out.splitlines()[0] == f"{name}: {type(model).__name__}, input {list(entry.input_sizes[ndim])}, batch -1"
    assert total_params(out) == count(model)


DEMO_CLASSES = {"conv": "ConvModern", "plain": "BlockPlain", "bottleneck": "BlockBottleneck", "unet": "UNet"}
"""The class each demo builds, from the sources (the registry's tests did this while the demos were registered)."""


@pytest.mark.parametrize(
    "name, ndim", [pytest.param(name, ndim, id=f"{name}-{ndim}d") for name in DEMOS for ndim in DEMOS[name].ndims]
)
def test_every_demo_builds_its_class_and_runs_its_default_input_on_meta(name, ndim):
    entry = DEMOS[name]
    assert entry.ndims == (1, 2, 3) and entry.name == name
    size = entry.input_size(ndim)
    assert len(size) == 1 + ndim
    with torch.device("meta"):
        model = entry.create(ndim=ndim)
    assert type(model) is getattr(blocks, f"{DEMO_CLASSES[name]}{ndim}d") and model.ndim == ndim
    assert all(p.device.type == "meta" for p in model.parameters()) and count(model) > 0
    y = model(torch.empty(2, *size, device="meta"))
    stride = entry.defaults(ndim).get("stride", 1)
    strides = (stride,) * ndim if isinstance(stride, int) else tuple(stride)
    assert tuple(y.shape) == (2, model.out_planes, *(-(-n // s) for n, s in zip(size[1:], strides)))
    assert entry.input_size() == entry.input_size(2)
    with torch.device("meta"):
        assert type(entry.create()) is getattr(blocks, f"{DEMO_CLASSES[name]}2d")  # 2-D by default


def test_resnet18_in_1d_has_a_conv1d_stem(capsys):
    assert main(["summary", "resnet18", "--ndim", "1", "--input", "3", "4096"]) == 0
    out = capsys.readouterr().out
    assert table_rows(out)[:3] == [
        ("Conv1d-1", "[-1, 64, 2048]", "1,344"),  # 3 x 64 x 7, no bias
        ("BatchNorm1d-2", "[-1, 64, 2048]", "128"),
        ("ReLU-3", "[-1, 64, 2048]", "0"),
    ]
    assert total_params(out) == count(blocks.resnet18(ndim=1))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ndim", "3", "--input", "1", "64", "64"], "--input takes 4 ints with --ndim 3 (C D H W), got 3: 1 64 64"),
        (["--input", "1", "64", "64", "64"], "--input takes 3 ints with --ndim 2 (C H W), got 4: 1 64 64 64 (if 1 is "
                                            "the batch, pass it as --batch 1; for 3 sizes, --ndim 3)"),
        (["--ndim", "1", "--input", "1"], "--input takes 2 ints with --ndim 1 (C L), got 1: 1"),
        (["--input", "1", "0", "64"], "--input sizes must be positive, got 1 0 64"),
        (["--set", "ndim=3"], "argument --set: the dimension is set with --ndim, not --set ndim=..."),
        (["--ndim", "4"], "argument --ndim: invalid choice: 4 (choose from 1, 2, 3)"),
    ],
)
def test_a_wrong_input_or_dimension_is_a_clean_error(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["summary", "unet", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.rstrip().endswith(f"error: {message}"), err
    assert "Traceback" not in err


def test_no_arguments_is_still_the_2d_grey_unet(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "unet: UNet2d, input [1, 512, 512], batch 4"
    assert re.match(r" +Conv2d-1 +\[4, 64, 512, 512\] +640$", out[4])
    assert out[-3:] == [
        "encoder  64@512  128@256  256@128  512@64  1024@32",
        "decoder  512@64  256@128  128@256  64@512",
        "output   2@512",
    ]


def test_list_shows_the_models_of_the_asked_dimension(capsys):
    assert main(["list"]) == 0
    two = capsys.readouterr().out.splitlines()
    assert two[0] == DEMOS_HEADING
    assert two[1] == "conv         ConvModern2d(16, 32)  (input [16, 64, 64])"
    assert two[3] == ("bottleneck   BlockBottleneck2d(16, 32, stride=(1, 2)), the example of MDNC's docs  "
                      "(input [16, 4, 255])")
    assert two[5:8] == ["", REGISTERED_HEADING, "resnet18     ResNet(2, 2, 2, 2), plain blocks  (input [3, 224, 224])"]
    assert main(["list", "--ndim", "3"]) == 0
    three = capsys.readouterr().out.splitlines()
    assert three[4] == ("unet         UNet3d(in_planes=1, out_planes=2): grey volumes to a 2-class map  "
                        "(input [1, 64, 64, 64])")
    assert three[5:7] == ["", REGISTERED_HEADING]
    assert three[7] == "resnet18     ResNet(2, 2, 2, 2), plain blocks, ndim=3  (input [3, 16, 112, 112])"
    assert main(["list", "--ndim", "1"]) == 0
    one = capsys.readouterr().out.splitlines()
    assert one[3] == "bottleneck   BlockBottleneck1d(16, 32, stride=2)  (input [16, 255])"


def test_the_module_docstring_examples_run_and_its_doctests_pass(capsys):
    import doctest
    import shlex

    import blocks.__main__ as cli

    examples = re.findall(r"^ {4}python -m blocks(.*?)(?: +#.*)?$", cli.__doc__, re.MULTILINE)
    assert "summary unet --ndim 3 --input 1 64 64 64" in [e.strip() for e in examples]
    for example in examples:
        assert main(shlex.split(example)) == 0, example
    capsys.readouterr()
    results = doctest.testmod(cli)  # pytest's --doctest-modules skips __main__.py
    assert results.failed == 0 and results.attempted >= 2
