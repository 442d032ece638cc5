"""timm's feature API on blocks' backbones (blocks/features.py): ResNet and EncoderNet, with timm's signatures."""

from __future__ import annotations

import pytest
import torch

from blocks import ResNet, resnet50
from blocks.features import take_indices
from blocks.networks import EncoderNet

SMALL_RESNET = {"layers": (1, 1, 1, 1), "block": "plain", "in_planes": 1}


def tiny_resnet(layer_order="old", num_classes=5, ndim=2):
    return ResNet(**SMALL_RESNET, num_classes=num_classes, layer_order=layer_order, ndim=ndim)


def tiny_encnet(layer_order="new", out_length=3, ndim=2):
    return EncoderNet(channels=(2, 4, 8, 16), layers=1, out_length=out_length, layer_order=layer_order, ndim=ndim)


BACKBONES = {"resnet": tiny_resnet, "encnet": tiny_encnet}


def test_resnet50_maps_at_224_on_meta():
    with torch.device("meta"):
        model = resnet50(num_classes=None)
        x = torch.empty(1, 3, 224, 224)
        maps = model.forward_intermediates(x, intermediates_only=True)
        assert [(m.shape[1], m.shape[2]) for m in maps] == [(64, 112), (256, 56), (512, 28), (1024, 14), (2048, 7)]
        final, again = model.forward_intermediates(x)
        assert final.shape == model.forward_features(x).shape == (1, 2048, 7, 7) and len(again) == 5


@pytest.mark.parametrize("layer_order", ["old", "new"])
@pytest.mark.parametrize("name", list(BACKBONES))
def test_forward_features_is_the_last_intermediate_and_forward_is_the_head(name, layer_order):
    torch.manual_seed(0)
    model = BACKBONES[name](layer_order).eval()
    x = torch.randn(2, 1, 37, 41)
    final, maps = model.forward_intermediates(x)
    last = model.forward_features(x)
    assert torch.equal(final, last) and torch.equal(maps[-1], last)
    assert [m.shape[1] for m in maps] == [f["num_chs"] for f in model.feature_info]
    assert [-(-41 // f["reduction"]) for f in model.feature_info] == [m.shape[-1] for m in maps]
    pooled = model.forward_head(last, pre_logits=True)
    assert torch.allclose(pooled, last.mean(dim=(2, 3)), atol=1e-6)
    assert torch.equal(model(x), model.forward_head(last)) and model(x).shape == (2, model.num_classes)


@pytest.mark.parametrize("name", list(BACKBONES))
def test_indices_and_stop_early(name):
    model = BACKBONES[name]().eval()
    x = torch.randn(1, 1, 33, 33)
    every = model.forward_intermediates(x, intermediates_only=True)
    count = len(every)
    assert count == len(model.feature_info)
    for indices, expected in [(None, list(range(count))), (2, [count - 2, count - 1]), ((0, -1), [0, count - 1]),
                              ([1], [1])]:
        maps = model.forward_intermediates(x, indices=indices, intermediates_only=True)
        assert len(maps) == len(expected) and all(torch.equal(m, every[i]) for m, i in zip(maps, expected))
    final, maps = model.forward_intermediates(x, indices=[1], stop_early=True)
    assert torch.equal(final, every[1]) and torch.equal(maps[0], every[1])
    with pytest.raises(ValueError, match=rf"indices=\[{count}\]: {count} is not an index of {count} feature maps"):
        model.forward_intermediates(x, indices=[count])
    with pytest.raises(ValueError, match=r"output_fmt='NHWC' is not allowed; blocks' maps are channels-first"):
        model.forward_intermediates(x, output_fmt="NHWC")


def test_take_indices_rule():
    assert take_indices(5, None) == [0, 1, 2, 3, 4]
    assert take_indices(5, 1) == [4] and take_indices(5, 5) == [0, 1, 2, 3, 4]
    assert take_indices(5, (-2, 0)) == [3, 0]
    for bad, message in [(0, r"indices=0 must be between 1 and 5"), (6, r"indices=6 must be between 1 and 5"),
                         ("1", r"indices='1' must be None, an int"), ((5,), r"5 is not an index of 5")]:
        with pytest.raises(ValueError, match=message):
            take_indices(5, bad)


@pytest.mark.parametrize("name", list(BACKBONES))
def test_num_classes_none_zero_and_reset_classifier(name):
    model = BACKBONES[name]()
    x = torch.randn(2, 1, 33, 35)
    features = model.forward_features(x)
    model.reset_classifier(0)
    assert model.fc is None and model(x).shape == (2, model.num_features)
    model.reset_classifier(7)
    assert model.fc.out_features == 7 and model(x).shape == (2, 7)
    model.reset_classifier(None)
    assert torch.equal(model(x), features)
    model.reset_classifier(0, global_pool="")
    assert model.avgpool is None and torch.equal(model(x), features)
    head = "num_classes" if name == "resnet" else "out_length"
    with pytest.raises(ValueError, match=rf"^{head}=4 with global_pool='' \(no pooling\): a classifier needs pooled "):
        model.reset_classifier(4, global_pool="")
    with pytest.raises(ValueError, match=r"^global_pool='mean' is not allowed; use one of \['avg', 'max', 'avgmax', ''\]"):
        model.reset_classifier(4, global_pool="mean")
    model.reset_classifier(4, global_pool="max")
    assert model(x).shape == (2, 4) and model.global_pool == "max"
    assert torch.equal(model.forward_head(features, pre_logits=True), features.amax((2, 3)))
    assert tiny_resnet(num_classes=0)(x).shape == (2, 512)


@pytest.mark.parametrize("layer_order", ["old", "new"])
@pytest.mark.parametrize("name", list(BACKBONES))
def test_prune_intermediate_layers(name, layer_order):
    torch.manual_seed(0)
    model = BACKBONES[name](layer_order).eval()
    x = torch.randn(1, 1, 40, 40)
    every = model.forward_intermediates(x, intermediates_only=True)
    before = sum(p.numel() for p in model.parameters())
    kept = model.prune_intermediate_layers(indices=(0, 2))
    assert kept == [0, 2] and len(model.feature_info) == 3 and model.fc is None and model.norm_act is None
    assert sum(p.numel() for p in model.parameters()) < before
    maps = model.forward_intermediates(x, intermediates_only=True)
    assert len(maps) == 3 and all(torch.equal(a, b) for a, b in zip(maps, every[:3]))
    assert torch.equal(model(x), every[2])  # no head left: forward is the last kept map
    model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())  # nothing dead is left for DDP


@pytest.mark.parametrize("ndim", [1, 3])
def test_feature_api_in_1d_and_3d(ndim):
    size = (35,) if ndim == 1 else (9, 10, 11)
    for model in (tiny_resnet(ndim=ndim), tiny_encnet(ndim=ndim)):
        maps = model.forward_intermediates(torch.randn(2, 1, *size), intermediates_only=True)
        assert [tuple(m.shape[2:]) for m in maps] == [
            tuple(-(-n // f["reduction"]) for n in size) for f in model.feature_info
        ]
