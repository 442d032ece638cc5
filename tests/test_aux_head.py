"""smp's auxiliary classification head on the U-Net family (blocks/unet.py: ``aux_params``, `ClassificationHead`).

Keys and layout are smp's (``classification_head.{0..4}``: pool, flatten, dropout, linear,
activation); ``forward`` returns ``(mask, logits)``, or ``(list_of_masks, logits)`` with deep
supervision. Every registered U-Net and auto-encoder builds it (registry-driven), saves and reloads
it, and traces it with ``torch.fx`` and ``torch.export``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.export import Dim

import blocks
from blocks.registry import list_models, model_entry
from blocks.unet import AUX_ACTIVATIONS, UNet

pytestmark = pytest.mark.usefixtures("one_thread")


def count(module):
    return sum(p.numel() for p in module.parameters())


def unet_names():
    """(name, ndim) of every registered model that builds a U-Net or an auto-encoder."""
    cases = []
    for name in list_models():
        for ndim in model_entry(name).ndims:
            kwargs = {"ndim": ndim} if len(model_entry(name).ndims) > 1 else {}
            with torch.device("meta"):
                if isinstance(model_entry(name).create(**kwargs), UNet):
                    cases.append(pytest.param(name, ndim, id=f"{name}-{ndim}d"))
    return cases


def tiny(name, ndim, **kwargs):
    """``name`` at widths 2, 4, 8, ... (its level count kept), with ``kwargs``."""
    entry = model_entry(name)
    dimension = {"ndim": ndim} if len(entry.ndims) > 1 else {}
    with torch.device("meta"):
        levels = len(entry.create(**dimension).channels)
    torch.manual_seed(0)
    return entry.create(**dimension, channels=tuple(2 ** (i + 1) for i in range(levels)), **kwargs)


def test_layout_and_parameters_are_smps():
    smp = pytest.importorskip("segmentation_models_pytorch")
    ours = blocks.UNet2d(encoder=blocks.resnet34(num_classes=None), aux_params={"classes": 4})
    theirs = smp.Unet("resnet34", encoder_weights=None, aux_params={"classes": 4})
    head_keys = [k for k in ours.state_dict() if k.startswith("classification_head.")]
    assert head_keys == [k for k in theirs.state_dict() if k.startswith("classification_head.")]
    assert head_keys == ["classification_head.3.weight", "classification_head.3.bias"]
    assert count(ours.classification_head) == count(theirs.classification_head) == 512 * 4 + 4
    assert [type(m).__name__ for m in ours.classification_head] == [
        "AdaptiveAvgPool2d", "Flatten", "Dropout", "Linear", "Identity"]
    assert ours.classification_head[2].p == theirs.classification_head[2].p == 0.2
    maxed = blocks.UNet3d(channels=(2, 4), layers=1, aux_params={"classes": 3, "pooling": "max", "dropout": 0})
    assert [type(m).__name__ for m in maxed.classification_head] == [
        "AdaptiveMaxPool3d", "Flatten", "Identity", "Linear", "Identity"]


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_forward_returns_masks_and_the_logits_of_the_deepest_map(ndim):
    net = blocks.UNet(channels=(2, 4, 8), layers=1, out_planes=2, ndim=ndim, aux_params={"classes": 5}).eval()
    size = {1: (19,), 2: (9, 12), 3: (5, 7, 6)}[ndim]
    x = torch.randn(3, 1, *size)
    mask, logits = net(x)
    assert mask.shape == (3, 2, *size) and logits.shape == (3, 5)
    deepest = net.encode(x)[-1]
    linear = net.classification_head[3]
    torch.testing.assert_close(logits, linear(deepest.flatten(2).mean(2)))
    plain = blocks.UNet(channels=(2, 4, 8), layers=1, out_planes=2, ndim=ndim).eval()
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("classification_head.")})
    assert torch.equal(plain(x), mask)


def test_deep_supervision_returns_the_list_and_the_logits():
    net = blocks.UNet2d(channels=(2, 4, 8), layers=1, deep_supervision=True, aux_params={"classes": 2})
    masks, logits = net(torch.randn(2, 1, 16, 12))
    assert [m.shape for m in masks] == [(2, 1, 16, 12), (2, 1, 8, 6)] and logits.shape == (2, 2)
    net.deep_supervision = False
    mask, logits = net(torch.randn(2, 1, 16, 12))
    assert mask.shape == (2, 1, 16, 12)


@pytest.mark.parametrize("activation", list(AUX_ACTIVATIONS))
def test_activations(activation):
    net = blocks.AE1d(channels=(2, 4), layers=1, aux_params={"classes": 3, "activation": activation}).eval()
    logits = net.classification_head[:4](net.encode(torch.ones(2, 1, 9))[-1])
    _, out = net(torch.ones(2, 1, 9))
    expected = {None: logits, "identity": logits, "sigmoid": logits.sigmoid(), "softmax": logits.softmax(1),
                "logsoftmax": logits.log_softmax(1), "tanh": logits.tanh()}[activation]
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("bad, message", [
    (3, r"aux_params=3 must be a dict with 'classes'"),
    ({"pooling": "avg"}, r"aux_params=\{'pooling': 'avg'\} must be a dict with 'classes'"),
    ({"classes": 2, "in_channels": 4}, r"allowed: \['classes', 'pooling', 'dropout', 'activation'\]"),
    ({"classes": 0}, r"aux_params\['classes'\]=0"),
    ({"classes": 2, "pooling": "avgmax"}, r"aux_params\['pooling'\]='avgmax' is not allowed; use 'avg' or 'max'"),
    ({"classes": 2, "dropout": 1}, r"aux_params\['dropout'\]=1 must be a number in \[0, 1\)"),
    ({"classes": 2, "activation": "argmax"}, r"aux_params\['activation'\]='argmax' is not allowed; use one of \[None, "),
    ({"classes": 2, "activation": nn.Sigmoid}, r"aux_params\['activation'\]=<class .*Sigmoid'> is not allowed"),
])
def test_bad_aux_params(bad, message):
    with pytest.raises(ValueError, match=message):
        blocks.UNet2d(channels=(2, 4), aux_params=bad)


@pytest.mark.parametrize("name, ndim", unet_names())
def test_every_registered_unet_takes_it(name, ndim, tmp_path):
    net = tiny(name, ndim, aux_params={"classes": 3, "pooling": "max"}).eval()
    x = torch.randn(2, net.in_planes, *(net.min_size + 2,) * ndim)  # the registered U-Nets are isotropic
    mask, logits = net(x)
    assert mask.shape == (2, net.out_planes, *x.shape[2:]) and logits.shape == (2, 3)
    again = blocks.from_pretrained(net.save_pretrained(tmp_path)).eval()
    assert again.config["aux_params"] == {"classes": 3, "pooling": "max"}
    with torch.no_grad():
        for got, want in zip(again(x), (mask, logits)):
            assert torch.equal(got, want)


def test_fx_and_export():
    net = blocks.UNet2d(channels=(2, 4, 8), layers=1, aux_params={"classes": 3}).eval()
    x = torch.randn(2, 1, 20, 17)
    want = net(x)
    traced = torch.fx.symbolic_trace(net)
    for got, expected in zip(traced(x), want):
        assert torch.equal(got, expected)
    exported = torch.export.export(net, (x,), dynamic_shapes=({0: Dim("batch", min=1, max=8)},))
    other = torch.randn(5, 1, 20, 17)
    for got, expected in zip(exported.module()(other), net(other)):
        torch.testing.assert_close(got, expected)
