"""timm's model contract on blocks' backbones (blocks/timm_models.py, blocks/features.py), through timm's public API.

The backbones are registered into timm's registry here (`blocks.timm_models.register`), then built
and used only through timm: ``timm.create_model`` (with ``features_only``, ``out_indices``,
``feature_cls``, ``num_classes``, ``global_pool``, ``in_chans``), ``forward_intermediates``,
``reset_classifier``, ``timm.models.FeatureInfo`` and ``pretrained_cfg``. Every registered name
is checked on the ``meta`` device (shapes against ``pretrained_cfg``); real numbers on small widths.
"""

from __future__ import annotations

import math

import pytest
import timm
import timm.models
import torch
from torch import nn

import blocks
from blocks.features import FeatureAPI
from blocks.timm_models import PREFIX, register, timm_backbones

pytestmark = pytest.mark.usefixtures("one_thread")

BACKBONES = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "encodernet2d", "encnet12", "encnet32",
             "encnet47", "encnet62"]
"""What `register` finds: the registered models with timm's feature API in 2-D."""

SMALL = {"channels": (4, 8, 16, 32, 64)}
"""Small widths for the EncoderNets (5 levels, as their defaults)."""


def small(name: str) -> dict:
    """Keywords for a small model of ``name`` through timm (the ResNets have fixed widths)."""
    return {} if name.startswith("resnet") else dict(SMALL)


@pytest.fixture(scope="module")
def names():
    return register()


def test_register_finds_the_backbones_and_timm_lists_them(names):
    assert timm_backbones() == BACKBONES
    assert names == [PREFIX + name for name in BACKBONES]
    assert sorted(timm.list_models("blocks_*")) == sorted(names)
    assert register(["resnet18"]) == ["blocks_resnet18"]  # again: ours, replaced without a warning
    assert sorted(timm.list_models("blocks_*")) == sorted(names)


def test_register_refuses_what_is_not_a_2d_backbone_or_is_timms(names):
    for bad in ["unet2d", "unet3d", "nothing", 3]:
        with pytest.raises(ValueError, match=rf"^register got {bad!r}, which is not a blocks backbone with timm's "):
            register([bad])
    import blocks.timm_models as module

    try:
        blocks.register_model("timm_clash", input_sizes={2: (3, 32, 32)})(blocks.resnet18)
        timm.models.register_model(_named("blocks_timm_clash"))
        with pytest.raises(ValueError, match=r"^register: 'blocks_timm_clash' is already in timm's registry and "):
            register(["timm_clash"])
    finally:
        del blocks.registry._MODELS["timm_clash"]
        assert "blocks_timm_clash" not in module.default_cfgs


def _named(name):
    def entrypoint(**kwargs):
        return nn.Identity()

    entrypoint.__name__ = name
    return entrypoint


@pytest.mark.parametrize("name", BACKBONES)
def test_default_cfg_matches_the_model(name, names):
    """pretrained_cfg's sizes are those of the model's maps; its first conv and classifier are state_dict keys."""
    model = timm.create_model(PREFIX + name, device="meta")
    cfg = model.pretrained_cfg
    assert model.default_cfg is cfg and cfg["architecture"] == PREFIX + name
    assert not any(cfg.get(key) for key in ("url", "hf_hub_id", "file"))  # no weights to point to
    assert timm.get_pretrained_cfg_value(PREFIX + name, "input_size") == cfg["input_size"]
    assert model.num_classes == cfg["num_classes"] == (1000 if name.startswith("resnet") else 2)
    assert model.head_hidden_size == model.num_features > 0
    x = torch.empty(1, *cfg["input_size"], device="meta")
    features = model.forward_features(x)
    assert features.shape[1:] == (model.num_features, *cfg["pool_size"])
    assert model.forward_head(features, pre_logits=True).shape == (1, model.head_hidden_size)
    model.reset_classifier(0)
    assert model.num_classes == 0 and model(x).shape == (1, model.head_hidden_size)
    model.reset_classifier(0, "")
    assert model(x).shape == features.shape
    bare = timm.create_model(PREFIX + name, device="meta", num_classes=0, global_pool="")
    assert bare(x).shape == features.shape and bare.fc is None and bare.avgpool is None
    keys = timm.create_model(PREFIX + name, device="meta").state_dict()
    assert f"{cfg['first_conv']}.weight" in keys and f"{cfg['classifier']}.weight" in keys
    rgb = cfg["input_size"][0] == 3
    assert cfg["mean"] == ((0.485, 0.456, 0.406) if rgb else (0.449,))
    assert cfg["std"] == ((0.229, 0.224, 0.225) if rgb else (0.226,))


def test_pretrained_cfg_in_every_dimension_and_after_dilation():
    assert blocks.resnet18(ndim=1, in_planes=2).pretrained_cfg["input_size"] == (2, 4096)
    assert blocks.resnet18(ndim=1).pretrained_cfg["pool_size"] == (128,)
    with torch.device("meta"):
        assert blocks.resnet18(ndim=3).pretrained_cfg["pool_size"] == (1, 4, 4)  # 16 x 112 x 112 at 1/32
        assert blocks.resnet50(output_stride=8).pretrained_cfg["pool_size"] == (28, 28)
        assert blocks.EncoderNet3d().pretrained_cfg["input_size"] == (1, 64, 64, 64)
    assert blocks.EncoderNet1d(channels=(2, 4), layers=1, out_length=None).pretrained_cfg["num_classes"] == 0


def test_pretrained_true_is_refused_and_timm_names_are_required(names):
    with pytest.raises(ValueError, match=r"^blocks_resnet18: blocks has no pretrained weights \(pretrained=True\)"):
        timm.create_model("blocks_resnet18", pretrained=True)
    with pytest.raises(ValueError, match=r"^blocks_resnet18 through timm takes in_chans= \(timm's name\), not "):
        timm.create_model("blocks_resnet18", in_planes=1)
    with pytest.raises(ValueError, match=r"^blocks_encnet12 through timm takes num_classes= .*, not out_length="):
        timm.create_model("blocks_encnet12", out_length=3)
    with pytest.raises(ValueError, match=r"^blocks_resnet18 through timm is 2-D .*; got ndim=3: build other "):
        timm.create_model("blocks_resnet18", ndim=3)
    with pytest.raises(ValueError, match=r"^num_classes=5 with global_pool='' \(no pooling\): a classifier needs"):
        timm.create_model("blocks_resnet18", num_classes=5, global_pool="")


@pytest.mark.parametrize("name", ["resnet18", "encodernet2d"])
def test_timm_keywords_reach_the_model(name, names):
    model = timm.create_model(PREFIX + name, in_chans=2, num_classes=5, global_pool="avgmax", **small(name))
    assert isinstance(model, FeatureAPI) and model.in_planes == 2 and model.num_classes == 5
    x = torch.randn(2, 2, 48, 40)
    features = model.forward_features(x)
    pooled = 0.5 * (features.mean((2, 3)) + features.amax((2, 3)))
    torch.testing.assert_close(model.forward_head(features, pre_logits=True), pooled)
    torch.testing.assert_close(model(x), model.fc(pooled))
    for pool, reduce in [("avg", lambda f: f.mean((2, 3))), ("max", lambda f: f.amax((2, 3)))]:
        model.reset_classifier(3, pool)
        torch.testing.assert_close(model(x), model.fc(reduce(features)))
    overlay = timm.create_model(PREFIX + name, pretrained_cfg_overlay={"crop_pct": 1.0}, **small(name))
    assert overlay.pretrained_cfg["crop_pct"] == 1.0
    typed = timm.create_model(PREFIX + name, dtype=torch.float64, **small(name))
    assert typed.fc.weight.dtype == torch.float64


def check_maps(maps, info, size, batch=1):
    """Each map has its feature_info channels and ceil(size / reduction) sides."""
    assert [m.shape for m in maps] == [
        (batch, c, *(math.ceil(n / r) for n in size)) for c, r in zip(info.channels(), info.reduction())
    ]


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "encodernet2d", "encnet12"])
def test_features_only_wrappers(name, names):
    """timm's features_only: its default indices, out_indices, the 'getter' wrapper and, for ResNet, the 'list' one."""
    size, x = (50, 45), torch.randn(1, 3 if name.startswith("resnet") else 1, 50, 45)
    torch.manual_seed(0)
    features = timm.create_model(PREFIX + name, features_only=True, **small(name)).eval()
    assert type(features).__name__ == "FeatureGetterNet" and len(features.feature_info.channels()) == 5
    torch.manual_seed(0)
    model = timm.create_model(PREFIX + name, **small(name)).eval()
    with torch.no_grad():
        maps = features(x)
        check_maps(maps, features.feature_info, size)
        wanted = model.forward_intermediates(x, intermediates_only=True)
        if model.norm_act is not None:  # timm's getter prunes the final norm (norm=False): the last map is before it
            assert torch.allclose(model.norm_act(maps[-1].clone()), wanted[-1])
        for got, want in zip(maps[:-1] if model.norm_act is not None else maps, wanted):
            assert torch.equal(got, want)
        two = timm.create_model(PREFIX + name, features_only=True, out_indices=(1, -1), **small(name))
        assert two.feature_info.reduction() == [features.feature_info.reduction()[i] for i in (1, 4)]
        check_maps(two(x), two.feature_info, size)
        if name.startswith("resnet"):
            torch.manual_seed(0)
            listed = timm.create_model(PREFIX + name, features_only=True, feature_cls="list").eval()
            assert type(listed).__name__ == "FeatureListNet"
            for got, want in zip(listed(x), maps):
                assert torch.equal(got, want)


@pytest.mark.parametrize("name", ["resnet18", "encodernet2d"])
def test_forward_intermediates_backward_and_fx(name, names):
    model = timm.create_model(PREFIX + name, num_classes=3, **small(name))
    info = timm.models.FeatureInfo(model.feature_info, len(model.feature_info))
    x = torch.randn(2, model.in_planes, 40, 36)
    final, maps = model.forward_intermediates(x)
    check_maps(maps, info, (40, 36), batch=2)
    model.eval()
    with torch.no_grad():
        final, _ = model.forward_intermediates(x)
        assert torch.equal(final, model.forward_features(x))
        traced = torch.fx.symbolic_trace(model)
        assert torch.equal(traced(x), model(x))
    model.train().zero_grad()
    model(x).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("name", BACKBONES)
def test_every_backbone_forward_backward_and_features(name, names):
    """timm's forward, backward and features checks, on every registered backbone with real numbers."""
    model = timm.create_model(PREFIX + name, num_classes=4, **small(name))
    x = torch.randn(2, model.in_planes, 64, 64)
    out = model(x)
    assert out.shape == (2, 4) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    features = timm.create_model(PREFIX + name, features_only=True, **small(name)).eval()
    with torch.no_grad():
        check_maps(features(x[:1]), features.feature_info, (64, 64))
