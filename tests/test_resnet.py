"""Tests of blocks.resnet: torchvision-exact presets, pre-activation, features, torchvision weights, CLI."""

import contextlib
import copy
import io
import json
import re

import pytest
import torch
import torchsummary
import torchvision
from torch import nn

import blocks
from blocks import ResNet, from_torchvision, resnet18, resnet34, resnet50, resnet101, resnet152, summary
from blocks.__main__ import main
from blocks.registry import model_entry
from blocks.layers import ACTIVATORS, NORMALIZERS, make_activator, make_normalizer

PRESETS = {"resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50, "resnet101": resnet101,
           "resnet152": resnet152}

# torchvision's published parameter counts
PARAMETERS = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032, "resnet101": 44_549_160,
              "resnet152": 60_192_808}

FEATURES_224 = {  # (channels, size) of forward_features at 224 x 224
    "resnet18": [(64, 112), (64, 56), (128, 28), (256, 14), (512, 7)],
    "resnet50": [(64, 112), (256, 56), (512, 28), (1024, 14), (2048, 7)],
}


def count(model):
    return sum(p.numel() for p in model.parameters())


# ---- architecture -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PRESETS))
def test_parameter_counts_equal_torchvision(name):
    with torch.device("meta"):
        model = PRESETS[name]()
    assert count(model) == PARAMETERS[name]


@pytest.mark.parametrize("name", list(FEATURES_224))
@pytest.mark.parametrize("layer_order", ["old", "new"])
def test_forward_features_and_feature_info_at_224(name, layer_order):
    with torch.device("meta"):  # shapes only: no arithmetic
        model = PRESETS[name](layer_order=layer_order)
        features = model.forward_intermediates(torch.empty(1, 3, 224, 224), intermediates_only=True)
    assert [(f.shape[1], f.shape[2]) for f in features] == FEATURES_224[name]
    assert all(f.shape[0] == 1 and f.shape[2] == f.shape[3] for f in features)
    info = model.feature_info
    assert [f["num_chs"] for f in info] == [c for c, _ in FEATURES_224[name]]
    assert [f["reduction"] for f in info] == [2, 4, 8, 16, 32]
    last = "norm_act" if layer_order == "new" else "layer4"
    assert [f["module"] for f in info] == ["stem", "layer1", "layer2", "layer3", last]
    assert model.num_features == info[-1]["num_chs"]


@pytest.mark.parametrize("layer_order", ["old", "new"])
def test_feature_info_modules_output_the_features(layer_order):
    model = resnet18(layer_order=layer_order, num_classes=None)
    outputs = {}
    for entry in model.feature_info:
        module = model.get_submodule(entry["module"])
        module.register_forward_hook(lambda m, i, o, key=entry["module"]: outputs.setdefault(key, o.clone()))
    x = torch.randn(2, 3, 64, 64)
    features = model.forward_intermediates(x, intermediates_only=True)
    for entry, feature in zip(model.feature_info, features):
        assert torch.equal(outputs[entry["module"]], feature), entry
    outputs.clear()
    assert torch.equal(model(x), features[-1])  # a backbone's forward is its last feature map


def test_grey_input_and_ten_classes():
    model = resnet18(in_planes=1, num_classes=10)
    assert model(torch.randn(1, 1, 224, 224)).shape == (1, 10)
    assert model.stem.conv.in_channels == 1
    assert count(model) == PARAMETERS["resnet18"] - 2 * 64 * 49 - 990 * 513  # conv1 and fc shrink


def test_torchvision_layout_strides_and_widths():
    model = resnet50()
    assert [type(m).__name__ for m in model.stem] == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert (model.stem.conv.kernel_size, model.stem.conv.stride, model.stem.conv.bias) == ((7, 7), (2, 2), None)
    assert (model.pool.kernel_size, model.pool.stride, model.pool.padding) == (3, 2, 1)
    for index, stage in enumerate([model.layer1, model.layer2, model.layer3, model.layer4]):
        first = stage[0]
        assert [u.conv.stride for u in first.branch] == [(1, 1), (1, 1) if index == 0 else (2, 2), (1, 1)]
        assert first.hidden_planes == first.out_planes // 4 == 64 * 2**index
        assert first.shortcut is not None and all(block.shortcut is None for block in stage[1:])
    plain = resnet34()
    assert plain.layer1[0].shortcut is None  # 64 -> 64, stride 1: identity
    assert [u.conv.stride for u in plain.layer2[0].branch] == [(2, 2), (1, 1)]  # scale on the first unit
    assert plain.layer2[0].hidden_planes == 128


def test_convolutions_are_initialised_as_torchvision():
    conv = resnet18().layer3[1].branch[0].conv
    expected = (2 / (conv.out_channels * 9)) ** 0.5  # Kaiming normal, fan-out, ReLU gain
    assert abs(conv.weight.std().item() / expected - 1) < 0.05


# ---- geometry: strides, kernel sizes, stem ----------------------------------------------------------

DEFAULT_GEOMETRY = {"strides": (1, 2, 2, 2), "kernel_sizes": (3, 3, 3, 3), "stem_kernel_size": 7, "stem_stride": 2,
                    "stem_pool": True}


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_with_the_default_geometry_given_have_torchvision_counts(name):
    with torch.device("meta"):
        model = PRESETS[name](**DEFAULT_GEOMETRY)
    assert count(model) == PARAMETERS[name]


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("block", ["plain", "bottleneck"])
def test_default_geometry_given_explicitly_builds_the_same_model(block, ndim):
    torch.manual_seed(0)
    default = ResNet([1, 1, 1, 1], block, num_classes=10, ndim=ndim).eval()
    torch.manual_seed(0)
    explicit = ResNet([1, 1, 1, 1], block, num_classes=10, ndim=ndim, **DEFAULT_GEOMETRY).eval()
    assert list(explicit.state_dict()) == list(default.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(explicit.state_dict().values(), default.state_dict().values()))
    assert explicit.chain == default.chain == ["stem", "pool", "layer1", "layer2", "layer3", "layer4"]
    assert explicit.feature_info == default.feature_info
    assert [f["reductions"] for f in default.feature_info] == [(r,) * ndim for r in (2, 4, 8, 16, 32)]
    assert [f["reduction"] for f in default.feature_info] == [2, 4, 8, 16, 32]
    assert default.strides == ((1,) * ndim, *((2,) * ndim,) * 3) and default.kernel_sizes == ((3,) * ndim,) * 4
    x = torch.randn(1, 3, *(19,) * ndim)
    with torch.no_grad():
        assert torch.equal(explicit(x), default(x))


ANISOTROPIC = {"strides": (1, (1, 2, 2), 2, (2, 1, 1)), "kernel_sizes": (3, (1, 3, 3), 3, (3, 1, 1)),
               "stem_kernel_size": (3, 7, 7), "stem_stride": (1, 2, 2)}


@pytest.mark.parametrize("stem_pool", [True, False])
def test_anisotropic_resnet3d_feature_sizes(stem_pool):
    with torch.device("meta"):  # shapes only
        model = ResNet([2, 1, 1, 1], "bottleneck", num_classes=None, ndim=3, stem_pool=stem_pool, **ANISOTROPIC)
        x = torch.empty(1, 3, 9, 37, 41)
        maps = model.forward_intermediates(x, intermediates_only=True)
        assert model(x).shape == maps[-1].shape
    pooled = 2 if stem_pool else 1
    reductions = [(1, 2, 2), (pooled, 2 * pooled, 2 * pooled), (pooled, 4 * pooled, 4 * pooled),
                  (2 * pooled, 8 * pooled, 8 * pooled), (4 * pooled, 8 * pooled, 8 * pooled)]
    assert [f["reductions"] for f in model.feature_info] == reductions
    assert [f["reduction"] for f in model.feature_info] == [max(r) for r in reductions]
    assert [tuple(m.shape[2:]) for m in maps] == [tuple(-(-n // r) for n, r in zip((9, 37, 41), red))
                                                  for red in reductions]
    assert [m.shape[1] for m in maps] == [64, 256, 512, 1024, 2048]
    conv = model.stem.conv
    assert (conv.kernel_size, conv.stride, conv.padding) == ((3, 7, 7), (1, 2, 2), (1, 3, 3))
    middle = [(u.conv.kernel_size, u.conv.stride, u.conv.padding)
              for u in (model.layer1[0].branch[1], model.layer2[0].branch[1], model.layer3[0].branch[1],
                        model.layer4[0].branch[1])]
    assert middle == [((3, 3, 3), (1, 1, 1), (1, 1, 1)), ((1, 3, 3), (1, 2, 2), (0, 1, 1)),
                      ((3, 3, 3), (2, 2, 2), (1, 1, 1)), ((3, 1, 1), (2, 1, 1), (1, 0, 0))]
    assert model.layer1[1].branch[1].conv.kernel_size == (3, 3, 3)  # every block of a stage: its kernel
    assert [model.get_submodule(f"layer{i}")[0].shortcut.conv.stride for i in (2, 3, 4)] == [(1, 2, 2), (2, 2, 2),
                                                                                             (2, 1, 1)]


def test_without_the_stem_pool():
    torch.manual_seed(0)
    pooled = ResNet([2, 1, 1, 1], "plain", num_classes=None, layer_order="new")
    model = ResNet([2, 1, 1, 1], "plain", num_classes=None, layer_order="new", stem_pool=False).eval()
    assert model.pool is None and "pool" not in dict(model.named_modules())
    assert model.chain == ["stem", "layer1", "layer2", "layer3", "layer4"]
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in pooled.state_dict().items()}
    assert [f["reduction"] for f in model.feature_info] == [2, 2, 4, 8, 16]
    x = torch.randn(1, 3, 33, 40)
    with torch.no_grad():
        maps = model.forward_intermediates(x, intermediates_only=True)
        assert [tuple(m.shape[2:]) for m in maps] == [(17, 20), (17, 20), (9, 10), (5, 5), (3, 3)]
        assert torch.equal(model.forward_features(x), maps[-1])
        stem = model.stem(x)
        assert torch.equal(model.layer1(stem), maps[1])  # the first stage reads the stem's output
    assert model.prune_intermediate_layers(2) == [3, 4] and model.layer4 is not None
    assert model.prune_intermediate_layers(1, prune_head=True) == [4]


def test_video_geometry_is_recorded_and_saved(tmp_path):
    model = ResNet([1, 1, 1, 1], "plain", num_classes=3, ndim=3, stem_pool=False, **ANISOTROPIC)
    expected = {"blocks_class": "ResNet", "layers": [1, 1, 1, 1], "block": "plain", "num_classes": 3, "ndim": 3,
                "stem_pool": False, **ANISOTROPIC}
    assert model.config == json.loads(json.dumps(expected))  # as config.json holds it: tuples become lists
    model.save_pretrained(tmp_path)
    loaded = blocks.from_pretrained(tmp_path).eval()
    assert loaded.strides == model.strides and loaded.kernel_sizes == model.kernel_sizes and loaded.pool is None
    x = torch.randn(1, 3, 5, 20, 20)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))


# ---- pre-activation ---------------------------------------------------------------------------------


def preact_resnet50_parameters():
    """From the definition: pre-activation bottlenecks normalize their inputs; no stem norm; final norm."""
    total = 3 * 64 * 49  # stem conv alone
    planes = 64
    for depth, width in zip((3, 4, 6, 3), (64, 128, 256, 512)):
        out = 4 * width
        for index in range(depth):
            cin = planes if index == 0 else out
            total += 2 * cin + cin * width + 2 * width + 9 * width * width + 2 * width + width * out
            if cin != out or (index == 0 and width != 64):
                total += cin * out + 2 * out
        planes = out
    return total + 2 * 2048 + 2048 * 1000 + 1000


def test_preactivation_resnet50_forward_backward_and_structure():
    model = resnet50(layer_order="new")
    assert [type(m).__name__ for m in model.stem] == ["Conv2d"] and model.stem.conv.bias is None
    assert [type(m).__name__ for m in model.norm_act] == ["BatchNorm2d", "ReLU"]
    assert all(type(next(iter(unit))).__name__ == "BatchNorm2d" for unit in model.layer2[1].branch)
    assert model.layer2[1].activation is None
    assert count(model) == preact_resnet50_parameters()
    y = model(torch.randn(2, 3, 32, 32))
    assert y.shape == (2, 1000) and torch.isfinite(y).all()
    y.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert model.stem.conv.weight.grad.abs().sum() > 0


def test_old_order_has_no_final_norm():
    model = resnet18()
    assert model.norm_act is None
    assert not any(name.startswith("norm_act") for name, _ in model.named_parameters())


# ---- every normalizer and activator ----------------------------------------------------------------


def layer_type(make, spec):
    layer = make(spec, 8)
    return None if layer is None else type(layer)


@pytest.mark.parametrize("layer_order", ["old", "new"])
@pytest.mark.parametrize(
    "kwargs", [{"normalizer": n} for n in NORMALIZERS] + [{"activator": a} for a in ACTIVATORS], ids=str
)
def test_every_registered_normalizer_and_activator(kwargs, layer_order):
    model = resnet18(num_classes=10, layer_order=layer_order, **kwargs)
    norm = layer_type(make_normalizer, kwargs.get("normalizer", "batch"))
    act = layer_type(make_activator, kwargs.get("activator", "relu"))
    types = {type(m) for m in model.modules()}
    assert (norm is None or norm in types) and (act is None or act in types)
    assert not {nn.BatchNorm2d, nn.ReLU} - {norm, act} & types  # the defaults are really replaced
    if norm is None:
        assert all(m.bias is not None for m in model.modules() if isinstance(m, nn.Conv2d))
    y = model(torch.randn(2, 3, 64, 64))
    assert y.shape == (2, 10) and torch.isfinite(y).all()


def without_in_place(model):
    plain = copy.deepcopy(model)
    for module in plain.modules():
        if hasattr(module, "inplace"):
            module.inplace = False
    return plain


@pytest.mark.parametrize("layer_order", ["old", "new"])
@pytest.mark.parametrize("normalizer", ["batch", None])
@pytest.mark.parametrize("activator", ["relu", "elu"])  # elu's in-place gradient is computed from its output
def test_in_place_activations_change_no_value_or_gradient(activator, normalizer, layer_order):
    torch.manual_seed(0)
    model = ResNet([1, 1, 1, 1], "plain", num_classes=5, normalizer=normalizer, activator=activator,
                   layer_order=layer_order)
    reference = without_in_place(model)
    x = torch.randn(2, 3, 32, 32)
    features, expected = model.forward_intermediates(x, intermediates_only=True), reference.forward_intermediates(x, intermediates_only=True)
    assert all(torch.equal(a, b) for a, b in zip(features, expected))
    model(x).square().sum().backward()
    reference(x).square().sum().backward()
    scale = max(q.grad.abs().max().item() for q in reference.parameters())  # elu: rounding differs slightly
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6 * scale, msg=name)


# ---- bad arguments ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"layers": [2, 2, 2]}, r"layers=\[2, 2, 2\] must be 4 positive ints, the number of blocks in each stage"),
        ({"layers": [2, 0, 2, 2]}, r"layers=\[2, 0, 2, 2\] must be 4 positive ints"),
        ({"layers": [2, 2.0, 2, 2]}, r"layers=\[2, 2.0, 2, 2\] must be 4 positive ints"),
        ({"layers": (2, True, 2, 2)}, r"layers=\(2, True, 2, 2\) must be 4 positive ints"),
        ({"layers": 18}, r"layers=18 must be 4 positive ints"),
        ({"block": "basic"}, r"block='basic' is not allowed; use one of \['bottleneck', 'plain'\]"),
        ({"in_planes": 0}, r"in_planes=0 must be a positive int"),
        ({"in_planes": "3"}, r"in_planes='3' must be a positive int"),
        ({"num_classes": -1}, r"num_classes=-1 must be a positive int, 0 for the pooled features \(timm's convention\) "
                              r"or None for a backbone without a head"),
        ({"num_classes": 10.0}, r"num_classes=10.0 must be a positive int, 0 for the pooled features"),
        ({"normalizer": "bn"}, r"normalizer='bn' is not a registered normalizer; valid names: \["),
        ({"activator": "tanh"}, r"activator='tanh' is not a registered activator; valid names: \["),
        ({"layer_order": "pre"}, r"layer_order='pre' is not allowed; use one of \['new', 'old'\]"),
    ],
)
def test_bad_arguments(kwargs, message):
    args = {"layers": [2, 2, 2, 2], "block": "plain", **kwargs}
    with pytest.raises(ValueError, match=message):
        ResNet(**args)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"strides": (1, 2, 2)}, r"strides=\(1, 2, 2\) must be a sequence of 4 entries, one per level, each an int or "
                                 r"a pair \(h, w\)"),
        ({"strides": 2}, r"strides=2 must be a sequence of 4 entries"),
        ({"strides": (1, 0, 2, 2)}, r"strides\[1\]=0 must be an int >= 1 or a pair of such ints"),
        ({"strides": (1, (1, 2, 2), 2, 2)}, r"strides\[1\]=\(1, 2, 2\) must be an int >= 1 or a pair of such ints"),
        ({"strides": (1, 2, 2, (2, 2)), "ndim": 3}, r"strides\[3\]=\(2, 2\) must be an int >= 1 or a triple of such"),
        ({"kernel_sizes": (3, 3, 3)}, r"kernel_sizes=\(3, 3, 3\) must be a sequence of 4 entries, one per level"),
        ({"kernel_sizes": (3, 3, 4, 3)}, r"kernel_sizes\[2\]: kernel_size=4 must be odd"),
        ({"kernel_sizes": (3, (1, 3), 3, 3), "ndim": 3}, r"kernel_sizes\[1\]: kernel_size=\(1, 3\) must be an int >= 1 "
                                                         r"or a triple of such ints"),
        ({"stem_kernel_size": 6}, r"stem_kernel_size=6 must be odd \(an int or a pair of odd ints\), so that the "
                                  r"stem's padding \(k - 1\) // 2 maps a side n to ceil\(n / stem_stride\)"),
        ({"stem_kernel_size": (3, 7, 7)}, r"stem_kernel_size=\(3, 7, 7\) must be an int >= 1 or a pair of such ints"),
        ({"stem_kernel_size": (3, 7, 8), "ndim": 3}, r"stem_kernel_size=\(3, 7, 8\) must be odd \(an int or a triple"),
        ({"stem_stride": 0}, r"stem_stride=0 must be an int >= 1 or a pair of such ints"),
        ({"stem_stride": (1, 2, 2)}, r"stem_stride=\(1, 2, 2\) must be an int >= 1 or a pair of such ints"),
    ],
)
def test_bad_geometry(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ResNet([1, 1, 1, 1], "plain", **kwargs)


@pytest.mark.parametrize("value", ["yes", None, 1])
def test_stem_pool_is_a_bool(value):
    with pytest.raises(TypeError, match=rf"stem_pool={value!r} must be True or False"):
        ResNet([1, 1, 1, 1], "plain", stem_pool=value)


def test_presets_reject_architecture_arguments():
    with pytest.raises(TypeError, match="layers"):
        resnet18(layers=[1, 1, 1, 1])


# ---- torchvision weights ----------------------------------------------------------------------------


def perturbed_torchvision(name, num_classes=1000):
    """A torchvision ResNet with random weights where every tensor differs, so that a wrong mapping shows."""
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None, num_classes=num_classes)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.2)
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.num_batches_tracked.fill_(7)
        model.fc.bias.normal_(0, 0.1)
    return model.eval()


def torchvision_features(model, x):
    """The stem output (the max-pool's input) and each stage's output of a torchvision ResNet."""
    features = []
    hooks = [model.maxpool.register_forward_pre_hook(lambda m, args: features.append(args[0].clone()))]
    hooks += [getattr(model, f"layer{i}").register_forward_hook(lambda m, a, o: features.append(o.clone()))
              for i in range(1, 5)]
    model(x)
    for hook in hooks:
        hook.remove()
    return features


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
@pytest.mark.parametrize("source", ["module", "state_dict"])
def test_from_torchvision_gives_torchvision_outputs(name, source):
    reference = perturbed_torchvision(name)
    model = from_torchvision(reference) if source == "module" else from_torchvision(reference.state_dict(), arch=name)
    assert isinstance(model, ResNet) and count(model) == PARAMETERS[name]
    assert model.training is (source == "state_dict")
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (model(x) - reference(x)).abs().max() <= 1e-5
        for ours, theirs in zip(model.forward_intermediates(x, intermediates_only=True), torchvision_features(reference, x)):
            assert (ours - theirs).abs().max() <= 1e-5
    assert model.layer1[0].branch[0].norm.num_batches_tracked == 7


def test_from_torchvision_copies_weights_and_infers_the_rest():
    reference = perturbed_torchvision("resnet34", num_classes=7)
    reference.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    model = from_torchvision(reference.state_dict())  # architecture inferred from the keys
    assert (len(model.layer3), model.in_planes, model.num_classes) == (6, 1, 7)
    assert torch.equal(model.stem.conv.weight, reference.conv1.weight)
    assert model.stem.conv.weight.data_ptr() != reference.conv1.weight.data_ptr()
    assert all(p.requires_grad and p.device.type == "cpu" for p in model.parameters())
    reference.fc = nn.Identity()  # a torchvision backbone gives a blocks backbone
    backbone = from_torchvision(reference)
    assert backbone.num_classes is None and backbone.fc is None


def test_from_torchvision_old_checkpoints_without_batch_counters():
    state = {k: v for k, v in perturbed_torchvision("resnet18").state_dict().items()
             if not k.endswith("num_batches_tracked")}
    model = from_torchvision(state, arch="resnet18")
    assert all(b.device.type == "cpu" for b in model.buffers())
    assert model.stem.norm.num_batches_tracked == 0


def edited(state, drop=(), add=None, reshape=None):
    state = {k: v for k, v in state.items() if k not in drop}
    state.update(add or {})
    for key in reshape or ():
        state[key] = state[key][:1]
    return state


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"drop": ["layer1.0.bn1.running_mean"]}, r"missing keys \['layer1\.0\.bn1\.running_mean'\]"),
        ({"drop": ["fc.weight"]}, r"missing keys \['fc\.weight'\]"),
        ({"drop": ["layer2.0.downsample.0.weight"]}, r"missing keys \['layer2\.0\.downsample\.0\.weight'\]"),
        ({"add": {"layer1.0.bn3.weight": torch.ones(64)}}, r"unexpected keys \['layer1\.0\.bn3\.weight'\]"),
        ({"add": {"module.fc.weight": torch.ones(1)}}, r"unexpected keys \['module\.fc\.weight'\]"),
        ({"reshape": ["layer3.1.conv2.weight"]},
         r"mis-shaped keys \['layer3\.1\.conv2\.weight: \(1, 256, 3, 3\), expected \(256, 256, 3, 3\)'\]"),
    ],
)
def test_from_torchvision_names_bad_keys(edit, message):
    state = edited(perturbed_torchvision("resnet18").state_dict(), **edit)
    with pytest.raises(ValueError, match=message):
        from_torchvision(state, arch="resnet18")


def test_from_torchvision_wrong_or_unknown_arch():
    state = perturbed_torchvision("resnet18").state_dict()
    with pytest.raises(ValueError, match=r"missing keys \['layer1\.2\.conv1\.weight', "):
        from_torchvision(state, arch="resnet34")
    with pytest.raises(ValueError, match=r"arch='resnet20' is not allowed; use one of \['resnet18', "):
        from_torchvision(state, arch="resnet20")
    with pytest.raises(ValueError, match=r"cannot infer the architecture.*pass arch="):
        from_torchvision({"conv1.weight": torch.ones(64, 3, 7, 7)})
    with pytest.raises(ValueError, match=r"takes a torchvision ResNet or its state_dict, got str"):
        from_torchvision("resnet18")


# ---- summaries and CLI ------------------------------------------------------------------------------

ROW = re.compile(r"^\s*(\w+)-(\d+)\s+(\[.*\])\s+([\d,]+)$")


def rows(table):
    """(type, shape, parameters) of each row of a torchsummary-style table."""
    return [(m[1], m[3], m[4]) for line in table.splitlines() if (m := ROW.match(line))]


def torchsummary_table(model, size):
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        torchsummary.summary(model, size, device="cpu")
    return buffer.getvalue()


def test_summary_rows_equal_torchsummary_of_torchvision():
    expected = [("BlockPlain2d" if kind == "BasicBlock" else kind, shape, params)
                for kind, shape, params in rows(torchsummary_table(torchvision.models.resnet18(), (3, 224, 224)))]
    assert len(expected) == 68
    model = resnet18()
    with contextlib.redirect_stdout(io.StringIO()):
        ours = summary(model, (3, 224, 224))
    assert rows(ours)[:-1] == expected
    assert rows(ours)[-1] == ("ResNet", "[-1, 1000]", "0")
    assert "Total params: 11,689,512" in ours
    stock = torchsummary_table(model, (3, 224, 224))
    assert rows(stock) == expected
    assert "Total params: 11,689,512" in stock


def test_cli_summary_of_a_grey_resnet18(capsys):
    assert main(["summary", "resnet18", "--set", "in_planes=1", "--input", "1", "64", "64"]) == 0
    out = capsys.readouterr().out
    total = count(resnet18(in_planes=1))
    assert f"Total params: {total:,}" in out
    assert re.search(r"Conv2d-1\s+\[-1, 64, 32, 32\]\s+3,136\n", out)


def test_cli_knows_every_preset_and_its_options(capsys):
    assert all(model_entry(name).input_size() == (3, 224, 224) and count(model_entry(name).create(num_classes=10))
               == count(build(num_classes=10)) for name, build in PRESETS.items())
    assert main(["summary", "resnet50", "--set", "layer_order=new", "--set", "num_classes=10"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "resnet50: ResNet, input [3, 224, 224], batch -1"
    tail = [kind for kind, shape, _ in rows(out)[-5:]]
    assert tail == ["BatchNorm2d", "ReLU", "AdaptiveAvgPool2d", "Linear", "ResNet"]  # the final norm + act
    assert rows(out)[-1] == ("ResNet", "[-1, 10]", "0")
    with torch.device("meta"):
        assert f"Total params: {count(resnet50(layer_order='new', num_classes=10)):,}" in out


class ExpNorm(nn.Module):
    """A user's normalizer whose backward reads its own output, so no in-place op may follow it."""

    def __init__(self, planes):
        super().__init__()

    def forward(self, x):
        return x.exp() * 1e-3


def test_user_normalizer_whose_backward_reads_its_output_trains():
    model = resnet18(normalizer=ExpNorm, num_classes=3)
    x = torch.randn(1, 3, 64, 64, requires_grad=True)
    model(x).sum().backward()  # in-place ReLUs or sums after ExpNorm would raise here
    assert torch.isfinite(x.grad).all()
