"""Tests of the command line (blocks/__main__.py)."""

import re
import subprocess
import sys

import pytest

from blocks.__main__ import MODELS, main, parse_value


def total_params(text):
    return int(re.search(r"Total params: ([\d,]+)", text).group(1).replace(",", ""))


def test_list_names_every_model(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in MODELS)
    assert "bottleneck" in out and "plain" in out


def test_summary_of_a_block_with_input_batch_and_settings(capsys):
    assert main(["summary", "bottleneck", "--input", "16", "8", "32", "--batch", "4", "--set", "normalizer=batch",
                 "--set", "stride=2"]) == 0
    out = capsys.readouterr().out
    assert "BatchNorm2d-1" in out and "[4, 32, 4, 16]" in out
    assert total_params(out) == sum(p.numel() for p in MODELS["bottleneck"].build(normalizer="batch").parameters())


def test_bad_setting_is_a_clean_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["summary", "plain", "--set", "normalizer=bn"])
    assert exit_info.value.code == 2
    assert "normalizer='bn' is not a registered normalizer" in capsys.readouterr().err


def test_unknown_model_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["summary", "vgg"])
    assert "invalid choice: 'vgg'" in capsys.readouterr().err


@pytest.mark.parametrize("text, value", [("1", 1), ("(1, 2)", (1, 2)), ("None", None), ("batch", "batch"),
                                         ("('group', {'num_groups': 4})", ("group", {"num_groups": 4}))])
def test_values_are_python_literals_or_strings(text, value):
    assert parse_value(text) == value


def test_python_dash_m_blocks_runs():
    result = subprocess.run([sys.executable, "-m", "blocks", "list"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "bottleneck" in result.stdout
