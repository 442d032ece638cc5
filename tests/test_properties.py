"""Randomized configuration tests (hypothesis) of the blocks, the ResNets and the U-Nets.

Each drawn configuration either is refused at construction with a ValueError that names the bad
argument (and exactly the configurations the rules below refuse are refused), or it builds and
then: gives the output shape of the formula, has finite gradients, and survives a ``state_dict``
round trip into a fresh instance built with the same arguments (identical outputs afterwards).

Expected values come from the definitions in docs/scaling.md, never from the code under test:
down-scaling gives ``floor((n + 2p - k) / s) + 1``; up-scaling gives ``n * s`` or ``output_size``.
Budgets are small (a few dozen examples each) so that the suite stays fast.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from torch import nn

from blocks import BlockBottleneck2d, BlockPlain2d, ConvModern2d

pytestmark = pytest.mark.usefixtures("one_thread")

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NORMALIZERS = [
    "batch",
    "inst",
    "pinst",
    "group",
    "layer",
    "null",
    None,
    ("group", {"num_groups": 2}),
    lambda channels: nn.Identity(),  # a user's normalizer that returns its input as it is
]
ACTIVATORS = ["relu", "prelu", "leaky", "gelu", "silu", "elu", "null", None, ("prelu", {"init": 0.1})]
INSTANCE_LIKE = {"inst", "pinst", "group", "layer"}  # need more than one value per (sample, group)


def pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def norm_name(normalizer):
    return normalizer[0] if isinstance(normalizer, tuple) else normalizer


def ints_or_pairs(lo, hi):
    """An int in [lo, hi], or a pair of them."""
    return st.one_of(st.integers(lo, hi), st.tuples(st.integers(lo, hi), st.integers(lo, hi)))


# ------------------------------------------------------------------------------------- the blocks


@st.composite
def block_configs(draw):
    kind = draw(st.sampled_from(["conv", "plain", "bottleneck"]))
    odd = st.sampled_from([1, 3, 5])
    # Mostly odd kernels and the "same" padding blocks need; now and then others (blocks must refuse them).
    kernel = draw(st.one_of(odd, odd, st.tuples(odd, odd), ints_or_pairs(1, 5)))
    padding = draw(st.one_of(st.just(None), st.just(None), st.just(None), st.just(None), ints_or_pairs(0, 2)))
    if padding is None:
        padding = tuple((k - 1) // 2 for k in pair(kernel))
    scaler = draw(st.sampled_from(["down", "up"]))
    sizes = st.tuples(st.integers(1, 12), st.integers(1, 12))
    # output_size is for scaler='up'; now and then it comes with 'down' (which must be refused).
    output_size = draw(
        st.one_of(st.none(), sizes) if scaler == "up" else st.one_of(st.none(), st.none(), st.none(), sizes)
    )
    config = {
        "kind": kind,
        "in_planes": draw(st.integers(1, 6)),
        "out_planes": draw(st.integers(1, 6)),
        "kernel_size": kernel,
        "stride": draw(ints_or_pairs(1, 3)),
        "padding": padding,
        "output_size": output_size,
        "normalizer": draw(st.sampled_from(NORMALIZERS)),
        "activator": draw(st.sampled_from(ACTIVATORS)),
        "layer_order": draw(st.sampled_from(["new", "old"])),
        "scaler": scaler,
    }
    extras = {}
    if kind != "conv":
        extras["hidden_planes"] = draw(st.one_of(st.none(), st.integers(1, 6)))
    if kind == "plain":
        extras["scale_first"] = draw(st.booleans())
    size = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    return config, extras, size


def build_block(config, extras):
    args = {k: v for k, v in config.items() if k != "kind"}
    cls = {"conv": ConvModern2d, "plain": BlockPlain2d, "bottleneck": BlockBottleneck2d}[config["kind"]]
    return cls(**args, **extras)


def normalized_channels(config, extras):
    """The channel counts the normalization layers of the block act on (from the definitions)."""
    cin, cout, order = config["in_planes"], config["out_planes"], config["layer_order"]
    if config["kind"] == "conv":
        return {cin if order == "new" else cout}
    hidden = extras.get("hidden_planes") or cin
    units = (
        [(cin, hidden), (hidden, cout)]
        if config["kind"] == "plain"
        else [(cin, hidden), (hidden, hidden), (hidden, cout)]
    )
    channels = {i if order == "new" else o for i, o in units}
    if scales(config) or cin != cout:
        channels.add(cout)  # the projection shortcut: 1x1 conv -> norm(out)
    return channels


def scales(config):
    return pair(config["stride"]) != (1, 1) or config["output_size"] is not None


def refusal_reasons(config, extras):
    """The names of the arguments a valid implementation must refuse, for this configuration."""
    reasons = []
    if config["output_size"] is not None and config["scaler"] != "up":
        reasons.append("output_size")
    if config["kind"] != "conv" and any(
        2 * p != k - 1 for k, p in zip(pair(config["kernel_size"]), pair(config["padding"]))
    ):
        reasons.append("kernel_size")
    if config["normalizer"] == ("group", {"num_groups": 2}) and any(
        c % min(2, c) for c in normalized_channels(config, extras)
    ):
        reasons.append("num_groups")
    return reasons


def expected_size(config, size):
    """Output (h, w) from the definitions; None where the conv's padded input is smaller than its kernel."""
    kernel, stride, padding = pair(config["kernel_size"]), pair(config["stride"]), pair(config["padding"])
    if config["scaler"] == "down":
        if any(n + 2 * p < k for n, p, k in zip(size, padding, kernel)):
            return None
        return tuple((n + 2 * p - k) // s + 1 for n, p, k, s in zip(size, padding, kernel, stride))
    up = config["output_size"] or tuple(n * s for n, s in zip(size, stride))
    if any(n + 2 * p < k for n, p, k in zip(up, padding, kernel)):
        return None
    return tuple(n + 2 * p - k + 1 for n, p, k in zip(up, padding, kernel))


def check_runs_and_round_trips(build, x, expected_shape, seed):
    """Train-mode forward/backward: shape, finite gradients; then the state_dict round trip."""
    torch.manual_seed(seed)
    model = build()
    x = x.clone().requires_grad_(True)
    before = x.detach().clone()
    y = model(x)
    assert torch.equal(x.detach(), before)  # the input is never written to
    assert y.shape == expected_shape
    (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
    assert torch.isfinite(y).all()
    assert torch.isfinite(x.grad).all()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name

    torch.manual_seed(seed + 1)
    fresh = build()
    fresh.load_state_dict(model.state_dict())
    for mode in (True, False):
        model.train(mode)
        fresh.train(mode)
        with torch.no_grad():
            assert torch.equal(fresh(x), model(x)), f"training={mode}"
    assert model.state_dict().keys() == fresh.state_dict().keys()


@SETTINGS
@given(block_configs(), st.integers(0, 2**16))
def test_blocks_refuse_or_follow_the_formulas(case, seed):
    config, extras, size = case
    reasons = refusal_reasons(config, extras)
    if reasons:
        event(f"refused: {reasons[0]}")
        with pytest.raises(ValueError) as error:
            build_block(config, extras)
        assert any(reason in str(error.value) for reason in reasons), (reasons, str(error.value))
        return
    build_block(config, extras)  # must not raise

    x = torch.randn(2, config["in_planes"], *size)
    out = expected_size(config, size)
    if out is None:  # only a ConvModern2d with a padding smaller than "same" can get here
        assert config["kind"] == "conv"
        event("input too small")
        with pytest.raises(ValueError, match=r"too small.*kernel_size"):
            build_block(config, extras)(x)
        return
    tiny = min(math.prod(size), math.prod(out)) == 1
    if tiny and norm_name(config["normalizer"]) in INSTANCE_LIKE:
        # Instance and group statistics of a single value are undefined: torch refuses in training.
        try:
            build_block(config, extras)(x)
        except ValueError as error:  # blocks' size rule (levels.one_pixel_problem), naming the smallest size
            assert "needs an input of" in str(error) and "needs more than one pixel there" in str(error)
            event("one value per instance norm")
            return
    event(f"ran: {config['kind']}, {config['scaler']}")
    check_runs_and_round_trips(lambda: build_block(config, extras), x, (2, config["out_planes"], *out), seed)


@SETTINGS
@given(block_configs(), st.integers(1, 12), st.integers(1, 12))
def test_output_size_at_call_time_wins(case, h, w):
    """An up-scaling block called with output_size gives exactly that size; others refuse it."""
    config, extras, size = case
    config = {**config, "scaler": "up", "output_size": None}
    if config["kind"] != "conv":
        config["padding"] = tuple((k - 1) // 2 for k in pair(config["kernel_size"]))
    if refusal_reasons(config, extras):
        return
    block = build_block(config, extras)
    x = torch.randn(2, config["in_planes"], *size)
    if pair(config["stride"]) == (1, 1):
        with pytest.raises(ValueError, match=r"output_size=\(\d+, \d+\) given to a \w+ that does not up-"):
            block(x, output_size=(h, w))
        return
    expected = expected_size({**config, "output_size": (h, w)}, size)
    if expected is None:
        with pytest.raises(ValueError, match="too small"):
            block(x, output_size=(h, w))
        return
    if min(h * w, math.prod(size), math.prod(expected)) == 1 and norm_name(config["normalizer"]) in INSTANCE_LIKE:
        block.eval()  # instance-like norms still refuse one value; only the shape matters here
        try:
            assert block(x, output_size=(h, w)).shape == (2, config["out_planes"], *expected)
        except ValueError as error:
            assert "more than 1" in str(error)
        return
    assert block(x, output_size=(h, w)).shape == (2, config["out_planes"], *expected)


@pytest.mark.parametrize("order", ["new", "old"])
@pytest.mark.parametrize("activator", ["relu", "elu"])
@pytest.mark.parametrize("normalizer", [lambda c: nn.Identity(), None, "batch"], ids=["identity", "none", "batch"])
@pytest.mark.parametrize("cls", [ConvModern2d, BlockPlain2d, BlockBottleneck2d], ids=lambda c: c.__name__)
def test_blocks_never_write_into_their_input(cls, normalizer, activator, order):
    """In-place activations are only used on fresh tensors: a normalizer returning its input stays safe."""
    block = cls(4, 4, normalizer=normalizer, activator=activator, layer_order=order)
    x = torch.randn(2, 4, 5, 5)
    before = x.clone()
    block(x)
    assert torch.equal(x, before)
    x.requires_grad_(True)
    block(x).sum().backward()  # an in-place write into a leaf would raise here


# ------------------------------------------------------------------------------------- the ResNets

NETWORK_SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NET_NORMALIZERS = [
    "batch",
    "inst",
    "pinst",
    "group",
    "layer",
    None,
    ("group", {"num_groups": 2}),
    lambda channels: nn.Identity(),
]


def ceil_div(n, d):
    return -(-n // d)


@st.composite
def resnet_configs(draw):
    layers = list(draw(st.tuples(*[st.integers(1, 2)] * 4)))
    if draw(st.integers(0, 9)) == 0:  # now and then a stage without blocks, which must be refused
        layers[draw(st.integers(0, 3))] = 0
    config = {
        "layers": tuple(layers),
        "block": draw(st.sampled_from(["plain", "bottleneck"])),
        "in_planes": draw(st.integers(1, 4)),
        "num_classes": draw(st.one_of(st.none(), st.integers(1, 10))),
        "normalizer": draw(st.sampled_from(NET_NORMALIZERS)),
        "activator": draw(st.sampled_from(ACTIVATORS)),
        "layer_order": draw(st.sampled_from(["new", "old"])),
    }
    size = (draw(st.integers(1, 72)), draw(st.integers(1, 72)))
    return config, size


@pytest.mark.slow  # ResNets are 64 to 2048 channels wide: about 15 s for the examples
@NETWORK_SETTINGS
@given(resnet_configs(), st.integers(0, 2**16))
def test_resnets_refuse_or_follow_the_formulas(case, seed):
    from blocks import ResNet

    config, size = case
    if 0 in config["layers"]:
        event("refused: layers")
        with pytest.raises(ValueError, match=r"layers=\(.*\) must be 4 positive ints"):
            ResNet(**config)
        return
    build = lambda: ResNet(**config)
    x = torch.randn(2, config["in_planes"], *size)
    # Features at reductions 2, 4, 8, 16, 32: every 7x7/2 conv, 3x3/2 max-pool and stride-2 block gives ceil(n / 2).
    expansion = 4 if config["block"] == "bottleneck" else 1
    channels = [64] + [w * expansion for w in (64, 128, 256, 512)]
    sizes = [tuple(ceil_div(n, 2**i) for n in size) for i in range(1, 6)]
    if math.prod(sizes[-1]) == 1 and norm_name(config["normalizer"]) in INSTANCE_LIKE:
        try:
            build()(x)
        except ValueError as error:  # blocks' size rule (levels.one_pixel_problem), naming the smallest size
            assert "needs an input of" in str(error) and "needs more than one pixel there" in str(error)
            event("one value per instance norm")
            return
    event(f"ran: {config['block']}")
    torch.manual_seed(seed)
    features = build().forward_intermediates(x, intermediates_only=True)
    assert [tuple(f.shape) for f in features] == [(2, c, *s) for c, s in zip(channels, sizes)]
    out = (2, config["num_classes"]) if config["num_classes"] else (2, channels[-1], *sizes[-1])
    check_runs_and_round_trips(build, x, out, seed)


# ------------------------------------------------------------------------------------- the U-Nets


@st.composite
def unet_configs(draw):
    levels = draw(st.integers(2, 3))
    config = {
        "in_planes": draw(st.integers(1, 3)),
        "out_planes": draw(st.integers(1, 3)),
        "channels": tuple(draw(st.integers(1, 6)) for _ in range(levels)),
        "layers": draw(st.one_of(st.integers(1, 2), st.tuples(*[st.integers(1, 2)] * levels))),
        "block": draw(st.sampled_from(["plain", "bottleneck"])),
        "kernel_size": draw(st.sampled_from([3, 3, 1, (1, 3), (3, 1), 5, 3, 2, (3, 4)])),  # even ones are refused
        "normalizer": draw(
            st.sampled_from(["batch", "inst", "pinst", "group", "layer", None, lambda channels: nn.Identity()])
        ),
        "activator": draw(st.sampled_from(ACTIVATORS)),
        "layer_order": draw(st.sampled_from(["new", "old"])),
    }
    size = (draw(st.integers(1, 24)), draw(st.integers(1, 24)))
    return config, size


def one_pixel_is_refused(config, build) -> bool:
    """Whether a U-Net of ``config``, in training on a batch of 2, cannot normalize a one-pixel deepest level."""
    normalizer = config["normalizer"]
    if normalizer in ("inst", "pinst", "group"):
        return True
    if normalizer == "layer":  # one group: refused only where a norm sees a single channel
        return min(m.num_channels for m in build().modules() if isinstance(m, nn.GroupNorm)) == 1
    return False  # batch norm with a batch of 2, no normalizer, a callable giving nn.Identity


@NETWORK_SETTINGS
@given(unet_configs(), st.integers(0, 2**16))
def test_unets_refuse_or_keep_the_input_size(case, seed):
    from blocks import UNet2d

    config, size = case
    if any(k % 2 == 0 for k in pair(config["kernel_size"])):
        event("refused: kernel_size")
        with pytest.raises(ValueError, match=r"kernel_size=.* must be odd"):
            UNet2d(**config)
        return
    build = lambda: UNet2d(**config)
    x = torch.randn(2, config["in_planes"], *size)
    # The deepest level is at 1 / 2**(levels - 1), rounded up; where it is one pixel, each normalizer needs more
    # than one value per group: instance norm never has it, batch norm in training has the batch's 2, group norm
    # its channels per group (the default 'group' splits 6 channels or fewer into groups of 1), none needs none.
    deepest = 2 ** (len(config["channels"]) - 1)
    if max(size) <= deepest and one_pixel_is_refused(config, build):
        event("refused: too small")
        with pytest.raises(
            ValueError, match=rf"needs an input of height or width >= {deepest + 1}\b.*got input of shape"
        ):
            build()(x)
        return
    event(f"ran: {len(config['channels'])} levels")
    torch.manual_seed(seed)
    features = build().encode(x)
    assert [tuple(f.shape) for f in features] == [
        (2, c, *(ceil_div(n, 2**i) for n in size)) for i, c in enumerate(config["channels"])
    ]
    check_runs_and_round_trips(build, x, (2, config["out_planes"], *size), seed)
