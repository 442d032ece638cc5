"""Tests for blocks/summary.py: torchsummary's table, plus the model's own row, computed on meta."""

from __future__ import annotations

import contextlib
import doctest
import importlib
import io
import math
import sys
import time
import warnings

import pytest
import torch
import torchsummary
import torchvision
from torch import nn

from blocks.summary import summary

MB = 1024**2

EXPECTED_BOTTLENECK = """\
----------------------------------------------------------------
        Layer (type)               Output Shape         Param #
================================================================
    InstanceNorm2d-1           [-1, 16, 4, 255]              32
             PReLU-2           [-1, 16, 4, 255]              16
            Conv2d-3           [-1, 16, 4, 255]             256
    InstanceNorm2d-4           [-1, 16, 4, 255]              32
             PReLU-5           [-1, 16, 4, 255]              16
            Conv2d-6           [-1, 16, 4, 128]           2,304
    InstanceNorm2d-7           [-1, 16, 4, 128]              32
             PReLU-8           [-1, 16, 4, 128]              16
            Conv2d-9           [-1, 32, 4, 128]             512
           Conv2d-10           [-1, 32, 4, 128]             512
   InstanceNorm2d-11           [-1, 32, 4, 128]              64
BlockBottleneck2d-12           [-1, 32, 4, 128]               0
================================================================
Total params: 3,792
Trainable params: 3,792
Non-trainable params: 0
----------------------------------------------------------------
Input size (MB): 0.06
Forward/backward pass size (MB): 1.31
Params size (MB): 0.01
Estimated Total Size (MB): 1.39
----------------------------------------------------------------
"""


# ------------------------------------------------------------------------------------------ models


class BlockBottleneck2d(nn.Module):
    """Hand-made copy of the example block of docs/bottleneck.md (16 -> 32 channels, stride (1, 2))."""

    def __init__(self) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            nn.InstanceNorm2d(16, affine=True),
            nn.PReLU(16),
            nn.Conv2d(16, 16, 1, bias=False),
            nn.InstanceNorm2d(16, affine=True),
            nn.PReLU(16),
            nn.Conv2d(16, 16, 3, stride=(1, 2), padding=1, bias=False),
            nn.InstanceNorm2d(16, affine=True),
            nn.PReLU(16),
            nn.Conv2d(16, 32, 1, bias=False),
        )
        self.shortcut = nn.Sequential(
            nn.Conv2d(16, 32, 1, stride=(1, 2), bias=False), nn.InstanceNorm2d(32, affine=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.branch(x) + self.shortcut(x)


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Sequential(nn.Conv2d(8, 16, 3), nn.ReLU()),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)).flatten(1))


class CalledTwice(nn.Module):
    """``shared`` runs twice: two rows, but its parameters count once in the totals."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(12, 20)
        self.shared = nn.Linear(20, 20)
        self.act = nn.ReLU()
        self.out = nn.Linear(20, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.shared(self.act(self.inp(x))))
        return self.out(self.act(self.shared(x)))


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Conv2d(3, 4, 3)
        self.vector = nn.Linear(5, 4)

    def forward(self, image: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
        return self.image(image).mean((2, 3)) + self.vector(vector)


class TupleAndNone(nn.Module):
    """A child returning (tensor, None, {'skip': tensor}) and a child returning None."""

    class Split(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)

        def forward(self, x: torch.Tensor):
            return self.conv(x), None, {"skip": x}

    class Nothing(nn.Module):
        def forward(self, x: torch.Tensor) -> None:
            return None

    def __init__(self) -> None:
        super().__init__()
        self.split = self.Split()
        self.nothing = self.Nothing()

    def forward(self, x: torch.Tensor):
        y, _, skips = self.split(x)
        self.nothing(y)
        return y, skips["skip"]


class NeedsItem(nn.Module):
    """Cannot run on meta: its forward reads a value (``.item()``)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        keep = y.shape[-1] - int((y.sum() * 0).item())
        return y[..., :keep]


def conv_net(depth: int, channels: int = 16) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(1, channels, 3, padding=1)]
    for _ in range(depth - 1):
        layers += [nn.BatchNorm2d(channels), nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1)]
    return nn.Sequential(*layers)


# ----------------------------------------------------------------------------------------- helpers


def quiet_summary(*args, **kwargs) -> str:
    with contextlib.redirect_stdout(io.StringIO()):
        return summary(*args, **kwargs)


def stock_summary(model: nn.Module, input_size) -> str:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        torchsummary.summary(model, input_size, device="cpu")
    return buffer.getvalue()


def rows(table: str) -> list[str]:
    lines = [line.rstrip() for line in table.splitlines()]
    first = lines.index("=" * 64)
    second = lines.index("=" * 64, first + 1)
    return lines[first + 1 : second]


def field(table: str, label: str) -> str:
    (line,) = [line for line in table.splitlines() if line.startswith(label + ": ")]
    return line.split(": ", 1)[1]


def count(table: str, label: str) -> int:
    return int(field(table, label).replace(",", ""))


def numel(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def snapshot(model: nn.Module) -> dict:
    return {
        "devices": [p.device for p in model.parameters()],
        "training": [m.training for m in model.modules()],
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "hooks": hooks(model),
    }


def hooks(model: nn.Module) -> list:
    return [
        (list(m._forward_hooks.items()), list(m._forward_pre_hooks.items()))
        for m in model.modules()
    ]


def assert_untouched(model: nn.Module, before: dict) -> None:
    assert [p.device for p in model.parameters()] == before["devices"]
    assert [m.training for m in model.modules()] == before["training"]
    assert [p.requires_grad for p in model.parameters()] == before["requires_grad"]
    assert hooks(model) == before["hooks"]  # none added, none left behind
    state = model.state_dict()
    assert state.keys() == before["state"].keys()
    for key, value in before["state"].items():
        assert state[key].device == value.device
        assert torch.equal(state[key], value), key
    assert all(p.grad is None for p in model.parameters())


# ------------------------------------------------------------------------------------------- tests


def test_design_example_table_exactly() -> None:
    table = quiet_summary(BlockBottleneck2d(), (16, 4, 255))
    got = [line.rstrip() for line in table.splitlines()]
    assert got == EXPECTED_BOTTLENECK.splitlines()


def test_prints_and_returns_the_same_string(capsys: pytest.CaptureFixture[str]) -> None:
    table = summary(BlockBottleneck2d(), (16, 4, 255))
    assert capsys.readouterr().out == table + "\n"
    assert table.endswith("-" * 64)


@pytest.mark.parametrize(
    ("build", "size"),
    [
        (SmallCNN, (3, 32, 32)),
        (lambda: torchvision.models.resnet18(weights=None), (3, 224, 224)),
        (CalledTwice, (12,)),
        (BlockBottleneck2d, (16, 4, 255)),
    ],
    ids=["small-cnn", "resnet18", "called-twice", "bottleneck"],
)
def test_rows_match_torchsummary_plus_model_row(build, size) -> None:
    torch.manual_seed(0)
    model = build()
    ours = rows(quiet_summary(model, size))
    stock = rows(stock_summary(model, size))
    assert ours[:-1] == stock
    name, *_ = ours[-1].split()
    assert name == f"{type(model).__name__}-{len(ours)}"


@pytest.mark.parametrize(
    ("build", "size"),
    [
        (SmallCNN, (3, 32, 32)),
        (CalledTwice, (12,)),
        (BlockBottleneck2d, (16, 4, 255)),
        (lambda: torchvision.models.resnet18(weights=None), (3, 64, 64)),
    ],
    ids=["small-cnn", "called-twice", "bottleneck", "resnet18"],
)
def test_totals_equal_parameter_count(build, size) -> None:
    model = build()
    table = quiet_summary(model, size)
    assert count(table, "Total params") == numel(model)
    assert count(table, "Trainable params") == numel(model)
    assert count(table, "Non-trainable params") == 0
    assert field(table, "Params size (MB)") == f"{numel(model) * 4 / MB:0.2f}"


def test_resnet18_totals() -> None:
    table = quiet_summary(torchvision.models.resnet18(weights=None), (3, 224, 224))
    assert count(table, "Total params") == 11_689_512
    assert rows(table)[-1].split() == ["ResNet-69", "[-1,", "1000]", "0"]


def test_module_called_twice_gets_two_rows_and_counts_once() -> None:
    model = CalledTwice()
    table = quiet_summary(model, (12,))
    names = [row.split()[0] for row in rows(table)]
    assert names == [
        "Linear-1", "ReLU-2", "Linear-3", "ReLU-4", "Linear-5", "ReLU-6", "Linear-7",
        "CalledTwice-8",
    ]
    params = [row.split()[-1] for row in rows(table)]
    assert params == ["260", "0", "420", "0", "420", "0", "63", "0"]
    assert count(table, "Total params") == 260 + 420 + 63 == numel(model)


def test_frozen_parameters_are_non_trainable() -> None:
    model = SmallCNN()
    for parameter in model.features.parameters():
        parameter.requires_grad_(False)
    frozen = sum(p.numel() for p in model.features.parameters())
    table = quiet_summary(model, (3, 32, 32))
    assert count(table, "Total params") == numel(model)
    assert count(table, "Trainable params") == numel(model) - frozen
    assert count(table, "Non-trainable params") == frozen
    assert all(not p.requires_grad for p in model.features.parameters())


def test_row_params_are_the_modules_own_parameters() -> None:
    class OwnsScale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(7))
            self.conv = nn.Conv2d(7, 7, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x) * self.scale[:, None, None]

    table = quiet_summary(OwnsScale(), (7, 5, 5))
    assert [row.split()[-1] for row in rows(table)] == ["56", "7"]
    assert count(table, "Total params") == 63


def test_model_itself_is_last_row_even_when_sequential() -> None:
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.Sequential(nn.ReLU()))  # inner: skipped
    table = quiet_summary(model, (1, 28, 28))
    assert [row.split()[0] for row in rows(table)] == ["Conv2d-1", "ReLU-2", "Sequential-3"]
    assert rows(table)[-1] == "        Sequential-3            [-1, 8, 28, 28]               0"


def test_model_is_left_untouched() -> None:
    torch.manual_seed(0)
    model = SmallCNN()  # train mode: BatchNorm would update its running statistics
    model.head.eval()
    before = snapshot(model)
    quiet_summary(model, (3, 32, 32))
    quiet_summary(model, (3, 32, 32), batch_size=3, device="cpu")
    assert_untouched(model, before)
    assert model.training and not model.head.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_model_in_eval_mode_stays_in_eval_mode() -> None:
    model = torchvision.models.resnet18(weights=None).eval()
    before = snapshot(model)
    quiet_summary(model, (3, 64, 64))
    assert_untouched(model, before)


def test_user_hooks_are_kept_and_not_duplicated() -> None:
    model = SmallCNN()
    handle = model.head.register_forward_hook(lambda module, args, output: None)
    quiet_summary(model, (3, 32, 32))
    assert list(model.head._forward_hooks) == [handle.id]
    handle.remove()


def test_real_weights_are_never_deep_copied(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self, memo):
        raise AssertionError("summary() deep-copied a real parameter")

    monkeypatch.setattr(nn.Parameter, "__deepcopy__", refuse)
    table = quiet_summary(torchvision.models.resnet18(weights=None), (3, 64, 64))
    assert count(table, "Total params") == 11_689_512


def test_huge_input_needs_no_activation_memory_and_sizes_do_not_overflow() -> None:
    # 4 x 64 x 100k x 100k floats would be ~10 TB: only possible because nothing is computed.
    table = quiet_summary(nn.Conv2d(1, 64, 3), (1, 100_000, 100_000), batch_size=4)
    assert rows(table)[0].split() == ["Conv2d-1", "[4,", "64,", "99998,", "99998]", "640"]
    outputs = 4 * 64 * 99_998**2  # one row: the model is the conv itself
    assert field(table, "Forward/backward pass size (MB)") == f"{2 * outputs * 4 / MB:0.2f}"
    assert field(table, "Input size (MB)") == f"{4 * 100_000**2 * 4 / MB:0.2f}"


def test_batch_size_shows_in_shapes_and_scales_sizes() -> None:
    table = quiet_summary(BlockBottleneck2d(), (16, 4, 255), batch_size=4)
    assert all(row.split()[1] == "[4," for row in rows(table))
    assert rows(table)[-1].split() == ["BlockBottleneck2d-12", "[4,", "32,", "4,", "128]", "0"]
    per_sample_outputs = 5 * 16 * 4 * 255 + 3 * 16 * 4 * 128 + 4 * 32 * 4 * 128
    input_mb = 4 * 16 * 4 * 255 * 4 / MB
    forward_mb = 2 * 4 * per_sample_outputs * 4 / MB
    params_mb = 3792 * 4 / MB
    assert field(table, "Input size (MB)") == f"{input_mb:0.2f}" == "0.25"
    assert field(table, "Forward/backward pass size (MB)") == f"{forward_mb:0.2f}" == "5.24"
    assert field(table, "Params size (MB)") == "0.01"
    assert field(table, "Estimated Total Size (MB)") == f"{input_mb + forward_mb + params_mb:0.2f}"
    assert count(table, "Total params") == 3792


def test_multiple_inputs() -> None:
    model = TwoInputs()
    table = quiet_summary(model, [(3, 8, 8), (5,)])
    assert rows(table) == [
        "            Conv2d-1              [-1, 4, 6, 6]             112",
        "            Linear-2                    [-1, 4]              24",
        "         TwoInputs-3                    [-1, 4]               0",
    ]
    assert field(table, "Input size (MB)") == f"{(3 * 8 * 8 + 5) * 4 / MB:0.2f}"
    table4 = quiet_summary(model, [(3, 8, 8), (5,)], batch_size=4)
    assert rows(table4)[0].split()[1] == "[4,"
    assert count(table4, "Total params") == 136 == numel(model)


def test_dtypes_per_input() -> None:
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(100, 8)
            self.mix = nn.Linear(8 + 3, 2)

        def forward(self, tokens: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
            assert tokens.dtype == torch.long and extra.dtype == torch.float64
            return self.mix(torch.cat([self.embed(tokens), extra.float()], dim=-1))

    table = quiet_summary(Tagger(), [(6,), (6, 3)], dtypes=[torch.long, torch.float64])
    assert [row.split()[0] for row in rows(table)] == ["Embedding-1", "Linear-2", "Tagger-3"]
    assert rows(table)[1].split()[1:] == ["[-1,", "6,", "2]", "24"]


def test_tuple_and_none_outputs() -> None:
    table = quiet_summary(TupleAndNone(), (3, 5, 5))
    assert rows(table) == [
        "            Conv2d-1              [-1, 4, 5, 5]              16",
        "             Split-2  [[-1, 4, 5, 5], [], [[-1, 3, 5, 5]]]               0",
        "           Nothing-3                         []               0",
        "      TupleAndNone-4  [[-1, 4, 5, 5], [-1, 3, 5, 5]]               0",
    ]
    elements = (4 * 25) + (4 * 25 + 3 * 25) + 0 + (4 * 25 + 3 * 25)
    assert field(table, "Forward/backward pass size (MB)") == f"{2 * elements * 4 / MB:0.2f}"


def test_stock_torchsummary_and_ours_agree_on_sizes_when_rows_are_leaves() -> None:
    # Our extra model row is the only difference in the forward/backward estimate.
    model = SmallCNN()
    ours = quiet_summary(model, (3, 32, 32))
    stock = stock_summary(model, (3, 32, 32))
    for label in ("Input size (MB)", "Params size (MB)", "Total params", "Trainable params"):
        assert field(ours, label) == field(stock, label)
    stock_outputs = float(field(stock, "Forward/backward pass size (MB)"))
    assert float(field(ours, "Forward/backward pass size (MB)")) == pytest.approx(
        stock_outputs + 2 * 10 * 4 / MB, abs=0.006
    )


def test_big_input_is_fast() -> None:
    quiet_summary(conv_net(2), (1, 8, 8))  # pay torch's one-time lazy imports outside the clock
    model = conv_net(20)
    start = time.perf_counter()
    table = quiet_summary(model, (1, 512, 512), batch_size=4)
    assert time.perf_counter() - start < 5
    assert len(rows(table)) == 20 + 19 * 2 + 1
    assert rows(table)[-1].split() == ["Sequential-59", "[4,", "16,", "512,", "512]", "0"]


def test_device_argument_is_accepted_and_does_not_change_the_table() -> None:
    model = SmallCNN()
    reference = quiet_summary(model, (3, 32, 32))
    for device in ("cpu", torch.device("cpu"), "cuda"):
        assert quiet_summary(model, (3, 32, 32), device=device) == reference


def test_lazy_modules_are_materialised_only_in_the_copy() -> None:
    model = nn.Sequential(nn.LazyConv2d(8, 3), nn.Flatten(), nn.LazyLinear(5))
    table = quiet_summary(model, (3, 8, 8))
    assert [row.split()[-1] for row in rows(table)] == ["224", "0", "1,445", "0"]
    assert count(table, "Total params") == 224 + 1445
    assert isinstance(model[0].weight, nn.parameter.UninitializedParameter)


def test_weight_norm_and_spectral_norm() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the old weight_norm is deprecated
        conv = nn.utils.weight_norm(nn.Conv2d(3, 4, 3))
    model = nn.Sequential(conv, nn.utils.spectral_norm(nn.Conv2d(4, 4, 3)))
    before = snapshot(model)
    table = quiet_summary(model, (3, 8, 8))
    assert [row.split()[0] for row in rows(table)] == ["Conv2d-1", "Conv2d-2", "Sequential-3"]
    assert count(table, "Total params") == numel(model)
    assert_untouched(model, before)


def test_falls_back_with_a_warning_when_meta_is_impossible() -> None:
    model = NeedsItem()
    before = snapshot(model)
    with pytest.warns(RuntimeWarning, match="cannot run on the meta device.*item"):
        table = quiet_summary(model, (1, 6, 6))
    assert rows(table) == [
        "            Conv2d-1              [-1, 2, 6, 6]              20",
        "         NeedsItem-2              [-1, 2, 6, 6]               0",
    ]
    assert_untouched(model, before)


def test_a_broken_forward_raises_the_real_error_with_a_note() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 1))
    before = snapshot(model)
    with pytest.warns(RuntimeWarning), pytest.raises(RuntimeError, match="channels") as info:
        quiet_summary(model, (2, 8, 8))
    if sys.version_info >= (3, 11):  # exception notes
        assert any("meta device" in note for note in info.value.__notes__)
    assert_untouched(model, before)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_size": (3, 8, 8), "batch_size": 0}, "batch_size"),
        ({"input_size": (3, 8, 8), "batch_size": -2}, "batch_size"),
        ({"input_size": (3, 8, 8), "batch_size": 2.0}, "batch_size"),
        ({"input_size": "3x8x8"}, "input_size"),
        ({"input_size": [(3, 8, 8), "x"]}, "input_size"),
        ({"input_size": []}, "input_size"),
        ({"input_size": (3, 8, 8), "dtypes": [torch.float32, torch.float32]}, "dtypes"),
        ({"input_size": (3, 8, 8), "dtypes": ["float32"]}, "dtypes"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        quiet_summary(SmallCNN(), **kwargs)


def test_list_input_size_of_ints_is_one_input() -> None:
    model = SmallCNN()
    assert quiet_summary(model, [3, 32, 32]) == quiet_summary(model, (3, 32, 32))
    assert quiet_summary(model, torch.Size([3, 32, 32])) == quiet_summary(model, (3, 32, 32))


def test_docstring_example_runs() -> None:
    module = importlib.import_module("blocks.summary")
    result = doctest.testmod(module, verbose=False)
    assert result.attempted > 0 and result.failed == 0


def test_a_single_layer_model_is_its_own_only_row() -> None:
    table = quiet_summary(nn.Linear(10, 10), (10,))
    assert field(table, "Input size (MB)") == "0.00"
    assert math.isclose(float(field(table, "Estimated Total Size (MB)")), 0.0, abs_tol=0.005)
    assert rows(table) == ["            Linear-1                   [-1, 10]             110"]
