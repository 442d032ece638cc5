"""Save and load (blocks/hub.py): ``save_pretrained`` / ``blocks.from_pretrained``, and huggingface_hub's mixin.

* Each model writes exactly ``config.json`` and ``model.safetensors``; ``config.json`` holds exactly
  the arguments given (tuples as lists, a blocks encoder as its nested config); ``from_pretrained``
  rebuilds the same class, in eval mode, with equal state_dicts and outputs.
* Refusals at save time, with their messages: a callable normalizer, an outside encoder, a pruned
  model; ``from_pretrained`` of an incomplete folder or an unknown class.
* Offline with the core install: in a subprocess where huggingface_hub, timm and torchvision
  cannot be imported.
* huggingface_hub's ``PyTorchModelHubMixin`` (local folders only, no network): which folders each
  side loads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

import blocks
from blocks.configurable import register_savable

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]


def seeded(make):
    torch.manual_seed(0)
    return make()


def randn(*shape, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def inflated_unet():
    encoder = blocks.inflate(blocks.resnet18(in_planes=1, num_classes=None))
    assert encoder.ndim == 3 and encoder.stem.conv.kernel_size == (7, 7, 7)
    return blocks.UNet3d(encoder=encoder, layers=1)


RESNET_3D = {"blocks_class": "ResNet", "layers": [1, 1, 1, 1], "block": "plain", "in_planes": 1, "num_classes": None,
             "ndim": 3}
CASES = {  # name -> (build, input, config.json)
    "unet2d": (
        lambda: blocks.UNet2d(out_planes=2, channels=(2, 4, 8), layers=(1, 2, 1), upsample="interpolate"),
        (2, 1, 9, 11),
        {"blocks_class": "UNet2d", "out_planes": 2, "channels": [2, 4, 8], "layers": [1, 2, 1], "upsample": "interpolate"},
    ),
    "unet3d-resnet-encoder": (
        lambda: blocks.UNet3d(encoder=blocks.ResNet([1, 1, 1, 1], "plain", in_planes=1, num_classes=None, ndim=3),
                              layers=1),
        (1, 1, 3, 4, 33),
        {"blocks_class": "UNet3d", "layers": 1, "encoder": RESNET_3D},
    ),
    "unet3d-inflated-resnet18": (
        inflated_unet,
        (1, 1, 3, 4, 33),
        {"blocks_class": "UNet3d", "layers": 1, "encoder": {**RESNET_3D, "layers": [2, 2, 2, 2]}},
    ),
    "encodernet1d": (
        lambda: blocks.EncoderNet1d(in_planes=2, out_length=3, channels=(2, 4, 8), layers=1, block="plain"),
        (2, 2, 13),
        {"blocks_class": "EncoderNet1d", "in_planes": 2, "out_length": 3, "channels": [2, 4, 8], "layers": 1,
         "block": "plain"},
    ),
    "decodernet2d": (
        lambda: blocks.DecoderNet2d((97, 31), in_length=5, channels=(2, 4, 8), layers=1),
        (2, 5),
        {"blocks_class": "DecoderNet2d", "out_size": [97, 31], "in_length": 5, "channels": [2, 4, 8], "layers": 1},
    ),
    "block-group-norm": (
        lambda: blocks.BlockPlain2d(4, 8, stride=2, normalizer=("group", {"num_groups": 2}), activator="gelu"),
        (2, 4, 7, 9),
        {"blocks_class": "BlockPlain2d", "in_planes": 4, "out_planes": 8, "stride": 2,
         "normalizer": ["group", {"num_groups": 2}], "activator": "gelu"},
    ),
    "preset-unet16-1d": (
        lambda: blocks.unet16(ndim=1, channels=(2, 4, 8), out_planes=3),
        (2, 1, 9),
        {"blocks_class": "UNet1d", "channels": [2, 4, 8], "out_planes": 3, "layers": [2, 1, 1], "block": "plain"},
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_save_and_load(name, tmp_path):
    build, shape, expected = CASES[name]
    model = seeded(build).eval()
    folder = model.save_pretrained(tmp_path / "model")
    assert folder == tmp_path / "model"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert json.loads((folder / "config.json").read_text()) == expected
    assert model.config == expected

    state = model.state_dict()
    saved = load_file(folder / "model.safetensors")
    assert sorted(saved) == sorted(state)  # safetensors keeps its keys sorted
    assert all(torch.equal(saved[k], state[k]) for k in state)

    again = blocks.from_pretrained(folder)
    assert type(again) is type(model)
    assert not again.training
    assert again.config == expected
    loaded = again.state_dict()
    assert list(loaded) == list(state)
    assert all(loaded[k].device.type == "cpu" and torch.equal(loaded[k], state[k]) for k in state)
    x = randn(*shape)
    with torch.no_grad():
        expected_output = model(x)
        output = again(x)
    assert output.shape == expected_output.shape
    assert torch.equal(output, expected_output)


def test_encoder_with_a_classifier_is_saved_pruned(tmp_path):
    """The U-Net drops its encoder's head; the nested config says so, so the head is not rebuilt."""
    model = seeded(lambda: blocks.UNet1d(encoder=blocks.ResNet([1, 1, 1, 1], "plain", in_planes=1, ndim=1), layers=1))
    assert model.encoder.fc is None
    assert model.config == {
        "blocks_class": "UNet1d", "layers": 1,
        "encoder": {"blocks_class": "ResNet", "layers": [1, 1, 1, 1], "block": "plain", "in_planes": 1, "ndim": 1,
                    "num_classes": None},
    }
    again = blocks.from_pretrained(model.save_pretrained(tmp_path))
    assert type(again.encoder) is blocks.ResNet
    assert again.encoder.ndim == 1 and again.encoder.fc is None and again.encoder.num_classes is None
    assert again.channels == (64, 64, 128, 256, 512) and again.reductions == (2, 4, 8, 16, 32)
    x = randn(2, 1, 40)
    with torch.no_grad():
        assert torch.equal(again(x), model.eval()(x))


# -------------------------------------------------------------------------------------------- refusals


def test_callable_normalizer_is_refused(tmp_path):
    model = blocks.UNet2d(channels=(2, 4, 8), layers=1, normalizer=nn.BatchNorm2d)
    message = (
        "UNet2d: normalizer=<class 'torch.nn.modules.batchnorm.BatchNorm2d'> cannot be written to config.json; pass a "
        "registered name instead (for a normalizer or activator: blocks.register_normalizer / register_activator, "
        "then the name), or save the state_dict with torch.save"
    )
    with pytest.raises(ValueError) as error:
        model.save_pretrained(tmp_path / "out")
    assert str(error.value) == message
    assert not (tmp_path / "out").exists()  # refused before anything is written
    with pytest.raises(ValueError) as error:
        _ = model.config
    assert str(error.value) == message


def test_foreign_encoder_is_refused(tmp_path):
    timm = pytest.importorskip("timm")
    encoder = timm.create_model("test_resnet", pretrained=False, features_only=True)
    model = blocks.UNet2d(encoder=encoder, layers=1)
    with pytest.raises(ValueError) as error:
        model.save_pretrained(tmp_path / "out")
    assert str(error.value) == (
        "UNet2d: encoder=FeatureListNet is not a blocks network, so config.json cannot rebuild it; build the model "
        "from blocks' own networks to use save_pretrained, or save its state_dict with torch.save"
    )
    assert not (tmp_path / "out").exists()


def test_pruned_model_is_refused(tmp_path):
    model = blocks.ResNet([1, 1, 1, 1], "plain", num_classes=3)
    kept = [key for key in model.state_dict() if key.split(".")[0] in ("stem", "layer1", "layer2")]
    assert model.prune_intermediate_layers((0, 1, 2)) == [0, 1, 2]
    assert isinstance(model.layer3, nn.Identity) and isinstance(model.layer4, nn.Identity)  # timm's way
    assert list(model.state_dict()) == kept  # the kept stages keep their keys
    with pytest.raises(ValueError) as error:
        model.save_pretrained(tmp_path / "out")
    assert str(error.value) == (
        "ResNet was changed after it was built (prune_intermediate_layers((0, 1, 2), prune_norm=False)); its "
        "arguments no longer describe it: save its state_dict with torch.save instead"
    )
    assert not (tmp_path / "out").exists()


def test_pruning_only_the_head_is_still_described(tmp_path):
    """Keeping the deepest map drops only the head: the model is then ``num_classes=None``, and says so."""
    model = seeded(lambda: blocks.ResNet([1, 1, 1, 1], "plain", num_classes=3)).eval()
    assert model.prune_intermediate_layers(2) == [3, 4]
    assert model.config == {"blocks_class": "ResNet", "layers": [1, 1, 1, 1], "block": "plain", "num_classes": None}
    again = blocks.from_pretrained(model.save_pretrained(tmp_path))
    x = randn(1, 3, 40, 40)
    assert again.fc is None and again(x).shape == (1, 512, 2, 2)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))


def test_reset_classifier_is_saved(tmp_path):
    model = seeded(lambda: blocks.ResNet([1, 1, 1, 1], "plain", in_planes=1, num_classes=3)).eval()
    model.reset_classifier(7)
    assert model.config == {"blocks_class": "ResNet", "layers": [1, 1, 1, 1], "block": "plain", "in_planes": 1,
                            "num_classes": 7}
    again = blocks.from_pretrained(model.save_pretrained(tmp_path / "resnet"))
    assert again.num_classes == 7 and again.fc.out_features == 7
    x = randn(2, 1, 40, 40)
    with torch.no_grad():
        assert again(x).shape == (2, 7) and torch.equal(again(x), model(x))

    net = seeded(lambda: blocks.EncoderNet2d(channels=(2, 4, 8), layers=1)).eval()
    net.reset_classifier(7)
    assert net.config == {"blocks_class": "EncoderNet2d", "channels": [2, 4, 8], "layers": 1, "out_length": 7}
    again = blocks.from_pretrained(net.save_pretrained(tmp_path / "encnet"))
    assert again.out_length == 7
    x = randn(2, 1, 9, 9)
    with torch.no_grad():
        assert again(x).shape == (2, 7) and torch.equal(again(x), net(x))


def test_reset_classifier_with_another_pooling_is_saved(tmp_path):
    model = seeded(lambda: blocks.ResNet([1, 1, 1, 1], "plain", num_classes=3)).eval()
    model.reset_classifier(0, global_pool="")
    assert model.config == {"blocks_class": "ResNet", "layers": [1, 1, 1, 1], "block": "plain", "num_classes": 0,
                            "global_pool": ""}
    again = blocks.from_pretrained(model.save_pretrained(tmp_path / "map"))
    x = randn(1, 3, 40, 40)
    with torch.no_grad():
        assert again.avgpool is None and again(x).shape == (1, 512, 2, 2) and torch.equal(again(x), model(x))
    model.reset_classifier(5, global_pool="avgmax")
    assert model.config["global_pool"] == "avgmax" and model.config["num_classes"] == 5
    again = blocks.from_pretrained(model.save_pretrained(tmp_path / "avgmax"))
    with torch.no_grad():
        assert type(again.avgpool).__name__ == "AdaptiveAvgMaxPool" and torch.equal(again(x), model(x))


@pytest.mark.parametrize("missing", [["config.json"], ["model.safetensors"], ["config.json", "model.safetensors"]])
def test_from_pretrained_needs_both_files(missing, tmp_path):
    folder = blocks.UNet1d(channels=(2, 4), layers=1).save_pretrained(tmp_path / "model")
    for name in missing:
        (folder / name).unlink()
    with pytest.raises(ValueError) as error:
        blocks.from_pretrained(folder)
    assert str(error.value) == (
        f"from_pretrained: {folder} has no {' and no '.join(missing)} (written by save_pretrained)"
    )


def test_from_pretrained_refuses_an_unknown_class(tmp_path):
    folder = blocks.UNet1d(channels=(2, 4), layers=1).save_pretrained(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "blocks_class": "Sequential"}))
    with pytest.raises(ValueError) as error:
        blocks.from_pretrained(folder)
    assert str(error.value) == "config names blocks_class='Sequential', which is not a class of blocks that can be built"


def test_from_pretrained_refuses_weights_that_do_not_fit(tmp_path):
    folder = blocks.UNet1d(channels=(2, 4), layers=1).save_pretrained(tmp_path)
    state = load_file(folder / "model.safetensors")
    assert min(state) == "decoder.0.blocks.0.branch.0.act.weight"
    del state["decoder.0.blocks.0.branch.0.act.weight"]
    save_file(state, folder / "model.safetensors")
    with pytest.raises(ValueError, match=r"from_pretrained: model\.safetensors does not fit the UNet1d of config\.json: "
                                         r"missing decoder\.0\.blocks\.0\.branch\.0\.act\.weight$"):
        blocks.from_pretrained(folder)


# ------------------------------------------------------------------------------ offline, core install

OFFLINE = textwrap.dedent(
    """
    import importlib.abc, json, sys
    BLOCKED = ("huggingface_hub", "timm", "torchvision")

    class Blocked(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked in this test")
            return None

    for name in list(sys.modules):
        if name.split(".")[0] in BLOCKED:
            del sys.modules[name]
    sys.meta_path.insert(0, Blocked())

    import torch
    from safetensors.torch import save_file
    import blocks

    torch.set_num_threads(1)
    given, mine, subclass = sys.argv[1:4]
    model = blocks.from_pretrained(given)
    x = torch.randn(2, 1, 9, 11, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        save_file({"y": model(x)}, given + "/y.safetensors")
    torch.manual_seed(0)
    own = blocks.EncoderNet2d(channels=(2, 4, 8), layers=1).eval()
    again = blocks.from_pretrained(own.save_pretrained(mine))
    with torch.no_grad():
        same = torch.equal(again(x), own(x))
    try:
        blocks.from_pretrained(subclass)
        refused = "loaded"
    except ValueError as error:
        refused = str(error)
    blocked = sorted({n.split(".")[0] for n in sys.modules} & set(BLOCKED))
    print(json.dumps({"class": type(model).__name__, "same": same, "refused": refused, "imported": blocked}))
    """
)


def test_offline_without_huggingface_hub_timm_or_torchvision(tmp_path):
    model = seeded(lambda: blocks.UNet2d(out_planes=2, channels=(2, 4, 8), layers=1)).eval()
    given = model.save_pretrained(tmp_path / "given")
    subclass = tmp_path / "subclass"
    Subclass = register_savable(type("MyUNet", (blocks.UNet2d,), {}))  # a user's subclass: known in this process only
    seeded(lambda: Subclass(channels=(2, 4), layers=1)).save_pretrained(subclass)
    assert json.loads((subclass / "config.json").read_text())["blocks_class"] == "MyUNet"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", OFFLINE, str(given), str(tmp_path / "mine"), str(subclass)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "class": "UNet2d",
        "same": True,
        "refused": "config names blocks_class='MyUNet', which is not a class of blocks that can be built",
        "imported": [],
    }
    x = randn(2, 1, 9, 11)
    with torch.no_grad():
        assert torch.equal(load_file(given / "y.safetensors")["y"], model(x))
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["README.md", "config.json", "model.safetensors"]


# ------------------------------------------------------------------------------------ huggingface_hub

try:
    from huggingface_hub import PyTorchModelHubMixin
except ImportError:  # the extra is not installed
    PyTorchModelHubMixin = None

needs_hub = pytest.mark.skipif(PyTorchModelHubMixin is None, reason="huggingface_hub is not installed")

if PyTorchModelHubMixin is not None:

    class HubResNet(blocks.ResNet, PyTorchModelHubMixin):
        """blocks first: blocks' ``save_pretrained`` and ``config``, the mixin's ``from_pretrained``."""

    class MixinResNet(PyTorchModelHubMixin, blocks.ResNet):
        """The mixin first: the mixin's ``save_pretrained`` and ``from_pretrained``."""

    register_savable(HubResNet)  # a user's subclass is written only once registered (docs/design.md)
    register_savable(MixinResNet)


def small_resnet(cls, **kwargs):
    return seeded(lambda: cls([1, 1, 1, 1], "plain", in_planes=1, num_classes=3, **kwargs)).eval()


@pytest.fixture
def offline_hub(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@needs_hub
def test_mixin_loads_a_folder_written_by_blocks(tmp_path, offline_hub):
    x = randn(2, 1, 40, 40)
    plain = small_resnet(blocks.ResNet)
    folder = plain.save_pretrained(tmp_path / "plain")
    for cls in (HubResNet, MixinResNet):
        again = cls.from_pretrained(str(folder))  # a local folder: no network
        assert type(again) is cls and not again.training
        with torch.no_grad():
            assert torch.equal(again(x), plain(x))

    hub = small_resnet(HubResNet)
    assert HubResNet.save_pretrained is blocks.ResNet.save_pretrained
    folder = hub.save_pretrained(tmp_path / "hub")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert json.loads((folder / "config.json").read_text()) == {
        "blocks_class": "HubResNet", "layers": [1, 1, 1, 1], "block": "plain", "in_planes": 1, "num_classes": 3,
    }
    for load in (HubResNet.from_pretrained, blocks.from_pretrained):  # blocks knows the subclass in this process
        again = load(str(folder))
        assert type(again) is HubResNet
        with torch.no_grad():
            assert torch.equal(again(x), hub(x))


@needs_hub
def test_blocks_loads_a_mixin_folder_only_with_blocks_class(tmp_path, offline_hub):
    x = randn(2, 1, 40, 40)
    model = small_resnet(MixinResNet)
    assert MixinResNet.save_pretrained is PyTorchModelHubMixin.save_pretrained
    assert model.save_pretrained(tmp_path / "mixin") is None
    folder = tmp_path / "mixin"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert json.loads((folder / "config.json").read_text()) == {  # every argument, and no blocks_class
        "activator": "relu", "block": "plain", "in_planes": 1, "layer_order": "old", "layers": [1, 1, 1, 1],
        "ndim": 2, "normalizer": "batch", "num_classes": 3, "kernel_sizes": None, "stem_kernel_size": 7,
        "stem_pool": True, "stem_stride": 2, "strides": [1, 2, 2, 2], "global_pool": "avg", "output_stride": None,
    }
    with pytest.raises(ValueError) as error:
        blocks.from_pretrained(folder)
    assert str(error.value) == "config names blocks_class=None, which is not a class of blocks that can be built"
    again = MixinResNet.from_pretrained(str(folder))
    with torch.no_grad():
        assert torch.equal(again(x), model(x))

    # With blocks_class in the mixin's config (its config= argument), blocks.from_pretrained builds a blocks ResNet.
    named = tmp_path / "named"
    model.save_pretrained(named, config={**model.config, "blocks_class": "ResNet"})
    again = blocks.from_pretrained(named)
    assert type(again) is blocks.ResNet
    with torch.no_grad():
        assert torch.equal(again(x), model(x))


@needs_hub
def test_mixin_loads_a_name_and_kwargs_normalizer(tmp_path, offline_hub):
    model = small_resnet(HubResNet, normalizer=("group", {"num_groups": 2}))
    folder = model.save_pretrained(tmp_path)
    assert blocks.from_pretrained(folder).config == model.config  # blocks' own loader turns lists into tuples
    again = HubResNet.from_pretrained(str(folder))
    x = randn(2, 1, 40, 40)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))


# ---- explicit configuration: what records, what saves ----------------------------------------------------


def test_an_unregistered_subclass_is_refused_at_save_time_by_name(tmp_path):
    Mine = type("MineUNet", (blocks.UNet2d,), {})
    with pytest.raises(ValueError, match=r"^MineUNet is not a class save_pretrained can write .* blocks\.configurable\.register_savable"):
        Mine(channels=(2, 4), layers=1).save_pretrained(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_register_savable_refuses_a_taken_name_and_non_blocks_classes():
    Other = type("UNet2d", (blocks.UNet,), {})  # a user's class under a blocks name
    with pytest.raises(ValueError, match=r"the name 'UNet2d' is taken by blocks\.unet\.UNet2d; rename the class"):
        register_savable(Other)
    with pytest.raises(ValueError, match=r"register_savable takes a subclass of a blocks class"):
        register_savable(nn.Conv2d)
    from blocks.configurable import SAVABLE

    assert SAVABLE["UNet2d"] is blocks.UNet2d


def test_every_class_0_2_0_could_write_is_savable():
    from blocks.hub import SAVABLE_CLASSES

    names = {cls.__name__ for cls in SAVABLE_CLASSES}
    for generic in ("ConvModern", "BlockPlain", "BlockBottleneck", "UNet", "AE", "EncoderNet", "DecoderNet"):
        assert {generic, *(f"{generic}{n}d" for n in (1, 2, 3))} <= names
    assert "ResNet" in names and {"PlainConvUNet", "ResidualEncoderUNet"} <= names  # and nnU-Net's twins
    assert len(names) == len(SAVABLE_CLASSES) == 31


def test_inner_modules_keep_no_configuration():
    """Only the classes users build record their arguments; a network's stages and decoder are plain modules."""
    net = blocks.UNet2d(channels=(2, 4), layers=1)
    assert "_config" not in vars(net.encoder) and "_config" not in vars(net.decoder)
    assert "_config" not in vars(net.decoder[0])
    assert net.config == {"blocks_class": "UNet2d", "channels": [2, 4], "layers": 1}


# ---- huggingface_hub's save_pretrained keywords, the model card -----------------------------------------


def test_model_card_says_class_arguments_parameters_and_summary(tmp_path):
    model = seeded(lambda: blocks.EncoderNet1d(in_planes=2, out_length=3, channels=(2, 4), layers=1))
    folder = model.save_pretrained(tmp_path, model_card_kwargs={"license": "mit", "tags": ["audio"]})
    card = (folder / "README.md").read_text()
    table = blocks.summary(model, (2, 64)).splitlines()
    count = sum(p.numel() for p in model.parameters())
    assert count == 137
    assert card == (
        '---\nlibrary_name: "blocks"\nlicense: "mit"\ntags: ["blocks", "pytorch", "audio"]\n---\n\n'
        "# EncoderNet1d\n\n"
        "A `EncoderNet1d` of the `blocks` library, with 137 parameters, saved by `save_pretrained` "
        "(weights in `model.safetensors`, arguments in `config.json`).\n\n"
        "```python\nimport blocks\n\nmodel = blocks.from_pretrained(folder)  # this folder\n```\n\n"
        "## Arguments\n\n| argument | value |\n|---|---|\n"
        "| `in_planes` | `2` |\n| `out_length` | `3` |\n| `channels` | `[2, 4]` |\n| `layers` | `1` |\n\n"
        "## Layers\n\n`blocks.summary(model, (2, 64))`, first lines:\n\n```text\n"
        + "\n".join(table[:12]) + "\n...\n```\n"
    )
    assert table[3].split() == ["Conv1d-1", "[-1,", "2,", "64]", "14"]


def test_model_card_input_size_and_a_decoder_s_own_input(tmp_path):
    unit = blocks.ConvModern3d(2, 4)
    card = (unit.save_pretrained(tmp_path / "unit", model_card_kwargs={"input_size": (2, 5, 6, 7)}) / "README.md")
    text = card.read_text()
    assert "`blocks.summary(model, (2, 5, 6, 7))`" in text and "input_size" not in text.split("---")[1]
    assert "            Conv3d-3           [-1, 4, 5, 6, 7]             216\n      ConvModern3d-4    " in text
    decoder = blocks.DecoderNet2d((31, 17), in_length=5, channels=(2, 4), layers=1)
    text = (decoder.save_pretrained(tmp_path / "decoder") / "README.md").read_text()
    assert "`blocks.summary(model, (5,))`" in text and "| `out_size` | `[31, 17]` |" in text
    resnet = blocks.ResNet([1, 1, 1, 1], "plain", in_planes=1, num_classes=None, strides=(1, 4, 4, 4))
    text = (resnet.save_pretrained(tmp_path / "resnet") / "README.md").read_text()
    assert "`blocks.summary(model, (1, 257, 257))`" in text  # its deepest map, at 1/256, keeps 2 pixels


def test_an_existing_model_card_is_kept(tmp_path):
    (tmp_path / "README.md").write_text("my own card\n")
    blocks.BlockPlain1d(2, 2).save_pretrained(tmp_path)
    assert (tmp_path / "README.md").read_text() == "my own card\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "config.json", "model.safetensors"]


@pytest.mark.parametrize("call, message", [
    (dict(config={"layers": 1}),
     "BlockPlain1d.save_pretrained got config={'layers': 1}; blocks writes the constructor's arguments "
     "(model.config) as config.json, so config must be None"),
    (dict(repo_id="me/model"),
     "BlockPlain1d.save_pretrained got repo_id without push_to_hub=True; they only say where and how to upload"),
    (dict(commit_message="first", private=True),
     "BlockPlain1d.save_pretrained got commit_message, private without push_to_hub=True; they only say where and "
     "how to upload"),
    (dict(push_to_hub=True, revision="main"),
     "BlockPlain1d.save_pretrained got unexpected keyword(s) ['revision']; the upload keywords are "
     "['commit_message', 'private', 'token', 'branch', 'create_pr', 'allow_patterns', 'ignore_patterns', "
     "'delete_patterns'] (with push_to_hub=True)"),
    (dict(push_to_hub="yes"), "BlockPlain1d.save_pretrained got push_to_hub='yes'; it must be True or False"),
    (dict(model_card_kwargs={1: "x"}),
     "BlockPlain1d.save_pretrained got model_card_kwargs={1: 'x'}; its keys must be strings"),
])
def test_save_arguments_that_are_refused_before_anything_is_written(call, message, tmp_path):
    with pytest.raises(ValueError) as error:
        blocks.BlockPlain1d(2, 2).save_pretrained(tmp_path / "out", **call)
    assert str(error.value) == message
    assert not (tmp_path / "out").exists()


def test_push_to_hub_without_huggingface_hub_is_refused(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import huggingface_hub now raises ImportError
    with pytest.raises(ImportError) as error:
        blocks.BlockPlain1d(2, 2).save_pretrained(tmp_path / "out", push_to_hub=True)
    assert str(error.value) == (
        "BlockPlain1d.save_pretrained(..., push_to_hub=True) needs huggingface_hub, which is not installed: pip "
        "install huggingface_hub, or save locally (push_to_hub=False) and upload the folder yourself"
    )
    assert not (tmp_path / "out").exists()
    assert blocks.BlockPlain1d(2, 2).save_pretrained(tmp_path / "local") == tmp_path / "local"  # saving stays local


def test_push_to_hub_uploads_the_folder_with_huggingface_hub_s_api(tmp_path, monkeypatch):
    """A stand-in for huggingface_hub records the calls: no network."""
    calls = []

    class HfApi:
        def __init__(self, token=None):
            calls.append(("HfApi", {"token": token}))

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", {**kwargs, "files": sorted(p.name for p in kwargs["folder_path"].iterdir())}))

    monkeypatch.setitem(sys.modules, "huggingface_hub", type(sys)("huggingface_hub"))
    monkeypatch.setattr(sys.modules["huggingface_hub"], "HfApi", HfApi, raising=False)
    folder = blocks.BlockPlain1d(2, 2).save_pretrained(tmp_path / "tiny", push_to_hub=True, token="t", private=True)
    assert folder == tmp_path / "tiny"
    upload = {"repo_type": "model", "commit_message": "Upload a blocks model", "revision": None, "create_pr": None,
              "allow_patterns": None, "ignore_patterns": None, "delete_patterns": None}
    assert calls == [
        ("HfApi", {"token": "t"}),
        ("create_repo", {"repo_id": "tiny", "repo_type": "model", "private": True, "exist_ok": True}),
        ("upload_folder", {"repo_id": "tiny", "folder_path": folder, **upload,
                           "files": ["README.md", "config.json", "model.safetensors"]}),
    ]
    calls.clear()
    blocks.BlockPlain1d(2, 2).save_pretrained(tmp_path / "other", push_to_hub=True, repo_id="me/blocks-tiny",
                                              commit_message="v1", branch="dev")
    assert calls[1] == ("create_repo", {"repo_id": "me/blocks-tiny", "repo_type": "model", "private": None,
                                        "exist_ok": True})
    assert calls[2][1]["commit_message"] == "v1" and calls[2][1]["revision"] == "dev"


def test_save_pretrained_takes_huggingface_hub_s_signature():
    import inspect

    parameters = inspect.signature(blocks.UNet2d.save_pretrained).parameters
    assert [(p.name, p.kind.name, p.default) for p in parameters.values()][1:] == [
        ("save_directory", "POSITIONAL_OR_KEYWORD", inspect.Parameter.empty),
        ("config", "KEYWORD_ONLY", None), ("repo_id", "KEYWORD_ONLY", None), ("push_to_hub", "KEYWORD_ONLY", False),
        ("model_card_kwargs", "KEYWORD_ONLY", None),
        ("push_to_hub_kwargs", "VAR_KEYWORD", inspect.Parameter.empty),
    ]
    if PyTorchModelHubMixin is not None:  # the same names as the mixin's, in the same order
        theirs = inspect.signature(PyTorchModelHubMixin.save_pretrained).parameters
        assert [(p.name, p.kind) for p in theirs.values()] == [(p.name, p.kind) for p in parameters.values()]
