"""Write ``v010.pt``: what 0.1.0 built and computed, for ``tests/test_compat.py`` to pin.

Run once with the 0.1.0 code (``git checkout v0.1.0`` state, commit e017043):
``python tests/data/make_v010.py``. For each model of `MODELS` it stores the state_dict keys and
shapes, the summary table and the eval-mode output for a fixed input, with every parameter and buffer set by
`fill` from its key's name. The test rebuilds each model with today's code, loads the same
values with ``strict=True`` and compares the outputs.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import torch

MODELS: dict[str, tuple[str, tuple[int, ...]]] = {
    "plain_new": ("BlockPlain2d(4, 8, stride=2)", (2, 4, 9, 11)),
    "plain_old": ("BlockPlain2d(4, 8, stride=2, normalizer='batch', activator='relu', layer_order='old')", (2, 4, 9, 11)),
    "plain_identity_null": ("BlockPlain2d(6, 6, normalizer=None, activator='silu')", (2, 6, 7, 5)),
    "bottleneck_new": ("BlockBottleneck2d(8, 4, stride=(1, 2))", (2, 8, 4, 15)),
    "bottleneck_old_group": (
        "BlockBottleneck2d(8, 16, normalizer=('group', {'num_groups': 2}), activator='gelu', layer_order='old')",
        (2, 8, 6, 6),
    ),
    "bottleneck_up": ("BlockBottleneck2d(8, 4, stride=2, scaler='up', output_size=(9, 11))", (2, 8, 5, 6)),
    "conv_up": ("ConvModern2d(4, 8, stride=2, scaler='up')", (2, 4, 5, 7)),
    "conv_up_size_old": ("ConvModern2d(4, 8, output_size=(7, 9), scaler='up', layer_order='old', normalizer='batch')", (2, 4, 3, 4)),
    "resnet18": ("resnet18(num_classes=10)", (2, 3, 64, 64)),
    "resnet18_preact_grey": ("resnet18(in_planes=1, layer_order='new', num_classes=None)", (2, 1, 64, 48)),
    "unet_small": ("UNet2d(in_planes=1, out_planes=2, channels=(4, 8, 16), layers=1)", (2, 1, 19, 23)),
    "unet_plain_old": (
        "UNet2d(in_planes=2, out_planes=3, channels=(4, 8, 16, 16), layers=(1, 2, 1, 1), block='plain', "
        "normalizer='batch', activator='relu', layer_order='old')",
        (2, 2, 21, 17),
    ),
    "unet_resnet": ("UNet2d(out_planes=2, encoder=resnet18(in_planes=1, num_classes=None), layers=1)", (1, 1, 45, 39)),
}
"""name -> (constructor expression in the ``blocks`` namespace, input shape)."""


def uniform(key: str, shape: torch.Size) -> torch.Tensor:
    """Values in [-1, 1) from a generator seeded by the CRC-32 of ``key``."""
    generator = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    return torch.rand(shape, generator=generator, dtype=torch.float64).mul(2).sub(1).float()


def fill(key: str, like: torch.Tensor) -> torch.Tensor:
    """The value of one state_dict entry, from its name and shape alone (outputs stay of order one).

    Kernels and linear weights: uniform * sqrt(3 / fan_in) (unit variance gain); other 1-D weights
    (norm scales, PReLU slopes): 1 + 0.1 * uniform; biases and running means: 0.1 * uniform;
    running variances: 1 + 0.5 * uniform; counters: 0.
    """
    if not like.is_floating_point():
        return torch.zeros_like(like)
    u = uniform(key, like.shape)
    name = key.rsplit(".", 1)[-1]
    if name == "running_var":
        return 1 + 0.5 * u
    if name in ("bias", "running_mean"):
        return 0.1 * u
    if like.dim() >= 2:
        return u * (3 / like[0].numel()) ** 0.5
    return 1 + 0.1 * u


def filled_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state_dict with every entry replaced by `fill`."""
    return {key: fill(key, value) for key, value in model.state_dict().items()}


def model_input(name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """The fixed input of a model."""
    return uniform("input:" + name, torch.Size(shape))


def main() -> None:
    """Build every model with the installed ``blocks``, fill it, run it, save ``v010.pt`` beside this file."""
    import contextlib
    import io

    import blocks

    namespace = vars(blocks)
    data = {}
    for name, (expression, shape) in MODELS.items():
        torch.manual_seed(0)
        model = eval(expression, namespace)
        model.load_state_dict(filled_state(model), strict=True)
        model.eval()
        with torch.no_grad():
            output = model(model_input(name, shape))
        data[name] = {
            "expression": expression,
            "input_shape": shape,
            "shapes": {key: tuple(value.shape) for key, value in model.state_dict().items()},
            "output": output,
            "parameters": sum(p.numel() for p in model.parameters()),
        }
        with contextlib.redirect_stdout(io.StringIO()):
            data[name]["summary"] = blocks.summary(model, shape[1:], batch_size=shape[0])
        print(f"{name:24s} {tuple(output.shape)} |y|max={output.abs().max():.3g}")
    torch.save(data, Path(__file__).with_name("v010.pt"))


if __name__ == "__main__":
    main()
