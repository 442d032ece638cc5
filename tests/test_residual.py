"""Tests of blocks.residual: BlockPlain2d and BlockBottleneck2d against MDNC's definition."""

import itertools
import re

import pytest
import torch
from torch import nn

from blocks import BlockBottleneck2d, BlockPlain2d, summary

# ---- expected values, derived from the definitions (not from the code under test) -----------------

NORM_PARAMS = {"batch": 2, "inst": 0, "pinst": 2, None: 0}  # per channel
ACT_PARAMS = {"prelu": 1, "relu": 0, None: 0}  # per channel


def unit_params(cin, cout, k, norm, act, order):
    """norm/act act on the input channels in 'new' order, on the output channels in 'old' order.

    Without a normalizer the unit is conv (with bias) -> act in either order (MDNC), so act is on the output.
    """
    c = cin if order == "new" and norm is not None else cout
    conv = cin * cout * k * k + (cout if norm is None else 0)
    return conv + NORM_PARAMS[norm] * c + ACT_PARAMS[act] * c


def block_params(block, cin, cout, k, norm, act, order, scales):
    if block == "plain":
        units = [(cin, cin, k), (cin, cout, k)]
    else:
        units = [(cin, cin, 1), (cin, cin, k), (cin, cout, 1)]
    total = sum(unit_params(i, o, kk, norm, act, order) for i, o, kk in units[:-1])
    i, o, kk = units[-1]
    if order == "new":
        total += unit_params(i, o, kk, norm, act, order)
    else:  # last unit without its activation; the activation follows the sum, on cout channels
        total += unit_params(i, o, kk, norm, None, order) + ACT_PARAMS[act] * cout
    if cin != cout or scales:
        total += cin * cout + (cout if norm is None else 0) + NORM_PARAMS[norm] * cout
    return total


def out_size(size, k, p, scaling):
    kind, stride, output_size = scaling
    if kind == "down":
        return tuple((n + 2 * p - k) // s + 1 for n, s in zip(size, stride))
    if output_size is not None:
        return output_size
    return tuple(n * s for n, s in zip(size, stride))


SCALINGS = {
    "down1": ("down", (1, 1), None),
    "down2": ("down", (2, 2), None),
    "down12": ("down", (1, 2), None),
    "up2": ("up", (2, 2), None),
    "up_size": ("up", (2, 2), (13, 21)),
}
STRIDE_ARG = {(1, 1): 1, (2, 2): 2, (1, 2): (1, 2)}


@pytest.mark.parametrize("block", ["plain", "bottleneck"])
@pytest.mark.parametrize("norm", ["batch", "inst", "pinst", None])
@pytest.mark.parametrize("act", ["prelu", "relu", None])
@pytest.mark.parametrize("order", ["new", "old"])
@pytest.mark.parametrize("scaling", list(SCALINGS))
def test_shapes_and_parameter_counts(block, norm, act, order, scaling):
    kind, stride, output_size = SCALINGS[scaling]
    cls = BlockPlain2d if block == "plain" else BlockBottleneck2d
    size = (7, 10)
    for (k, p), (cin, cout) in itertools.product([(3, 1), (5, 2)], [(8, 8), (8, 16), (16, 8)]):
        m = cls(cin, cout, k, STRIDE_ARG[stride], p, output_size, norm, act, order, kind)
        y = m(torch.randn(2, cin, *size))
        scales = stride != (1, 1) or output_size is not None
        assert y.shape == (2, cout, *out_size(size, k, p, SCALINGS[scaling])), (k, cin, cout)
        assert sum(q.numel() for q in m.parameters()) == block_params(block, cin, cout, k, norm, act, order, scales)


DESIGN_TABLE = """\
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
----------------------------------------------------------------"""


def lines(text):
    return [" ".join(line.split()) for line in text.strip().splitlines()]


def test_summary_of_the_design_example_is_exact():
    block = BlockBottleneck2d(16, 32, kernel_size=3, stride=(1, 2), padding=1)
    assert lines(summary(block, (16, 4, 255))) == lines(DESIGN_TABLE)


def test_upscaling_reverse_of_the_design_example():
    block = BlockBottleneck2d(32, 16, kernel_size=3, stride=(1, 2), padding=1, output_size=(4, 255), scaler="up")
    assert block(torch.randn(3, 32, 4, 128)).shape == (3, 16, 4, 255)
    names = re.findall(r"^\s*(\w+)-\d+\s", summary(block, (32, 4, 128)), flags=re.MULTILINE)
    assert names == [
        "InstanceNorm2d", "PReLU", "Conv2d",
        "InstanceNorm2d", "PReLU", "Upsample", "Conv2d",
        "InstanceNorm2d", "PReLU", "Conv2d",
        "Upsample", "Conv2d", "InstanceNorm2d",
        "BlockBottleneck2d",
    ]
    assert "Total params: 11,584" in summary(block, (32, 4, 128))


def test_round_trip_255_128_255():
    down = BlockBottleneck2d(16, 32, stride=(1, 2))
    up = BlockBottleneck2d(32, 16, stride=(1, 2), scaler="up")
    x = torch.randn(2, 16, 4, 255)
    y = down(x)
    assert y.shape == (2, 32, 4, 128)
    assert up(y).shape == (2, 16, 4, 256)
    assert up(y, output_size=(4, 255)).shape == x.shape


def modules_after_sum(block):
    """Record the modules that run on the sum (the output of the block's last call before it returns)."""
    calls = []
    hooks = [m.register_forward_hook(lambda mod, i, o: calls.append(mod)) for m in block.modules()]
    block(torch.randn(1, block.in_planes, 6, 6))
    for h in hooks:
        h.remove()
    return calls


@pytest.mark.parametrize("cls", [BlockPlain2d, BlockBottleneck2d])
def test_old_order_activates_after_the_sum(cls):
    block = cls(8, 8, normalizer="batch", activator="relu", layer_order="old")
    calls = modules_after_sum(block)
    assert calls[-1] is block and calls[-2] is block.activation and isinstance(block.activation, nn.ReLU)
    assert not any(isinstance(m, nn.ReLU) for m in block.branch[-1])
    block.eval()
    x = torch.randn(2, 8, 6, 6)
    assert torch.equal(block(x), torch.relu(block.branch(x) + x))


@pytest.mark.parametrize("cls", [BlockPlain2d, BlockBottleneck2d])
def test_new_order_has_nothing_after_the_sum(cls):
    block = cls(8, 16, stride=2)
    assert block.activation is None
    x = torch.randn(2, 8, 6, 6)
    assert torch.equal(block(x), block.branch(x) + block.shortcut(x))
    calls = modules_after_sum(block)
    assert calls[-3:] == [block.shortcut.norm, block.shortcut, block]  # the sum is the last thing


def test_identity_shortcut_when_nothing_changes():
    assert BlockPlain2d(8, 8).shortcut is None
    assert BlockBottleneck2d(8, 16).shortcut is not None
    assert BlockBottleneck2d(8, 8, stride=2, scaler="up").shortcut is not None


def test_projection_without_normalizer_has_a_bias_and_no_norm():
    block = BlockPlain2d(8, 16, normalizer=None)
    assert [type(m).__name__ for m in block.shortcut] == ["Conv2d"]
    assert block.shortcut.conv.bias is not None


def test_hidden_planes_and_scale_first():
    block = BlockBottleneck2d(64, 256, hidden_planes=64, layer_order="old", normalizer="batch", activator="relu")
    assert [u.conv.out_channels for u in block.branch] == [64, 64, 256]
    plain = BlockPlain2d(8, 16, stride=2, hidden_planes=16, scale_first=True)
    assert plain.branch[0].conv.stride == (2, 2) and plain.branch[1].conv.stride == (1, 1)
    assert plain(torch.randn(1, 8, 9, 9)).shape == (1, 16, 5, 5)
    assert BlockPlain2d(8, 16, stride=2).branch[1].conv.stride == (2, 2)
    assert plain.hidden_planes == 16 and BlockPlain2d(8, 16).hidden_planes == 8


def test_attributes_and_aliases():
    block = BlockBottleneck2d(8, 16)
    assert (block.in_planes, block.out_planes, block.in_channels, block.out_channels) == (8, 16, 8, 16)


@pytest.mark.parametrize("cls", [BlockPlain2d, BlockBottleneck2d])
def test_runs_inside_user_models_in_every_mode(cls):
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), cls(8, 16, stride=2, normalizer="batch"), nn.Flatten())
    x = torch.randn(2, 3, 8, 8)
    model(x).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (2, 16 * 4 * 4)
    double = cls(8, 16, stride=2).double()
    assert double(torch.randn(2, 8, 8, 8, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"normalizer": "bn"}, r"normalizer='bn' is not a registered normalizer; valid names: \["),
        ({"activator": "tanh"}, r"activator='tanh' is not a registered activator; valid names: \["),
        ({"layer_order": "pre"}, r"layer_order='pre' is not allowed; use one of \['new', 'old'\]"),
        ({"scaler": "pool"}, r"scaler='pool' is not allowed; use one of \['down', 'up'\]"),
        ({"in_planes": 0}, r"in_planes=0 must be a positive int"),
        ({"out_planes": -1}, r"out_planes=-1 must be a positive int"),
        ({"hidden_planes": 0}, r"hidden_planes=0 must be a positive int"),
        ({"stride": 0}, r"stride=0 must be an int >= 1"),
        ({"stride": (2, -1)}, r"stride=\(2, -1\) must be an int >= 1"),
        ({"padding": 0}, r"kernel_size=3 with padding=0 changes the size"),
        ({"kernel_size": 4, "padding": 2}, r"kernel_size=4 with padding=2"),
        ({"output_size": (8, 8)}, r"output_size=\(8, 8\) needs scaler='up'"),
    ],
)
@pytest.mark.parametrize("cls", [BlockPlain2d, BlockBottleneck2d])
def test_bad_arguments_at_construction(cls, kwargs, message):
    args = {"in_planes": 8, "out_planes": 16, **kwargs}
    with pytest.raises(ValueError, match=message):
        cls(**args)


@pytest.mark.parametrize("cls", [BlockPlain2d, BlockBottleneck2d])
def test_wrong_input_names_block_and_shapes(cls):
    block = cls(8, 16)
    with pytest.raises(ValueError, match=rf"{cls.__name__} expects input of shape \(B, 8, H, W\), got \(2, 4, 5, 5\)"):
        block(torch.randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match=rf"{cls.__name__} expects .* got \(8, 5, 5\)"):
        block(torch.randn(8, 5, 5))


@pytest.mark.parametrize("norm", ["batch", None])
@pytest.mark.parametrize("order", ["new", "old"])
@pytest.mark.parametrize("cls", [BlockPlain2d, BlockBottleneck2d])
def test_in_place_activations_never_touch_the_input_and_keep_gradients(cls, order, norm):
    block = cls(8, 8, normalizer=norm, activator="relu", layer_order=order)
    reference = cls(8, 8, normalizer=norm, activator="relu", layer_order=order)
    reference.load_state_dict(block.state_dict())
    for m in reference.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    in_place = [m.inplace for m in block.modules() if isinstance(m, nn.ReLU)]
    assert all(in_place)  # every act reads a fresh norm or conv output (without a norm: conv -> act)
    x = torch.randn(2, 8, 6, 6)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, y2 = block(x1), reference(x2)
    assert torch.equal(x1.detach(), x)  # the shortcut still sees the untouched input
    assert torch.equal(y1, y2)
    y1.square().sum().backward()
    y2.square().sum().backward()
    assert torch.allclose(x1.grad, x2.grad)


class ExpNorm(nn.Module):
    """A user's normalizer whose backward reads its own output (exp), so nothing may overwrite that output."""

    def __init__(self, planes):
        super().__init__()

    def forward(self, x):
        return x.exp()


@pytest.mark.parametrize("norm", ["batch", "pinst", None])
@pytest.mark.parametrize("order", ["new", "old"])
@pytest.mark.parametrize("cls", [BlockPlain2d, BlockBottleneck2d])
def test_sum_reuses_the_branch_output_like_torchvision(cls, order, norm):
    block = cls(8, 16, normalizer=norm, activator="relu", layer_order=order)
    seen = {}
    last = list(block.branch[-1])[-1]
    last.register_forward_hook(lambda module, args, out: seen.update(ptr=out.data_ptr()))
    x = torch.randn(2, 8, 6, 6, requires_grad=True)
    expected = block.branch(x) + block.shortcut(x)
    if block.activation is not None:
        expected = torch.relu(expected)
    y = block(x)
    if order == "new" and norm is None:  # the branch ends conv -> ReLU, whose backward reads its output
        assert y.data_ptr() != seen["ptr"]
    else:  # no new tensor for the sum (nor for the activation in 'old' order)
        assert y.data_ptr() == seen["ptr"]
    assert torch.allclose(y, expected)
    y.sum().backward()
    assert x.grad is not None


@pytest.mark.parametrize("cls", [BlockPlain2d, BlockBottleneck2d])
def test_sum_is_not_in_place_after_a_user_normalizer(cls):
    block = cls(8, 8, normalizer=ExpNorm, activator="relu", layer_order="old")
    x = torch.randn(2, 8, 6, 6, requires_grad=True)
    y = block(x)
    assert torch.allclose(y, torch.relu(block.branch(x) + x))
    y.square().sum().backward()  # an in-place sum would break ExpNorm's backward
    assert torch.isfinite(x.grad).all()


# ---- the shortcut: built by the stage and handed in, or any module ------------------------------------------


def test_a_plain_conv_shortcut_works():
    """Any module mapping the input to the branch's shape works; a non-up-sampling one gets only ``x``."""
    conv = nn.Conv2d(4, 8, 1, stride=2, bias=False)
    block = BlockPlain2d(4, 8, stride=2, shortcut=conv)
    assert block.shortcut is conv and not block.shortcut_upsamples
    x = torch.randn(2, 4, 9, 9)
    block.eval()
    with torch.no_grad():
        assert torch.equal(block(x), block.branch(x) + conv(x))


def test_an_up_sampling_shortcut_gets_the_output_size():
    from blocks.residual import make_shortcut

    shortcut = make_shortcut(8, 4, 2, None, "batch", "up")
    block = BlockBottleneck2d(8, 4, stride=2, scaler="up", shortcut=shortcut)
    assert block.shortcut_upsamples
    assert block(torch.randn(1, 8, 5, 6), output_size=(9, 11)).shape == (1, 4, 9, 11)


def test_auto_shortcut_is_the_rule_and_none_the_identity():
    from blocks.residual import make_shortcut

    auto = BlockPlain2d(4, 8, stride=2)
    rule = make_shortcut(4, 8, 2, None, "pinst", "down")
    assert [type(m) for m in auto.shortcut] == [type(m) for m in rule]
    assert list(auto.state_dict()) == list(BlockPlain2d(4, 8, stride=2, shortcut="auto").state_dict())
    same = BlockPlain2d(4, 4, shortcut=None)
    assert same.shortcut is None


@pytest.mark.parametrize("value", ["identity", 3, nn.Conv2d])
def test_bad_shortcut_is_refused(value):
    with pytest.raises(ValueError, match=r"shortcut=.* (is not allowed; use 'auto', 'pool', None or an nn.Module|must be 'auto')"):
        BlockPlain2d(4, 8, stride=2, shortcut=value)


def test_the_stage_hands_each_block_its_shortcut():
    from blocks.residual import BlockSpec

    stage = BlockSpec("plain", normalizer="batch").stage(4, 8, depth=2, stride=2)
    assert type(stage[0].shortcut).__name__ == "ConvModern2d" and stage[1].shortcut is None
    assert stage[0].config["shortcut"]["blocks_class"] == "ConvModern2d"  # handed in, recorded as an argument


@pytest.mark.parametrize("kwargs", [{"out_planes": 8}, {"out_planes": 4, "stride": 2}])
def test_identity_shortcut_needs_a_block_that_keeps_its_shape(kwargs):
    with pytest.raises(ValueError, match=r"shortcut=None \(the identity\) needs a block that keeps the channels"):
        BlockPlain2d(4, shortcut=None, **kwargs)
