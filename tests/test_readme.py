"""The README opens with the two commands, and .ci/run runs the test command verbatim."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commands():
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_opens_with_the_main_job_and_the_test_command():
    main_job, tests = commands()[:2]
    assert main_job.endswith("python -m blocks") and "pip install -e ." in main_job
    assert "pip install -e '.[test]'" in tests and "-m pytest" in tests


def test_ci_runs_the_readme_test_command_verbatim():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert commands()[1] in ci_lines


def test_readme_usage_examples_run(capsys):
    """The Python blocks of the README run, in order, in one namespace."""
    examples = re.findall(r"```python\n(.+?)\n```", (ROOT / "README.md").read_text(), re.DOTALL)
    assert len(examples) == 2
    namespace = {}
    for example in examples:
        exec(compile(example, "README.md", "exec"), namespace)
    assert "Total params: 3,792" in capsys.readouterr().out
    assert type(namespace["deep"]).__name__ == "EncoderNet3d" and type(namespace["again"]).__name__ == "EncoderNet2d"


def test_readme_command_line_examples_run(capsys):
    import shlex

    from blocks.__main__ import main

    bash_blocks = re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text(), re.DOTALL)
    block = next(b for b in bash_blocks if b.startswith("python -m blocks list"))
    examples = [shlex.split(line, comments=True)[3:] for line in block.splitlines()]
    assert ["summary", "unet", "--ndim", "3", "--input", "1", "64", "64", "64"] in examples
    for argv in examples:
        assert main(argv) == 0, argv
    assert "UNet3d-" in capsys.readouterr().out


def test_readme_explains_the_install_size_and_the_main_jobs_output(capsys):
    """After the two commands: the CUDA build's size and the CPU wheel (in prose only), then how to read the output."""
    text = (ROOT / "README.md").read_text()
    first_section = text.split("## Usage")[0]
    assert "5.5 GB" in first_section and "CPU" in first_section
    assert "https://download.pytorch.org/whl/cpu" in first_section
    assert not any("download.pytorch.org" in command for command in commands())  # prose only: CI cannot reach it
    assert first_section.index("5.5 GB") > first_section.index(commands()[1])
    from blocks.__main__ import main

    assert main([]) == 0
    out = capsys.readouterr().out
    total = re.search(r"Estimated Total Size \(MB\): ([\d.]+)", out).group(1)
    levels = [line for line in out.splitlines() if line.startswith(("encoder", "decoder", "output"))]
    assert f'"Estimated Total Size (MB):\n{total}"' in first_section or f"Estimated Total Size (MB): {total}" in \
        " ".join(first_section.split())
    assert levels[0].split()[:3] == ["encoder", "64@512", "128@256"]
    assert "`encoder 64@512 128@256 ...`" in first_section and "`output 2@512`" in first_section
