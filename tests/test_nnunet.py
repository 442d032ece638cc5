"""blocks.nnunet: the twins of nnU-Net's networks, the core options they use, and nnU-Net itself.

The comparisons with the originals need ``dynamic-network-architectures`` (the ``nnunet`` extra) and
skip without it; the nnU-Net test (``nnunetv2``) is ``slow``.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import blocks
from blocks.nnunet import PlainConvUNet, ResidualEncoderUNet, from_nnunet, nnunet_key_map

NORMS = {1: nn.InstanceNorm1d, 2: nn.BatchNorm2d, 3: nn.InstanceNorm3d}
CONVS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
DROPS = {1: nn.Dropout1d, 2: nn.Dropout2d, 3: nn.Dropout3d}


def plan(ndim: int, anisotropic: bool, residual: bool, block: str = "BasicBlockD", **extra) -> dict:
    """A small plan of nnU-Net's arguments: 4 stages (3 in 1-D), isotropic or anisotropic."""
    n = 3 if ndim == 1 else 4
    if anisotropic and ndim == 3:
        strides, kernels = (1, (1, 2, 2), (2, 2, 2), (1, 2, 2)), ((1, 3, 3), (1, 3, 3), 3, 3)
    elif anisotropic:
        strides, kernels = (1, (2, 1)[:ndim] if ndim == 2 else 4, 2, 2)[:n], (3, (3, 5)[:ndim] if ndim == 2 else 5, 3, 3)[:n]
    else:
        strides, kernels = (1, 2, 2, 2)[:n], 3
    arguments = dict(
        input_channels=2, n_stages=n, features_per_stage=(4, 8, 16, 24)[:n], conv_op=CONVS[ndim], kernel_sizes=kernels,
        strides=strides, num_classes=3, n_conv_per_stage_decoder=(1, 2, 1)[: n - 1],
        norm_op=NORMS[ndim], norm_op_kwargs={"eps": 1e-5, "affine": True}, nonlin=nn.LeakyReLU,
        nonlin_kwargs={"inplace": True},
    )
    if residual:
        arguments.update(n_blocks_per_stage=(1, 2, 2, 1)[:n], block=block)
        if block == "BottleneckD":
            arguments.update(bottleneck_channels=(2, 4, 8, 8)[:n], stem_channels=6)
    else:
        arguments.update(n_conv_per_stage=(1, 2, 2, 2)[:n])
    arguments.update(extra)
    return arguments


def input_shape(ndim: int) -> tuple[int, ...]:
    """A batch of 2 whose size every plan's stride product divides."""
    return (2, 2) + (16, 32, 32)[3 - ndim:]


GRID = [
    pytest.param(ndim, anisotropic, residual, block, extra,
                 id=f"{ndim}d-{'aniso' if anisotropic else 'iso'}-{block if residual else 'plain'}-{'+'.join(extra) or 'base'}")
    for ndim in (1, 2, 3)
    for anisotropic in (False, True)
    for residual, block in ((False, None), (True, "BasicBlockD"), (True, "BottleneckD"))
    for extra in ({}, {"conv_bias": True, "dropout_op": "drop", "nonlin": nn.PReLU, "nonlin_kwargs": {}})
    if not (extra and anisotropic)
]


def arguments_for(ndim, anisotropic, residual, block, extra) -> dict:
    """The plan of a grid entry, with dropout of the dimension where asked."""
    extra = dict(extra)
    if extra.get("dropout_op") == "drop":
        extra.update(dropout_op=DROPS[ndim], dropout_op_kwargs={"p": 0.2})
    return plan(ndim, anisotropic, residual, block or "BasicBlockD", **extra)


def originals():
    """nnU-Net's classes, or a skip."""
    unet = pytest.importorskip("dynamic_network_architectures.architectures.unet")
    residual = pytest.importorskip("dynamic_network_architectures.building_blocks.residual")
    return unet, residual


def build_pair(ndim, anisotropic, residual, block, extra, device="cpu"):
    """(nnU-Net's network, blocks' twin) for one grid entry."""
    unet, parts = originals()
    arguments = arguments_for(ndim, anisotropic, residual, block, extra)
    theirs = dict(arguments)
    if residual:
        theirs["block"] = getattr(parts, arguments["block"])
    original_class = unet.ResidualEncoderUNet if residual else unet.PlainConvUNet
    twin_class = ResidualEncoderUNet if residual else PlainConvUNet
    with torch.device(device):
        return original_class(**theirs), twin_class(**arguments)


def randomize(model: nn.Module) -> None:
    """Random weights and norm statistics (positive variances), so that equal outputs mean equal weights."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if value.is_floating_point():
                noise = torch.rand(value.shape, generator=generator) + 0.5 if "running_var" in key else \
                    torch.randn(value.shape, generator=generator) * 0.3
                value.copy_(noise)


def flops(model: nn.Module, x: torch.Tensor) -> int:
    """Forward FLOPs counted by torch's FlopCounterMode."""
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops()


@pytest.mark.parametrize("ndim,anisotropic,residual,block,extra", GRID)
def test_twin_has_the_originals_parameters_flops_and_feature_map_size(ndim, anisotropic, residual, block, extra):
    original, twin = build_pair(ndim, anisotropic, residual, block, extra, device="meta")
    assert sum(p.numel() for p in twin.parameters()) == sum(p.numel() for p in original.parameters())
    x = torch.empty(input_shape(ndim), device="meta")
    for deep_supervision in (False, True):
        original.decoder.deep_supervision = twin.decoder.deep_supervision = deep_supervision
        assert flops(twin, x) == flops(original, x) > 0
        size = input_shape(ndim)[2:]
        assert twin.compute_conv_feature_map_size(size) == original.compute_conv_feature_map_size(size)


@pytest.mark.parametrize("ndim,anisotropic,residual,block,extra", GRID)
def test_from_nnunet_gives_equal_outputs_with_and_without_deep_supervision(ndim, anisotropic, residual, block, extra):
    original, _ = build_pair(ndim, anisotropic, residual, block, extra)
    randomize(original)
    original.eval()
    twin = from_nnunet(original).eval()
    x = torch.randn(input_shape(ndim), generator=torch.Generator().manual_seed(1))
    for deep_supervision in (False, True):
        original.decoder.deep_supervision = twin.decoder.deep_supervision = deep_supervision
        with torch.no_grad():
            expected, got = original(x), twin(x)
        if deep_supervision:
            assert [tuple(y.shape) for y in got] == [tuple(y.shape) for y in expected]
            assert len(got) == original.encoder.strides.__len__() - 1
            for a, b in zip(got, expected):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        else:
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("residual", [False, True])
def test_from_nnunet_reads_a_state_dict_with_plans_or_arch_kwargs(tmp_path, residual):
    original, _ = build_pair(3, True, residual, "BasicBlockD", {})
    randomize(original)
    original.eval()
    arguments = arguments_for(3, True, residual, "BasicBlockD", {})
    dotted = {k: blocks.configurable.dotted_name(v) if isinstance(v, type) else v for k, v in arguments.items()}
    dotted.pop("input_channels"), dotted.pop("num_classes")  # read from the weights
    name = "ResidualEncoderUNet" if residual else "PlainConvUNet"
    plans = {"configurations": {
        "3d_fullres": {"architecture": {"network_class_name": f"dynamic_network_architectures.architectures.unet.{name}",
                                        "arch_kwargs": dotted}},
        "3d_lowres": {"inherits_from": "3d_fullres"},
    }}
    (tmp_path / "plans.json").write_text(json.dumps(plans))
    checkpoint = {"network_weights": original.state_dict(), "trainer_name": "nnUNetTrainer"}
    x = torch.randn(1, 2, 8, 16, 16)
    expected = original(x)
    for twin in (from_nnunet(checkpoint, plans=tmp_path / "plans.json", configuration="3d_lowres"),
                 from_nnunet(original.state_dict(), **dotted)):
        assert type(twin).__name__ == name and twin.in_planes == 2 and twin.out_planes == 3
        torch.testing.assert_close(twin.eval()(x), expected, rtol=1e-5, atol=1e-6)


def test_from_nnunet_names_a_key_that_does_not_map_and_differing_aliases():
    original, _ = build_pair(2, False, True, "BasicBlockD", {})
    state = original.state_dict()
    arguments = arguments_for(2, False, True, "BasicBlockD", {})
    with pytest.raises(ValueError, match=r"key 'decoder.seg_layers.9.weight' does not map onto the ResidualEncoderUNet"):
        from_nnunet({**state, "decoder.seg_layers.9.weight": torch.zeros(1)}, **arguments)
    bad = dict(state)
    bad["encoder.stem.convs.0.all_modules.0.weight"] = bad["encoder.stem.convs.0.all_modules.0.weight"] + 1
    with pytest.raises(ValueError, match=r"hold different tensors"):
        from_nnunet(bad, **arguments)
    with pytest.raises(ValueError, match=r"the weights lack \['decoder.seg_layers.0.bias'\]"):
        from_nnunet({k: v for k, v in state.items() if k != "decoder.seg_layers.0.bias"}, **arguments)
    with pytest.raises(ValueError, match=r"needs the architecture"):
        from_nnunet(state)


def test_the_key_map_covers_every_twin_key_once():
    twin = ResidualEncoderUNet(**plan(3, True, True, "BottleneckD", dropout_op=nn.Dropout3d))
    theirs, aliases = nnunet_key_map(twin)
    assert sorted(theirs.values()) == sorted(twin.state_dict())
    assert theirs["encoder.stages.1.blocks.0.skip.1.norm.weight"] == "encoder.1.0.shortcut.proj.norm.weight"
    assert aliases["encoder.stages.0.blocks.0.conv2.all_modules.2.weight"] == "encoder.stages.0.blocks.0.conv2.norm.weight"
    assert theirs["decoder.seg_layers.2.weight"] == "head.conv.weight"


@pytest.mark.parametrize("twin_class,residual", [(PlainConvUNet, False), (ResidualEncoderUNet, True)])
def test_twins_take_any_input_size(twin_class, residual):
    twin = twin_class(**plan(3, True, residual)).eval()
    assert twin(torch.randn(1, 2, 5, 13, 11)).shape == (1, 3, 5, 13, 11)
    twin.decoder.deep_supervision = True
    assert [tuple(y.shape[2:]) for y in twin(torch.randn(1, 2, 5, 13, 11))] == [(5, 13, 11), (5, 7, 6), (3, 4, 3)]


def test_save_pretrained_writes_nnunets_arguments_and_loads(tmp_path):
    twin = ResidualEncoderUNet(**plan(2, False, True, "BottleneckD", deep_supervision=True)).eval()
    folder = twin.save_pretrained(tmp_path / "twin")
    config = json.loads((folder / "config.json").read_text())
    assert config["blocks_class"] == "ResidualEncoderUNet"
    assert config["conv_op"] == "torch.nn.modules.conv.Conv2d"
    assert config["norm_op"] == "torch.nn.modules.batchnorm.BatchNorm2d"
    assert config["block"] == "BottleneckD" and config["bottleneck_channels"] == [2, 4, 8, 8]
    again = blocks.from_pretrained(folder)
    x = torch.randn(1, 2, 19, 23)
    assert all(torch.equal(a, b) for a, b in zip(again(x), twin(x)))


def test_initialize_is_nnunets():
    twin = ResidualEncoderUNet(**plan(3, False, True, conv_bias=True))
    twin.apply(twin.initialize)
    convs = [m for m in twin.modules() if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d))]
    assert all(m.bias is None or not m.bias.any() for m in convs)
    weight = twin.encoder[1][0].branch[0].conv.weight
    fan_in = weight[0].numel()
    assert abs(weight.std().item() - (2 / (1 + 1e-4) / fan_in) ** 0.5) < 0.1 * (2 / fan_in) ** 0.5
    for block in (m for m in twin.modules() if isinstance(m, blocks.residual.ResidualBlock)):
        assert not block.branch[-1].norm.weight.any() and not block.branch[-1].norm.bias.any()
    plain = PlainConvUNet(**plan(1, False, False, conv_bias=True))
    before = plain.stem.conv.weight.clone()
    plain.apply(plain.initialize)  # nnU-Net's He init leaves 1-D convs alone
    assert torch.equal(plain.stem.conv.weight, before)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"conv_op": nn.ConvTranspose3d}, r"conv_op=.*ConvTranspose3d.* is not one blocks can build; use torch.nn.Conv1d"),
        ({"conv_op": "numpy.ndarray"}, r"conv_op='numpy.ndarray' is not a class of torch.nn"),
        ({"dropout_op": type("MyDropout", (nn.Module,), {})}, r"dropout_op=.*MyDropout.* is not one of torch's dropouts"),
        ({"strides": (2, 2, 2, 2)}, r"strides\[0\]=2: the twins need 1 there"),
        ({"nonlin_first": True}, r"nonlin_first=True .* is not built by blocks; use False"),
        ({"features_per_stage": (4, 8)}, r"features_per_stage=\(4, 8\) must have 4 entries"),
        ({"n_stages": 1}, r"n_stages=1 must be at least 2"),
    ],
)
def test_arguments_blocks_cannot_honour_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        PlainConvUNet(**{**plan(3, False, False), **change})


def test_bottleneck_without_width_and_unknown_block_are_refused():
    with pytest.raises(ValueError, match=r"block=BottleneckD needs bottleneck_channels"):
        ResidualEncoderUNet(**plan(3, False, True, "BottleneckD", bottleneck_channels=None))
    with pytest.raises(ValueError, match=r"block='ResNeXtBlock' is not one the twin builds"):
        ResidualEncoderUNet(**plan(3, False, True, "ResNeXtBlock"))


# The core options the twins use, on blocks' own classes.

def test_dropout_sits_between_conv_and_norm():
    assert list(blocks.ConvModern3d(4, 8, layer_order="old", normalizer="batch", dropout=0.1)._modules) == [
        "conv", "dropout", "norm", "act"]
    assert list(blocks.ConvModern2d(4, 8, dropout=lambda: nn.Dropout2d(0.3))._modules) == ["norm", "act", "conv", "dropout"]
    block = blocks.BlockBottleneck1d(4, 8, dropout=0.5)
    assert [hasattr(unit, "dropout") for unit in block.branch] == [False, True, False]
    with pytest.raises(ValueError, match=r"dropout=1.5 must be a probability 0 <= p < 1"):
        blocks.ConvModern2d(4, 8, dropout=1.5)
    with pytest.raises(TypeError, match=r"dropout=Dropout\(p=0.1, inplace=False\) is a layer instance"):
        blocks.ConvModern2d(4, 8, dropout=nn.Dropout(0.1))


def test_bias_beside_a_norm_reaches_the_branch_not_the_shortcut():
    block = blocks.BlockPlain2d(4, 8, stride=2, normalizer="batch", bias=True)
    assert [unit.conv.bias is not None for unit in block.branch] == [True, True]
    assert block.shortcut.conv.bias is None
    net = blocks.UNet2d(channels=(4, 8), layers=1, bias=False, normalizer=None, upsample="transpose", block="conv")
    assert [m.bias for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m is not net.head.conv] == [None] * 5


@pytest.mark.parametrize("size", [7, 8, 9])
def test_pool_shortcut_averages_then_projects_only_when_channels_change(size):
    block = blocks.BlockPlain1d(4, 4, stride=2, shortcut="pool", layer_order="old", normalizer="batch").eval()
    assert list(block.shortcut._modules) == ["pool"]
    x = torch.randn(1, 4, size)
    expected = nn.functional.avg_pool1d(x, 2, 2, ceil_mode=True)
    torch.testing.assert_close(block.shortcut(x), expected)
    assert block(x).shape == (1, 4, (size + 1) // 2)
    projected = blocks.BlockPlain1d(4, 6, shortcut="pool")
    assert list(projected.shortcut._modules) == ["proj"] and projected.shortcut.proj.conv.bias is None
    with pytest.raises(ValueError, match=r"shortcut='pool' averages to down-scale; it cannot up-scale"):
        blocks.BlockPlain1d(4, 6, stride=2, scaler="up", shortcut="pool")


def test_unet_hidden_width_stem_planes_and_an_empty_first_level():
    net = blocks.UNet2d(channels=(4, 8), layers=(0, 1), block="plain", hidden_planes="output", stem_planes=4,
                        decoder_layers=1)
    assert len(net.encoder[0]) == 0 and net.encoder[1][0].branch[0].out_planes == 8
    assert net(torch.randn(1, 1, 9, 10)).shape == (1, 1, 9, 10)
    wide = blocks.UNet2d(channels=(4, 8), layers=1, stem_planes=6, hidden_planes=(3, 5))
    assert wide.stem.out_planes == 6 and wide.encoder[0][0].in_planes == 6
    assert [wide.encoder[0][0].hidden_planes, wide.encoder[1][0].hidden_planes] == [3, 5]
    with pytest.raises(ValueError, match=r"layers\[0\] may also be 0 where the stem's output is level 0"):
        blocks.UNet2d(channels=(4, 8), layers=(0, 1), stem_planes=6, decoder_layers=1)
    with pytest.raises(ValueError, match=r"hidden_planes='wide' is not allowed; use one of"):
        blocks.UNet2d(channels=(4, 8), hidden_planes="wide")


@pytest.mark.slow
def test_nnunet_builds_trains_and_predicts_with_the_twin(tmp_path):
    """nnunetv2's own code: the plan names the twin, its deep-supervision loss and its sliding-window predictor."""
    get_network = pytest.importorskip("nnunetv2.utilities.get_network_from_plans")
    from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
    from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
    from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

    arguments = plan(3, True, True)
    dotted = {k: blocks.configurable.dotted_name(v) if isinstance(v, type) else v for k, v in arguments.items()}
    dotted.pop("input_channels"), dotted.pop("num_classes")
    network = get_network.get_network_from_plans(
        "blocks.nnunet.ResidualEncoderUNet", dotted, ["conv_op", "norm_op", "nonlin"], 2, 3,
        allow_init=True, deep_supervision=True,
    )
    assert type(network) is ResidualEncoderUNet and network.decoder.deep_supervision
    x = torch.randn(2, 2, 8, 32, 32)
    target = torch.randint(0, 3, (2, 1, 8, 32, 32))
    outputs = network(x)
    scales = [1.0, 0.5, 0.25]
    targets = [nn.functional.interpolate(target.float(), size=o.shape[2:], mode="nearest").long() for o in outputs]
    loss = DeepSupervisionWrapper(
        DC_and_CE_loss({"batch_dice": True, "smooth": 1e-5, "do_bg": False, "ddp": False}, {}, dice_class=MemoryEfficientSoftDiceLoss),
        weight_factors=[s / sum(scales) for s in scales],
    )
    optimizer = torch.optim.SGD(network.parameters(), lr=1e-2, momentum=0.99, nesterov=True)
    value = loss(outputs, targets)
    value.backward()
    optimizer.step()
    assert torch.isfinite(value)

    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    network.decoder.deep_supervision = False
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=False, device=torch.device("cpu"),
                                perform_everything_on_device=False, allow_tqdm=False)
    predictor.network = network.eval()
    predictor.configuration_manager = type("Plan", (), {"patch_size": (8, 32, 32)})()
    predictor.label_manager = type("Labels", (), {"num_segmentation_heads": 3})()
    predictor.allowed_mirroring_axes = None
    predictor.list_of_parameters = []
    image = torch.randn(2, 12, 48, 40)  # (C, D, H, W): several tiles in every dimension but the first
    with torch.no_grad():
        logits = predictor.predict_sliding_window_return_logits(image)
    assert logits.shape == (3, 12, 48, 40) and torch.isfinite(logits).all()


@pytest.mark.slow
def test_nnunets_trainer_trains_the_twin(tmp_path):
    """nnU-Net plans and preprocesses a tiny synthetic dataset; its trainer then trains the twin the plan names."""
    pytest.importorskip("nnunetv2")
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parent / "scripts" / "nnunet_trainer.py"
    result = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=600,
                            check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "TRAINED"


def test_the_published_side_by_side_has_every_model_and_the_time_ratio():
    """benchmarks/nnunet.json (written by benchmarks/nnunet.py) renders as the nnU-Net page's table."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "nnunet.py"
    spec = importlib.util.spec_from_file_location("benchmarks_nnunet_test", path)
    script = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    results = json.loads((path.parent / "nnunet.json").read_text())
    assert [row["model"] for row in results["rows"]] == list(script.MODELS)
    assert results["rows"][0]["parameters"] == results["rows"][1]["parameters"]  # the twin's count is the original's
    assert results["pair"]["flops"]["twin"] == results["pair"]["flops"]["original"]
    text = script.table(results)
    assert "ratio **" in text and all(name in text for name in script.MODELS)
