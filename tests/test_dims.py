"""1-D and 3-D follow exactly the 2-D rules (docs/scaling.md, and "In 1-D and 3-D" on each block's page).

The same grid of blocks is checked in 1-D, 2-D and 3-D: output shapes, parameter counts, the order
of the leaf layers and their torch classes, the up-sampling rule of the shortcut, ``output_size``
at call time; then the layer factories, ``Upsample``, ResNet and the U-Net in 1-D and 3-D,
randomized configurations (hypothesis), and the error messages of bad arguments and inputs.

Expected values come from these rules (the sizes: docs/scaling.md), never from running the code under test:
down-scaling with an odd kernel and padding ``(k - 1) // 2`` gives ``ceil(n / stride)``;
up-scaling gives ``n * stride`` or exactly ``output_size``; a conv has ``prod(k) * in * out``
weights (and ``out`` biases without a normalizer); a norm with affine parameters has 2 per
channel; PReLU has one per channel.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

import blocks
from blocks import (
    BlockBottleneck,
    BlockBottleneck1d,
    BlockBottleneck3d,
    BlockPlain,
    BlockPlain1d,
    BlockPlain2d,
    BlockPlain3d,
    ConvModern,
    ConvModern1d,
    ConvModern3d,
    ResNet,
    UNet,
    UNet1d,
    UNet3d,
    Upsample,
    resnet18,
)
from blocks.layers import (
    NORMALIZERS,
    make_activator,
    make_normalizer,
    register_normalizer,
)

pytestmark = pytest.mark.usefixtures("one_thread")

NDIMS = (1, 2, 3)
MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}
SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}
WHAT = {1: "a 1-tuple", 2: "a pair", 3: "a triple"}


# ---- expected values, derived from the rules (not from the code under test) -------------------------

NORM_PARAMS = {"batch": 2, "inst": 0, "pinst": 2, "group": 2, "layer": 2, "null": 0, None: 0}  # per channel
ACT_PARAMS = {"prelu": 1, "relu": 0, "gelu": 0, "silu": 0, "leaky": 0, "elu": 0, "null": 0, None: 0}
ACT_CLASS = {"prelu": "PReLU", "relu": "ReLU", "gelu": "GELU", "silu": "SiLU", "leaky": "LeakyReLU", "elu": "ELU"}


def name_of(spec):
    return spec[0] if isinstance(spec, tuple) else spec


def is_null(spec):
    return name_of(spec) in (None, "null")


def norm_class(spec, nd):
    """The torch class name of a normalizer in ``nd`` dimensions (None for no layer)."""
    return {
        "batch": f"BatchNorm{nd}d", "inst": f"InstanceNorm{nd}d", "pinst": f"InstanceNorm{nd}d",
        "group": "GroupNorm", "layer": "GroupNorm", "null": None, None: None,
    }[name_of(spec)]


def per_dim(value, nd):
    return (value,) * nd if isinstance(value, int) else tuple(value)


def unit_params(cin, cout, kvol, norm, act, order):
    """norm/act on the input channels in 'new' order with a norm; on the output channels otherwise."""
    c = cin if order == "new" and not is_null(norm) else cout
    conv = cin * cout * kvol + (cout if is_null(norm) else 0)
    return conv + NORM_PARAMS[name_of(norm)] * c + ACT_PARAMS[name_of(act)] * c


def block_units(block, cin, cout, hidden, kvol):
    """(in, out, kernel volume, scales) of each unit of the branch."""
    if block == "plain":
        return [(cin, hidden, kvol, False), (hidden, cout, kvol, True)]
    return [(cin, hidden, 1, False), (hidden, hidden, kvol, True), (hidden, cout, 1, False)]


def block_params(block, cin, cout, kvol, norm, act, order, scales, hidden=None):
    units = block_units(block, cin, cout, cin if hidden is None else hidden, kvol)
    total = sum(unit_params(i, o, k, norm, act, order) for i, o, k, _ in units[:-1])
    i, o, k, _ = units[-1]
    if order == "new":
        total += unit_params(i, o, k, norm, act, order)
    else:  # the last unit has no activation; one activation follows the sum, on cout channels
        total += unit_params(i, o, k, norm, None, order) + ACT_PARAMS[name_of(act)] * cout
    if cin != cout or scales:  # projection: 1x1 conv (bias without norm) -> norm(out)
        total += cin * cout + (cout if is_null(norm) else 0) + NORM_PARAMS[name_of(norm)] * cout
    return total


def unit_names(nd, norm, act, order, up):
    n, a = norm_class(norm, nd), ACT_CLASS.get(name_of(act))
    u, c = (["Upsample"] if up else []), [f"Conv{nd}d"]
    if order == "new" and n is not None:
        return [n] + ([a] if a else []) + u + c
    return u + c + ([n] if n else []) + ([a] if a else [])


def block_names(block, nd, norm, act, order, scaler, upsamples, projects):
    """Leaf layers in execution order: branch units, shortcut, [activation after the sum in 'old' order]."""
    units = block_units(block, 1, 1, 1, 1)
    names = []
    for index, (_, _, _, scaling) in enumerate(units):
        last = index == len(units) - 1
        names += unit_names(nd, norm, None if last and order == "old" else act, order, scaling and upsamples)
    if projects:
        names += (["Upsample"] if upsamples else []) + [f"Conv{nd}d"]
        names += [norm_class(norm, nd)] if norm_class(norm, nd) else []
    if order == "old" and ACT_CLASS.get(name_of(act)):
        names.append(ACT_CLASS[name_of(act)])
    return names


def expected_shape(size, stride, scaler, output_size):
    if scaler == "down":
        return tuple(math.ceil(n / s) for n, s in zip(size, stride))
    return tuple(output_size) if output_size is not None else tuple(n * s for n, s in zip(size, stride))


def leaf_calls(model, *args, **kwargs):
    """The leaf modules in the order their forward finished (execution order of the leaves), and the output."""
    calls = []
    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(lambda mod, i, o: calls.append(mod)) for m in leaves]
    try:
        out = model(*args, **kwargs)
    finally:
        for h in hooks:
            h.remove()
    return calls, out


def n_params(model):
    return sum(p.numel() for p in model.parameters())


# ---- the grid: every dimension x block x order x scaling x normalizer -------------------------------

SIZES = {1: (9,), 2: (7, 10), 3: (3, 5, 6)}
TUPLE_STRIDE = {1: (3,), 2: (1, 2), 3: (1, 2, 2)}
OUTPUT_SIZE = {1: (13,), 2: (13, 21), 3: (5, 9, 11)}
TUPLE_KERNEL = {1: (5,), 2: (3, 5), 3: (5, 1, 3)}
SCALINGS = {  # name -> (scaler, stride (None: the tuple of the dimension), output_size given)
    "down1": ("down", 1, False),
    "down2": ("down", 2, False),
    "down-tuple": ("down", None, False),
    "up1": ("up", 1, False),
    "up2": ("up", 2, False),
    "up-tuple": ("up", None, False),
    "up-size": ("up", 2, True),
    "up1-size": ("up", 1, True),
}
GRID_NORMALIZERS = {"pinst": "pinst", "batch": "batch", "none": None, "group2": ("group", {"num_groups": 2})}
CLASSES = {"plain": BlockPlain, "bottleneck": BlockBottleneck}
NAMED = {
    ("plain", 1): BlockPlain1d, ("plain", 2): BlockPlain2d, ("plain", 3): BlockPlain3d,
    ("bottleneck", 1): BlockBottleneck1d, ("bottleneck", 2): blocks.BlockBottleneck2d,
    ("bottleneck", 3): BlockBottleneck3d,
}


@pytest.mark.parametrize("norm_id", list(GRID_NORMALIZERS))
@pytest.mark.parametrize("scaling", list(SCALINGS))
@pytest.mark.parametrize("order", ["new", "old"])
@pytest.mark.parametrize("block", ["plain", "bottleneck"])
@pytest.mark.parametrize("nd", NDIMS)
def test_grid_shapes_params_layers_and_classes(nd, block, order, scaling, norm_id):
    norm = GRID_NORMALIZERS[norm_id]
    scaler, stride_arg, sized = SCALINGS[scaling]
    stride_arg = TUPLE_STRIDE[nd] if stride_arg is None else stride_arg
    stride = per_dim(stride_arg, nd)
    output_size = OUTPUT_SIZE[nd] if sized else None
    upsamples = scaler == "up" and (any(s != 1 for s in stride) or sized)
    scales = any(s != 1 for s in stride) or sized
    size = SIZES[nd]
    for kernel in (3, TUPLE_KERNEL[nd]):
        k = per_dim(kernel, nd)
        padding = tuple((kk - 1) // 2 for kk in k)
        for cin, cout in ((4, 4), (4, 6)):
            block_ = NAMED[block, nd](
                cin, cout, kernel, stride_arg, padding, output_size, norm, "prelu", order, scaler
            )
            assert type(block_).__name__ == f"Block{block.capitalize()}{nd}d" and block_.ndim == nd
            calls, y = leaf_calls(block_, torch.randn(2, cin, *size))
            case = (kernel, cin, cout)
            assert y.shape == (2, cout, *expected_shape(size, stride, scaler, output_size)), case
            assert n_params(block_) == block_params(block, cin, cout, math.prod(k), norm, "prelu", order, scales), case
            projects = cin != cout or scales
            assert [type(m).__name__ for m in calls] == block_names(
                block, nd, norm, "prelu", order, scaler, upsamples, projects
            ), case
            # torch classes of the right dimension, and only those
            for m in block_.modules():
                if isinstance(m, nn.modules.conv._ConvNd):
                    assert type(m) is getattr(nn, f"Conv{nd}d") and len(m.kernel_size) == nd
                if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)):
                    assert type(m).__name__ == norm_class(norm, nd)
                if isinstance(m, Upsample):
                    assert (m.mode, m.align_corners) == (MODES[nd], True)
            # the scaling unit: the conv's stride when 'down'; stride 1 after the Upsample when 'up'
            scaling_unit = block_.branch[1]
            assert scaling_unit.conv.stride == (stride if scaler == "down" else (1,) * nd)
            assert all(u.conv.stride == (1,) * nd for i, u in enumerate(block_.branch) if i != 1)
            # Upsample in branch and shortcut exactly when up-scaling with a stride != 1 or an output_size
            assert ("up" in scaling_unit._modules) == upsamples
            assert not any("up" in u._modules for i, u in enumerate(block_.branch) if i != 1)
            if projects:
                assert ("up" in block_.shortcut._modules) == upsamples
                # a 1x1 conv with few input channels subsamples its input instead (blocks.conv.subsamples)
                shortcut_stride = block_.shortcut.subsample or block_.shortcut.conv.stride
                assert shortcut_stride == (stride if scaler == "down" else (1,) * nd)
                assert block_.shortcut.conv.kernel_size == (1,) * nd
            else:
                assert block_.shortcut is None


@pytest.mark.parametrize("act", ["relu", "gelu", None])
@pytest.mark.parametrize("order", ["new", "old"])
@pytest.mark.parametrize("nd", [1, 3])
def test_other_activators_follow_the_same_counts_and_order(nd, act, order):
    for block in ("plain", "bottleneck"):
        m = CLASSES[block](4, 6, stride=2, normalizer="pinst", activator=act, layer_order=order, ndim=nd)
        calls, y = leaf_calls(m, torch.randn(2, 4, *SIZES[nd]))
        assert y.shape == (2, 6, *expected_shape(SIZES[nd], (2,) * nd, "down", None))
        assert n_params(m) == block_params(block, 4, 6, 3**nd, "pinst", act, order, True)
        assert [type(c).__name__ for c in calls] == block_names(block, nd, "pinst", act, order, "down", False, True)
        if order == "old" and act is not None:
            assert type(m.activation).__name__ == ACT_CLASS[act]
        else:
            assert m.activation is None


@pytest.mark.parametrize("nd", NDIMS)
@pytest.mark.parametrize("block", ["plain", "bottleneck"])
def test_output_size_at_call_time_overrides_the_constructor(nd, block):
    size = SIZES[nd]
    other = {1: (17,), 2: (15, 19), 3: (4, 7, 8)}[nd]
    for built_size in (None, OUTPUT_SIZE[nd]):
        m = CLASSES[block](4, 2, stride=2, output_size=built_size, scaler="up", ndim=nd)
        x = torch.randn(2, 4, *size)
        default = OUTPUT_SIZE[nd] if built_size else tuple(2 * n for n in size)
        assert m(x).shape == (2, 2, *default)
        assert m(x, output_size=other).shape == (2, 2, *other)
        assert m(x, other).shape == (2, 2, *other)
    if nd == 1:  # an int is one size per dimension
        assert BlockPlain1d(4, 2, stride=2, scaler="up")(torch.randn(2, 4, 5), output_size=11).shape == (2, 2, 11)
    unit = ConvModern(4, 2, stride=3, scaler="up", ndim=nd)
    assert unit(torch.randn(1, 4, *size)).shape == (1, 2, *(3 * n for n in size))
    assert unit(torch.randn(1, 4, *size), output_size=other).shape == (1, 2, *other)


@pytest.mark.parametrize("nd", [1, 3])
def test_up_with_stride_one_and_no_size_adds_no_upsampling(nd):
    same = BlockBottleneck(4, 4, scaler="up", ndim=nd)
    assert same.shortcut is None and not any(isinstance(m, nn.Upsample) for m in same.modules())
    wider = BlockPlain(4, 6, scaler="up", ndim=nd)
    assert [type(m).__name__ for m in wider.shortcut] == [f"Conv{nd}d", f"InstanceNorm{nd}d"]
    assert not any(isinstance(m, nn.Upsample) for m in wider.modules())
    assert wider(torch.randn(2, 4, *SIZES[nd])).shape == (2, 6, *SIZES[nd])


@pytest.mark.parametrize("nd", [1, 3])
def test_generic_and_named_classes_build_the_same_block(nd):
    named = NAMED["bottleneck", nd]
    torch.manual_seed(0)
    a = named(4, 6, stride=2)
    torch.manual_seed(0)
    b = BlockBottleneck(4, 6, stride=2, ndim=nd)
    c = named(4, 6, stride=2, ndim=nd)  # the named class accepts its own dimension
    assert (a.ndim, b.ndim, c.ndim) == (nd, nd, nd)
    assert a.state_dict().keys() == b.state_dict().keys() == c.state_dict().keys()
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert [type(u).__name__ for u in a.branch] == [f"ConvModern{nd}d"] * 3


@pytest.mark.parametrize("nd", [1, 3])
def test_summary_lists_the_leaf_layers_of_the_dimension(nd):
    size = SIZES[nd]
    block = BlockBottleneck(4, 6, stride=TUPLE_STRIDE[nd], scaler="up", ndim=nd)
    table = blocks.summary(block, (4, *size))
    rows = re.findall(r"^\s*(\w+)-\d+\s+\[-1, ([\d, ]+)\]", table, flags=re.MULTILINE)
    names = block_names("bottleneck", nd, "pinst", "prelu", "new", "up", True, True)
    assert [name for name, _ in rows] == [*names, "BlockBottleneck"]
    out = (6, *(n * s for n, s in zip(size, TUPLE_STRIDE[nd])))
    assert tuple(int(v) for v in rows[-1][1].split(",")) == out
    total = block_params("bottleneck", 4, 6, 3**nd, "pinst", "prelu", "new", True)
    assert f"Total params: {total:,}" in table


# ---- layers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nd", NDIMS)
def test_registered_normalizers_build_the_class_of_the_dimension(nd):
    batch, inst, pinst = (make_normalizer(name, 4, ndim=nd) for name in ("batch", "inst", "pinst"))
    assert type(batch) is getattr(nn, f"BatchNorm{nd}d") and batch.num_features == 4
    assert type(inst) is getattr(nn, f"InstanceNorm{nd}d") and not inst.affine
    assert type(pinst) is getattr(nn, f"InstanceNorm{nd}d") and pinst.affine
    group = make_normalizer(("group", {"num_groups": 2}), 4, ndim=nd)
    layer = make_normalizer("layer", 4, ndim=nd)
    assert (type(group), group.num_groups, type(layer), layer.num_groups) == (nn.GroupNorm, 2, nn.GroupNorm, 1)
    assert make_normalizer(None, 4, ndim=nd) is None and make_normalizer("null", 4, ndim=nd) is None
    prelu = make_activator("prelu", 4, ndim=nd)
    assert type(prelu) is nn.PReLU and prelu.num_parameters == 4
    assert make_activator(None, 4, ndim=nd) is None


def test_a_factory_declaring_ndim_receives_it():
    seen = []

    def norm(channels, ndim):
        seen.append(("norm", channels, ndim))
        return getattr(nn, f"BatchNorm{ndim}d")(channels)

    def act(channels, ndim):
        seen.append(("act", channels, ndim))
        return nn.PReLU(channels)

    assert type(make_normalizer(norm, 5, ndim=1)) is nn.BatchNorm1d
    assert type(make_activator(act, 5, ndim=3)) is nn.PReLU
    assert seen == [("norm", 5, 1), ("act", 5, 3)]

    seen.clear()
    block = BlockPlain3d(2, 4, normalizer=norm, activator=act)  # 'new' order: norm/act on each unit's input
    assert sorted(seen) == sorted([("norm", 2, 3), ("act", 2, 3), ("norm", 2, 3), ("act", 2, 3), ("norm", 4, 3)])
    assert block(torch.randn(2, 2, 3, 4, 5)).shape == (2, 4, 3, 4, 5)
    assert {type(m) for m in block.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)} == {nn.BatchNorm3d}

    seen.clear()
    BlockBottleneck1d(2, 4, normalizer=norm, activator=act, layer_order="old")
    # 'old' order: norms on the outputs, the last unit without act, one act after the sum, shortcut norm(out)
    expected = [("norm", 2, 1), ("act", 2, 1), ("norm", 2, 1), ("act", 2, 1), ("norm", 4, 1), ("act", 4, 1),
                ("norm", 4, 1)]
    assert sorted(seen) == sorted(expected)


def test_a_registered_factory_declaring_ndim_receives_it_with_its_kwargs():
    seen = []

    def factory(channels, ndim, **kwargs):
        seen.append((channels, ndim, kwargs))
        return getattr(nn, f"InstanceNorm{ndim}d")(channels, **kwargs)

    register_normalizer("test_dims_norm", factory)
    try:
        m = BlockPlain1d(3, 3, normalizer=("test_dims_norm", {"affine": True}))
        assert seen == [(3, 1, {"affine": True})] * 2
        assert all(type(u.norm) is nn.InstanceNorm1d and u.norm.affine for u in m.branch)
    finally:
        del NORMALIZERS["test_dims_norm"]


def test_a_factory_without_ndim_still_works():
    block = BlockPlain1d(4, 6, stride=2, normalizer=nn.BatchNorm1d, activator=nn.PReLU)
    norms = [m for m in block.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert [type(m) for m in norms] == [nn.BatchNorm1d] * 3 and [m.num_features for m in norms] == [4, 4, 6]
    assert block(torch.randn(2, 4, 9)).shape == (2, 6, 5)
    assert n_params(block) == block_params("plain", 4, 6, 3, "batch", "prelu", "new", True)
    assert type(make_normalizer(nn.BatchNorm3d, 4, ndim=3)) is nn.BatchNorm3d
    assert type(make_normalizer(lambda c: nn.GroupNorm(1, c), 4, ndim=1)) is nn.GroupNorm


# ---- Upsample -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nd", NDIMS)
def test_upsample_mode_follows_the_input_rank(nd):
    x = torch.randn(1, 2, *SIZES[nd])
    y = Upsample(scale_factor=2)(x)
    assert y.shape == (1, 2, *(2 * n for n in SIZES[nd]))
    assert torch.allclose(y, F.interpolate(x, scale_factor=2.0, mode=MODES[nd], align_corners=True))
    if nd != 2:  # the mode is really the rank's: bilinear is not even defined on this rank
        with pytest.raises((NotImplementedError, ValueError, RuntimeError)):
            F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)
    fixed = Upsample(scale_factor=2, ndim=nd)
    assert fixed.mode == MODES[nd] and torch.allclose(fixed(x), y)
    to_size = Upsample(size=OUTPUT_SIZE[nd])(x)
    assert torch.allclose(to_size, F.interpolate(x, size=OUTPUT_SIZE[nd], mode=MODES[nd], align_corners=True))
    per_dimension = Upsample(scale_factor=TUPLE_STRIDE[nd])(x)
    assert per_dimension.shape == (1, 2, *(n * s for n, s in zip(SIZES[nd], TUPLE_STRIDE[nd])))


def test_upsample_takes_keywords_only():
    with pytest.raises(TypeError):
        Upsample(2)
    with pytest.raises(TypeError):
        Upsample(None, 2)


# ---- ResNet in 1-D and 3-D ------------------------------------------------------------------------------

TORCHVISION_COUNTS = {  # torchvision's (docs/resnet.md)
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808,
}
ARCHS = {
    "resnet18": ((2, 2, 2, 2), "plain"), "resnet34": ((3, 4, 6, 3), "plain"),
    "resnet50": ((3, 4, 6, 3), "bottleneck"), "resnet101": ((3, 4, 23, 3), "bottleneck"),
    "resnet152": ((3, 8, 36, 3), "bottleneck"),
}


def resnet_params(layers, block, nd, in_planes=3, num_classes=1000, order="old"):
    """torchvision's architecture with k x k kernels made k**nd; batch norms (2 per channel), ReLU."""
    k3, expansion = 3**nd, 4 if block == "bottleneck" else 1
    total = in_planes * 64 * 7**nd + (2 * 64 if order == "old" else 0)  # stem; in 'new' order the conv alone
    planes = 64
    for index, (depth, width) in enumerate(zip(layers, (64, 128, 256, 512))):
        out = width * expansion
        for j in range(depth):
            cin, stride = (planes, 1 if index == 0 else 2) if j == 0 else (out, 1)
            if block == "plain":  # hidden = out
                convs = [(cin, out, k3), (out, out, k3)]
            else:  # hidden = out // 4 = width
                convs = [(cin, width, 1), (width, width, k3), (width, out, 1)]
            for i, o, k in convs:
                total += i * o * k + 2 * (o if order == "old" else i)
            if cin != out or stride != 1:
                total += cin * out + 2 * out
        planes = out
    if order == "new":
        total += 2 * planes  # norm_act after the last stage
    if num_classes:
        total += planes * num_classes + num_classes
    return total


def feature_maps(model, x):
    """The 5 maps of a ResNet: the stem's output, then each stage's (timm's forward_intermediates, else
    0.1.0's forward_features list)."""
    if hasattr(model, "forward_intermediates"):
        return model.forward_intermediates(x, intermediates_only=True)
    return model.forward_features(x)


def test_the_parameter_formula_reproduces_torchvision_in_2d():
    for name, (layers, block) in ARCHS.items():
        assert resnet_params(layers, block, 2) == TORCHVISION_COUNTS[name], name


@pytest.mark.parametrize("nd", [1, 3])
@pytest.mark.parametrize("name", list(ARCHS))
def test_resnet_parameter_counts_follow_the_formula(name, nd):
    layers, block = ARCHS[name]
    with torch.device("meta"):
        model = getattr(blocks, name)(ndim=nd)
        flat = getattr(blocks, name)()
    assert n_params(model) == resnet_params(layers, block, nd)
    # only the kernels change with the dimension: same keys, same shapes but the kernel dims
    conv_diff = sum(
        m.in_channels * m.out_channels * (math.prod(m.kernel_size) - m.kernel_size[0] ** 2)
        for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)
    )
    assert n_params(model) - n_params(flat) == conv_diff
    ours, theirs = model.state_dict(), flat.state_dict()
    assert list(ours) == list(theirs)
    for key, value in ours.items():
        if value.dim() >= 3:  # conv weights
            assert value.shape[:2] == theirs[key].shape[:2] and value.shape[2:] == (theirs[key].shape[2],) * nd, key
        else:
            assert value.shape == theirs[key].shape, key


@pytest.mark.parametrize("nd", [1, 3])
@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_pre_activation_resnet_parameter_counts(name, nd):
    layers, block = ARCHS[name]
    with torch.device("meta"):
        model = getattr(blocks, name)(ndim=nd, layer_order="new", in_planes=1, num_classes=7)
    assert n_params(model) == resnet_params(layers, block, nd, in_planes=1, num_classes=7, order="new")


@pytest.mark.parametrize("nd", [1, 3])
def test_resnet_stem_pool_and_layer_classes(nd):
    with torch.device("meta"):
        model = blocks.resnet50(ndim=nd)
    conv = model.stem.conv
    assert type(conv) is getattr(nn, f"Conv{nd}d")
    assert (conv.kernel_size, conv.stride, conv.padding) == ((7,) * nd, (2,) * nd, (3,) * nd)
    assert type(model.stem.norm) is getattr(nn, f"BatchNorm{nd}d") and type(model.stem.act) is nn.ReLU
    pool = model.pool
    assert type(pool) is getattr(nn, f"MaxPool{nd}d")
    assert (pool.kernel_size, pool.stride, pool.padding) == (3, 2, 1)
    assert type(model.avgpool) is getattr(nn, f"AdaptiveAvgPool{nd}d")
    kinds = {type(m) for m in model.modules() if isinstance(m, (nn.modules.conv._ConvNd, nn.modules.batchnorm._NormBase))}
    assert kinds == {getattr(nn, f"Conv{nd}d"), getattr(nn, f"BatchNorm{nd}d")}
    # stride on the 3x3 of the first bottleneck of stages 2-4
    assert [u.conv.stride for u in model.layer2[0].branch] == [(1,) * nd, (2,) * nd, (1,) * nd]


def resnet_feature_shapes(size, channels):
    return [(c, *(math.ceil(n / r) for n in size)) for c, r in zip(channels, (2, 4, 8, 16, 32))]


@pytest.mark.parametrize("nd, size", [(1, (70,)), (3, (9, 16, 20))])
def test_resnet18_runs_in_1d_and_3d(nd, size):
    torch.manual_seed(0)
    model = resnet18(ndim=nd, in_planes=1, num_classes=5)
    x = torch.randn(2, 1, *size)
    maps = feature_maps(model, x)
    assert [tuple(f.shape[1:]) for f in maps] == resnet_feature_shapes(size, (64, 64, 128, 256, 512))
    assert [f["reduction"] for f in model.feature_info] == [2, 4, 8, 16, 32]
    assert [f["num_chs"] for f in model.feature_info] == [64, 64, 128, 256, 512]
    assert model(x).shape == (2, 5)


def test_resnet50_3d_feature_shapes_on_meta():
    size = (33, 64, 20)
    with torch.device("meta"):
        model = blocks.resnet50(ndim=3, num_classes=None)
        maps = feature_maps(model, torch.empty(1, 3, *size))
        last = model(torch.empty(1, 3, *size))
    assert [tuple(f.shape[1:]) for f in maps] == resnet_feature_shapes(size, (64, 256, 512, 1024, 2048))
    assert tuple(last.shape) == (1, 2048, *(math.ceil(n / 32) for n in size))


# ---- U-Net in 1-D and 3-D -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, size", [(UNet1d, (37,)), (UNet1d, (5,)), (UNet3d, (5, 6, 7)), (UNet3d, (1, 2, 5)), (UNet3d, (6, 1, 1))]
)
def test_unet_any_size_in_that_size_out(cls, size):
    torch.manual_seed(0)
    net = cls(out_planes=2, channels=(2, 4, 8), layers=1)
    x = torch.randn(2, 1, *size)
    assert net(x).shape == (2, 2, *size)
    assert [tuple(f.shape[1:]) for f in net.encode(x)] == [
        (c, *(math.ceil(n / 2**i) for n in size)) for i, c in enumerate((2, 4, 8))
    ]
    nd = len(size)
    assert type(net.head.conv) is getattr(nn, f"Conv{nd}d") and net.min_size == 5
    assert all(type(m) is getattr(nn, f"Conv{nd}d") for m in net.modules() if isinstance(m, nn.modules.conv._ConvNd))


@pytest.mark.parametrize("cls, size", [(UNet1d, (4,)), (UNet3d, (4, 4, 4)), (UNet3d, (1, 3, 2))])
def test_unet_too_small_names_the_class(cls, size):
    net = cls(channels=(2, 4, 8), layers=1)
    sides = {1: "length", 3: "depth, height or width"}[len(size)]
    shape = str((1, 1, *size)).replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(ValueError, match=rf"{cls.__name__} needs an input of {sides} >= 5 .* got input of shape {shape}"):
        net(torch.randn(1, 1, *size))
    with pytest.raises(ValueError, match=rf"{cls.__name__} needs an input of {sides} >= 5"):
        net.encode(torch.randn(1, 1, *size))


def test_unet3d_on_a_3d_resnet18_encoder():
    torch.manual_seed(0)
    encoder = resnet18(ndim=3, in_planes=1, num_classes=None)
    net = UNet3d(encoder=encoder)
    assert net.encoder is encoder and net.channels == (64, 64, 128, 256, 512) and net.in_planes == 1
    assert net.min_size == 33
    x = torch.randn(1, 1, 4, 5, 33)
    assert net.eval()(x).shape == (1, 1, 4, 5, 33)
    assert UNet(encoder=encoder).ndim == 3  # the generic class takes the encoder's dimension


def test_unet3d_refuses_a_2d_encoder():
    with torch.device("meta"):
        encoder = resnet18(in_planes=1, num_classes=None)
    with pytest.raises(ValueError, match=r"encoder=ResNet is 2-D; this U-Net is 3-D"):
        UNet3d(encoder=encoder)
    with pytest.raises(ValueError, match=r"encoder=ResNet is 2-D; this U-Net is 1-D"):
        UNet(encoder=encoder, ndim=1)


# ---- hypothesis -----------------------------------------------------------------------------------------

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROUND_TRIP_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HYPO_NORMALIZERS = ["batch", "inst", "pinst", "group", "layer", None, ("group", {"num_groups": 2})]
HYPO_ACTIVATORS = ["prelu", "relu", "gelu", None]


def per_dim_ints(nd, values):
    """An int or one value per dimension."""
    return st.one_of(st.sampled_from(values), st.tuples(*[st.sampled_from(values)] * nd))


@st.composite
def block_configs(draw, max_size=9):
    nd = draw(st.sampled_from(NDIMS))
    scaler = draw(st.sampled_from(["down", "up"]))
    output_size = None
    if scaler == "up" and draw(st.booleans()):
        output_size = draw(st.tuples(*[st.integers(2, 12)] * nd))
    config = {
        "block": draw(st.sampled_from(["plain", "bottleneck"])),
        "in_planes": draw(st.sampled_from([1, 2, 4, 6])),
        "out_planes": draw(st.sampled_from([1, 2, 4, 6])),
        "kernel_size": draw(per_dim_ints(nd, [1, 3, 5])),
        "stride": draw(per_dim_ints(nd, [1, 2, 3])),
        "output_size": output_size,
        "normalizer": draw(st.sampled_from(HYPO_NORMALIZERS)),
        "activator": draw(st.sampled_from(HYPO_ACTIVATORS)),
        "layer_order": draw(st.sampled_from(["new", "old"])),
        "scaler": scaler,
        "ndim": nd,
    }
    size = draw(st.tuples(*[st.integers(2, max_size)] * nd))
    return config, size


def build(config):
    args = dict(config)
    kernel = per_dim(args["kernel_size"], args["ndim"])
    args["padding"] = tuple((k - 1) // 2 for k in kernel)
    return CLASSES[args.pop("block")](**args)


def config_shape_and_params(config, size):
    nd, stride = config["ndim"], per_dim(config["stride"], config["ndim"])
    out = expected_shape(size, stride, config["scaler"], config["output_size"])
    # instance-like norms need more than one value per channel: skip sizes torch itself refuses
    assume(math.prod(out) > 1 and math.prod(math.ceil(n / s) for n, s in zip(size, stride)) > 1)
    scales = any(s != 1 for s in stride) or config["output_size"] is not None
    params = block_params(
        config["block"], config["in_planes"], config["out_planes"], math.prod(per_dim(config["kernel_size"], nd)),
        config["normalizer"], config["activator"], config["layer_order"], scales,
    )
    return out, params


@SETTINGS
@given(block_configs())
def test_random_blocks_follow_the_shape_and_parameter_rules_on_meta(case):
    config, size = case
    out, params = config_shape_and_params(config, size)
    with torch.device("meta"):
        block = build(config)
        y = block(torch.empty(2, config["in_planes"], *size))
    assert y.shape == (2, config["out_planes"], *out)
    assert n_params(block) == params
    nd = config["ndim"]
    assert all(type(m) is getattr(nn, f"Conv{nd}d") for m in block.modules() if isinstance(m, nn.modules.conv._ConvNd))


@ROUND_TRIP_SETTINGS
@given(block_configs(max_size=4), st.integers(0, 2**16))
def test_random_blocks_survive_a_state_dict_round_trip(case, seed):
    config, size = case
    out, _ = config_shape_and_params(config, size)
    torch.manual_seed(seed)
    first = build(config)
    torch.manual_seed(seed + 1)
    second = build(config)
    state = first.state_dict()
    assert any(not torch.equal(v, second.state_dict()[k]) for k, v in state.items() if k.endswith("conv.weight"))
    result = second.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(2, config["in_planes"], *size)
    for mode in (True, False):
        first.train(mode)
        second.train(mode)
        with torch.no_grad():
            y = first(x)
            assert y.shape == (2, config["out_planes"], *out)
            assert torch.equal(second(x), y), f"training={mode}"


@st.composite
def unet_configs(draw):
    nd = draw(st.sampled_from(NDIMS))
    channels = tuple(draw(st.lists(st.sampled_from([2, 3, 4]), min_size=2, max_size=3)))
    size = draw(st.tuples(*[st.integers(1, 11)] * nd))
    return {
        "channels": channels,
        "layers": draw(st.integers(1, 2)),
        "block": draw(st.sampled_from(["plain", "bottleneck"])),
        "kernel_size": draw(per_dim_ints(nd, [1, 3])),
        "layer_order": draw(st.sampled_from(["new", "old"])),
        "ndim": nd,
    }, size


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(unet_configs())
def test_random_unets_give_exactly_the_input_size_on_meta(case):
    config, size = case
    nd, levels = config["ndim"], len(config["channels"])
    min_size = 2 ** (levels - 1) + 1
    with torch.device("meta"):
        net = UNet(in_planes=2, out_planes=3, **config)
        x = torch.empty(1, 2, *size)
        if all(n < min_size for n in size):
            with pytest.raises(ValueError, match=rf"{type(net).__name__} needs an input of .* >= {min_size}"):
                net(x)
            return
        y = net(x)
        features = net.encode(x)
    assert net.ndim == nd and net.min_size == min_size
    assert y.shape == (1, 3, *size)
    assert [tuple(f.shape[1:]) for f in features] == [
        (c, *(math.ceil(n / 2**i) for n in size)) for i, c in enumerate(config["channels"])
    ]


# ---- bad arguments and bad inputs -------------------------------------------------------------------------


def shape_re(shape):
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


ARGUMENT_CASES = {
    "stride of 2 values in 1-D": (lambda: BlockPlain1d(2, 4, stride=(1, 2)),
                                  r"stride=\(1, 2\) must be an int >= 1 or a 1-tuple of such ints"),
    "stride of 2 values in 3-D": (lambda: BlockBottleneck3d(2, 4, stride=(1, 2)),
                                  r"stride=\(1, 2\) must be an int >= 1 or a triple of such ints"),
    "stride of 4 values in 3-D": (lambda: ConvModern3d(2, 4, stride=(1, 2, 2, 2)),
                                  r"stride=\(1, 2, 2, 2\) must be an int >= 1 or a triple of such ints"),
    "output_size of 2 values in 3-D": (lambda: BlockPlain3d(2, 4, output_size=(3, 4), scaler="up"),
                                       r"output_size=\(3, 4\) must be an int >= 1 or a triple of such ints"),
    "output_size of 2 values in 1-D": (lambda: ConvModern1d(2, 4, output_size=(3, 4), scaler="up"),
                                       r"output_size=\(3, 4\) must be an int >= 1 or a 1-tuple of such ints"),
    "kernel of 2 values in 1-D": (lambda: BlockBottleneck1d(2, 4, kernel_size=(3, 3), padding=1),
                                  r"kernel_size=\(3, 3\) must be an int >= 1 or a 1-tuple of such ints"),
    "even kernel in a 1-D block": (lambda: BlockPlain1d(2, 4, kernel_size=4, padding=2),
                                   (r"kernel_size=4 with padding=2 changes the size in the branch but not in the "
                                    r"shortcut; a residual block needs an odd kernel_size")),
    "even kernel in a 3-D block": (lambda: BlockBottleneck3d(2, 4, kernel_size=(3, 2, 3), padding=1),
                                   r"kernel_size=\(3, 2, 3\) with padding=1 changes the size"),
    "even kernel in UNet1d": (lambda: UNet1d(kernel_size=4), r"kernel_size=4 must be odd \(an int or a 1-tuple\)"),
    "even kernel in UNet3d": (lambda: UNet3d(kernel_size=(3, 3, 2)),
                              r"kernel_size=\(3, 3, 2\) must be odd \(an int or a triple\)"),
    "UNet3d kernel of 2 values": (lambda: UNet3d(kernel_size=(3, 3)),
                                  r"kernel_size=\(3, 3\) must be an int >= 1 or a triple of such ints"),
    "BlockPlain2d with ndim=3": (lambda: BlockPlain2d(2, 4, ndim=3),
                                 r"BlockPlain2d is 2-D; got ndim=3 \(use the generic class, or leave ndim out\)"),
    "ConvModern3d with ndim=1": (lambda: ConvModern3d(2, 4, ndim=1), r"ConvModern3d is 3-D; got ndim=1"),
    "UNet1d with ndim=3": (lambda: UNet1d(ndim=3), r"UNet1d is 1-D; got ndim=3"),
    "BlockPlain ndim=4": (lambda: BlockPlain(2, 4, ndim=4),
                          r"ndim=4 is not allowed; use one of \[1, 2, 3\] \(the number of spatial dimensions\)"),
    "BlockBottleneck ndim=0": (lambda: BlockBottleneck(2, 4, ndim=0), r"ndim=0 is not allowed; use one of \[1, 2, 3\]"),
    "ConvModern ndim='3'": (lambda: ConvModern(2, 4, ndim="3"), r"ndim='3' is not allowed"),
    "UNet ndim=4": (lambda: UNet(ndim=4), r"ndim=4 is not allowed"),
    "ResNet ndim=4": (lambda: ResNet([1, 1, 1, 1], ndim=4), r"ndim=4 is not allowed"),
    "resnet18 ndim=True": (lambda: resnet18(ndim=True), r"ndim=True is not allowed"),
    "Upsample ndim=4": (lambda: Upsample(scale_factor=2, ndim=4), r"ndim=4 is not allowed"),
    "Upsample scale of 2 values in 3-D": (lambda: Upsample(scale_factor=(1, 2), ndim=3),
                                          r"scale_factor=\(1, 2\) must be an int >= 1 or a triple of such ints"),
}


@pytest.mark.parametrize("case", list(ARGUMENT_CASES))
def test_bad_arguments(case):
    build_, message = ARGUMENT_CASES[case]
    with pytest.raises(ValueError, match=message):
        build_()


INPUT_CASES = {  # module, input shape, expected message
    "4-D into BlockPlain3d": (lambda: BlockPlain3d(2, 4), (1, 2, 3, 4), "BlockPlain3d", "(B, 2, D, H, W)"),
    "wrong channels into BlockPlain3d": (lambda: BlockPlain3d(2, 4), (1, 3, 3, 4, 5), "BlockPlain3d",
                                         "(B, 2, D, H, W)"),
    "4-D into BlockBottleneck1d": (lambda: BlockBottleneck1d(2, 4), (1, 2, 5, 5), "BlockBottleneck1d", "(B, 2, L)"),
    "wrong channels into BlockPlain1d": (lambda: BlockPlain1d(2, 4), (1, 4, 5), "BlockPlain1d", "(B, 2, L)"),
    "2-D into ConvModern1d": (lambda: ConvModern1d(2, 4), (2, 5), "ConvModern1d", "(B, 2, L)"),
    "4-D into ConvModern3d": (lambda: ConvModern3d(2, 4), (1, 2, 5, 5), "ConvModern3d", "(B, 2, D, H, W)"),
    "generic 3-D block, 1-D input": (lambda: BlockPlain(2, 4, ndim=3), (1, 2, 5), "BlockPlain", "(B, 2, D, H, W)"),
    "wrong channels into UNet3d": (lambda: UNet3d(channels=(2, 4), layers=1), (1, 2, 5, 6, 7), "UNet3d",
                                   "(B, 1, D, H, W)"),
    "4-D into UNet1d": (lambda: UNet1d(channels=(2, 4), layers=1), (1, 1, 5, 6), "UNet1d", "(B, 1, L)"),
    "5-D into a 1-D ResNet": (lambda: ResNet([1, 1, 1, 1], "plain", in_planes=1, ndim=1), (1, 1, 9, 9, 9), "ResNet",
                              "(B, 1, L)"),
    "wrong channels into a 3-D ResNet": (lambda: ResNet([1, 1, 1, 1], "plain", in_planes=1, ndim=3), (1, 2, 9, 9, 9),
                                         "ResNet", "(B, 1, D, H, W)"),
}


@pytest.mark.parametrize("case", list(INPUT_CASES))
def test_bad_inputs_name_the_class_and_both_shapes(case):
    build_, shape, name, expected = INPUT_CASES[case]
    with torch.device("meta"):
        module = build_()
    expected = expected.replace("(", r"\(").replace(")", r"\)")
    # a wrong channel count also names in_planes (issue 30)
    planes = rf": its channel count is {shape[1]}, but it was built with in_planes=\d+ .*" if "channels" in case else ""
    with pytest.raises(ValueError, match=rf"^{name} expects input of shape {expected}, got {shape_re(shape)}{planes}$"):
        module(torch.empty(shape, device="meta"))


@pytest.mark.parametrize(
    "module, size, value, message",
    [
        (lambda: BlockPlain3d(2, 4, stride=2, scaler="up"), (3, 4, 5), (3, 4),
         r"BlockPlain3d got output_size=\(3, 4\); it must be None, an int >= 1 or a triple \(d, h, w\) of them"),
        (lambda: BlockBottleneck1d(2, 4, stride=2, scaler="up"), (5,), (7, 7),
         r"BlockBottleneck1d got output_size=\(7, 7\); it must be None, an int >= 1 or a 1-tuple \(l,\) of them"),
        (lambda: ConvModern3d(2, 4, stride=2, scaler="up"), (3, 4, 5), (0, 4, 4),
         r"ConvModern3d got output_size=\(0, 4, 4\)"),
        (lambda: BlockPlain1d(2, 4), (5,), 7,
         r"output_size=\(7,\) given to a BlockPlain1d that does not up-scale"),
    ],
)
def test_bad_output_size_at_call_time(module, size, value, message):
    block = module()
    with pytest.raises(ValueError, match=message):
        block(torch.randn(1, 2, *size), output_size=value)


# ---- a network checks its input once ----------------------------------------------------------------------


@pytest.mark.parametrize("nd", [1, 3])
def test_networks_check_at_their_boundary_and_parts_keep_their_checks(nd):
    """No flag is flipped on a network's parts: a block taken out of a network still checks its input."""
    nets = [ResNet([1, 1, 1, 1], "plain", in_planes=1, ndim=nd), UNet(channels=(2, 4), layers=1, ndim=nd)]
    for net in nets:
        assert not any(hasattr(m, "checks_input") for m in net.modules())
        with pytest.raises(ValueError, match=rf"^{type(net).__name__} expects input of shape \(B, 1, "):
            net(torch.randn(1, 3, *[40] * nd))
        block = next(m for m in net.modules() if isinstance(m, (BlockPlain, BlockBottleneck)))
        wrong = block.in_planes + 1
        with pytest.raises(ValueError, match=rf"^{type(block).__name__} expects input of shape \(B, {block.in_planes}, "):
            block(torch.randn(1, wrong, *[8] * nd))
        unit = block.branch[0]
        with pytest.raises(ValueError, match=rf"^{type(unit).__name__} expects input of shape \(B, {unit.in_planes}, "):
            unit(torch.randn(1, wrong, *[8] * nd))
