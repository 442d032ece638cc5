"""Tests of torchvision's video ResNets in blocks: `from_torchvision` on r3d_18 and mc3_18, their geometry, and the
3-D ResNets they give as U-Net encoders (per-dimension reductions, equal ones included)."""

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models import video as tv_video

from blocks import ResNet, UNet3d, from_torchvision
from blocks.backbones import BackboneReader
from blocks.resnet import VIDEO_ARCHS

pytestmark = pytest.mark.usefixtures("one_thread")

# torchvision's published parameter counts (R3D_18_Weights / MC3_18_Weights meta["num_params"]), 400 classes
PARAMETERS = {"r3d_18": 33_371_472, "mc3_18": 11_695_440}
REDUCTIONS = {
    "r3d_18": [(1, 2, 2), (1, 2, 2), (2, 4, 4), (4, 8, 8), (8, 16, 16)],
    "mc3_18": [(1, 2, 2), (1, 2, 2), (1, 4, 4), (1, 8, 8), (1, 16, 16)],
}
CLIP = (1, 3, 4, 32, 32)


def count(module):
    return sum(p.numel() for p in module.parameters())


def perturbed(model):
    """``model`` in eval mode with norm statistics and affine parameters moved off their defaults, so that a wrong
    mapping shows in the outputs."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm3d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.2)
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.num_batches_tracked.fill_(7)
        model.fc.weight.normal_(0, 0.05)
        model.fc.bias.normal_(0, 0.1)
    return model.eval()


@pytest.fixture(scope="module")
def video():
    """torchvision's r3d_18 and mc3_18, random weights (never downloaded), perturbed, in eval mode."""
    models = {}
    for name in VIDEO_ARCHS:
        torch.manual_seed(0)
        models[name] = perturbed(getattr(tv_video, name)(weights=None))
    return models


def torchvision_maps(model, x):
    """The stem's and each stage's output of a torchvision video ResNet."""
    maps = []
    hooks = [getattr(model, name).register_forward_hook(lambda m, a, out: maps.append(out.clone()))
             for name in ("stem", "layer1", "layer2", "layer3", "layer4")]
    try:
        output = model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return output, maps


# ---- from_torchvision: equal outputs, geometry, parameter counts -------------------------------------------------


@pytest.mark.parametrize("name", list(VIDEO_ARCHS))
@pytest.mark.parametrize("source", ["module", "state_dict", "state_dict+arch"])
def test_from_torchvision_gives_the_video_resnets_outputs(video, name, source):
    reference = video[name]
    if source == "module":
        model = from_torchvision(reference)
    else:
        model = from_torchvision(reference.state_dict(), arch=name if source == "state_dict+arch" else None)
    assert isinstance(model, ResNet) and model.ndim == 3 and model.training is (source != "module")
    assert count(model) == count(reference) == PARAMETERS[name]
    model.eval()
    torch.manual_seed(1)
    x = torch.randn(*CLIP)
    with torch.no_grad():
        expected, theirs = torchvision_maps(reference, x)
        torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)
        ours = model.forward_intermediates(x, intermediates_only=True)
    assert len(ours) == len(theirs) == 5
    for mine, other in zip(ours, theirs):
        torch.testing.assert_close(mine, other, rtol=1e-5, atol=1e-5)
    assert model.layer1[0].branch[0].norm.num_batches_tracked == 7


@pytest.mark.parametrize("name", list(VIDEO_ARCHS))
def test_video_resnet_geometry(video, name):
    model = from_torchvision(video[name])
    with torch.device("meta"):
        table = ResNet(**VIDEO_ARCHS[name], in_planes=3, num_classes=400)
    assert model.config == table.config  # the table's arguments, inferred from the weights
    assert model.pool is None and model.chain == ["stem", "layer1", "layer2", "layer3", "layer4"]
    assert [f["reductions"] for f in model.feature_info] == REDUCTIONS[name]
    assert [f["reduction"] for f in model.feature_info] == [max(r) for r in REDUCTIONS[name]]
    ours = {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv3d)}
    theirs = [m for m in video[name].modules() if isinstance(m, nn.Conv3d)]
    assert len(ours) == len(theirs) == 20  # same convs, in the same order
    assert [(m.kernel_size, m.stride, m.padding) for m in ours.values()] == [
        (m.kernel_size, m.stride, m.padding) for m in theirs
    ]
    temporal = [m.kernel_size[0] for key, m in ours.items() if ".branch." in key]
    assert temporal == ([3] * 16 if name == "r3d_18" else [3] * 4 + [1] * 12)  # mc3: 3x3x3 in stage 1 only
    x = torch.empty(1, 3, 9, 37, 41, device="meta")
    with torch.device("meta"), torch.no_grad():
        maps = ResNet(**VIDEO_ARCHS[name], num_classes=None).forward_intermediates(x, intermediates_only=True)
    assert [tuple(m.shape[2:]) for m in maps] == [tuple(-(-n // r) for n, r in zip((9, 37, 41), reduction))
                                                  for reduction in REDUCTIONS[name]]


@pytest.mark.parametrize("name", list(VIDEO_ARCHS))
def test_video_archs_table_builds_torchvision_counts(name):
    with torch.device("meta"):
        assert count(ResNet(**VIDEO_ARCHS[name], num_classes=400)) == PARAMETERS[name]


def test_grey_clips_and_a_backbone(video):
    reference = video["r3d_18"]
    grey = from_torchvision(reference, in_planes=1).eval()
    assert grey.in_planes == 1 and grey.stem.conv.in_channels == 1
    x = torch.randn(1, 1, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(grey(x), reference(x.expand(-1, 3, -1, -1, -1)), rtol=1e-5, atol=1e-5)
    weights = {k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    backbone = from_torchvision(weights)
    assert backbone.num_classes is None and backbone.fc is None and backbone.ndim == 3


def test_a_video_resnet_of_bottlenecks_with_mixed_convolutions():
    """torchvision's generic VideoResNet: bottlenecks (k x k conv in conv2), 3x3x3 then 1x3x3 stages."""
    torch.manual_seed(0)
    parts = tv_video.resnet
    conv = [parts.Conv3DSimple] + [parts.Conv3DNoTemporal] * 3
    reference = perturbed(tv_video.VideoResNet(parts.Bottleneck, conv, [1, 1, 1, 1], parts.BasicStem, num_classes=3))
    model = from_torchvision(reference.state_dict()).eval()
    assert model.layer1[0].hidden_planes == 64 and model.num_features == 2048
    assert model.strides == ((1, 1, 1), (1, 2, 2), (1, 2, 2), (1, 2, 2))
    assert model.kernel_sizes == ((3, 3, 3), (1, 3, 3), (1, 3, 3), (1, 3, 3))
    assert count(model) == count(reference)
    x = torch.randn(1, 3, 3, 20, 20)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-5, atol=1e-5)


# ---- refusals ------------------------------------------------------------------------------------------------------


def test_r2plus1d_18_is_refused_by_name():
    reference = tv_video.r2plus1d_18(weights=None)
    message = (r"from_torchvision: these are the weights of torchvision's r2plus1d_18 \(keys such as "
               r"\['layer1\.0\.conv1\.0\.0\.weight', 'layer1\.0\.conv1\.0\.1\.bias'\]\): its \(2\+1\)-D convolutions")
    with pytest.raises(ValueError, match=message):
        from_torchvision(reference)
    with pytest.raises(ValueError, match=r"r2plus1d_18 .* the video ResNets it reads are \['r3d_18', 'mc3_18'\]"):
        from_torchvision(reference.state_dict(), arch="r3d_18")


def edited(state, drop=(), add=None, reshape=None):
    state = {k: v for k, v in state.items() if k not in drop}
    state.update(add or {})
    for key in reshape or ():
        state[key] = state[key][:1]
    return state


@pytest.mark.parametrize(
    "edit, arch, message",
    [
        ({"drop": ["layer3.1.conv2.1.running_var"]}, None, r"missing keys \['layer3\.1\.conv2\.1\.running_var'\]"),
        ({"drop": ["layer2.0.downsample.0.weight"]}, None, r"missing keys \['layer2\.0\.downsample\.0\.weight'\]"),
        ({"add": {"stem.2.weight": torch.ones(1)}}, None, r"unexpected keys \['stem\.2\.weight'\]"),
        ({"reshape": ["layer4.0.downsample.1.weight"]}, None,
         r"mis-shaped keys \['layer4\.0\.downsample\.1\.weight: \(1,\), expected \(512,\)'\]"),
        ({}, "mc3_18", r"mis-shaped keys \['layer2\.0\.conv1\.0\.weight: \(128, 64, 3, 3, 3\), expected "
                       r"\(128, 64, 1, 3, 3\)', "),
        ({"drop": ["stem.0.weight"]}, None,
         r"cannot infer the video ResNet's kernels: missing keys \['stem\.0\.weight'\]; pass arch= one of "
         r"\['r3d_18', 'mc3_18'\]"),
        ({"drop": ["stem.0.weight"]}, "r3d_18", r"missing keys \['stem\.0\.weight'\]"),
        ({"add": {"stem.0.weight": torch.ones(64, 3, 7, 7)}}, None,
         r"stem\.0\.weight has shape \(64, 3, 7, 7\); in torchvision's video ResNets it is the 5-D kernel"),
        ({}, "resnet18", r"from_torchvision got arch='resnet18' for the weights of a torchvision video ResNet \(keys "
                         r"stem\.0\.\*, layer1\.0\.conv1\.0\.\*\); use None or one of \['r3d_18', 'mc3_18'\]"),
        ({}, "r2plus1d_18", r"arch='r2plus1d_18' is not allowed; use one of \['r3d_18', 'mc3_18'\]$"),
    ],
)
def test_bad_video_weights_are_named(video, edit, arch, message):
    state = edited(video["r3d_18"].state_dict(), **edit)
    with pytest.raises(ValueError, match=message):
        from_torchvision(state, arch=arch)


def test_a_video_arch_for_2d_weights_is_refused():
    state = torchvision.models.resnet18(weights=None).state_dict()
    with pytest.raises(ValueError, match=r"from_torchvision got arch='r3d_18' for the weights of a torchvision 2-D "
                                         r"ResNet \(keys conv1\.\*, bn1\.\*\); use None or one of \['resnet18', "):
        from_torchvision(state, arch="r3d_18")


def test_a_module_built_otherwise_than_its_weights_say_is_refused():
    reference = tv_video.r3d_18(weights=None)
    reference.layer2[0].conv1[0].stride = (1, 2, 2)  # the weights cannot tell: the module can
    with pytest.raises(ValueError, match=r"from_torchvision: this VideoResNet is not built as the ResNet its weights "
                                         r"describe: layer2\.0\.conv1\.0\.stride=\(1, 2, 2\), expected \(2, 2, 2\)$"):
        from_torchvision(reference)
    assert from_torchvision(reference.state_dict()).layer2[0].branch[0].conv.stride == (2, 2, 2)
    image = torchvision.models.resnet18(weights=None)
    image.maxpool = nn.Identity()  # CIFAR-style
    with pytest.raises(ValueError, match=r"maxpool is Identity\(\), expected MaxPool2d\(kernel_size=3, stride=2, "
                                         r"padding=1, dilation=1, ceil_mode=False\)"):
        from_torchvision(image)


# ---- as U-Net encoders: per-dimension reductions, two maps at one reduction -----------------------------------------


@pytest.mark.parametrize("name", list(VIDEO_ARCHS))
def test_unet3d_on_a_video_resnet_gives_the_input_size(video, name):
    torch.manual_seed(0)
    backbone = from_torchvision(video[name])  # its classifier is pruned by the U-Net
    model = UNet3d(out_planes=2, encoder=backbone, decoder_channels=(8, 8, 8, 8, 4), layers=1, block="plain").eval()
    assert backbone.fc is None and backbone.num_classes is None
    expected = tuple(r if len(set(r)) > 1 else r[0] for r in REDUCTIONS[name])
    assert model.reader == BackboneReader((64, 64, 128, 256, 512), expected, 3, "intermediates", (False,) * 5)
    assert model.reductions == expected and model.min_size == tuple(r + 1 for r in REDUCTIONS[name][-1])
    assert [stage.sized for stage in model.decoder] == [True, True, True, False, True]  # stage to layer1 -> stem: 1
    x = torch.randn(1, 3, 9, 37, 41)
    with torch.no_grad():
        maps = backbone.forward_intermediates(x, intermediates_only=True)
        seen = []
        hooks = [s.register_forward_hook(lambda m, a, out: seen.append(tuple(out.shape))) for s in model.decoder]
        y = model(x)
        for hook in hooks:
            hook.remove()
    assert y.shape == (1, 2, 9, 37, 41)
    assert seen == [(1, 8, *m.shape[2:]) for m in maps[-2::-1]] + [(1, 4, 9, 37, 41)]
