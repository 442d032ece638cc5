"""Write ``v020.pt`` and ``v020_saved/``: what 0.2.0 built, computed and saved, for ``tests/test_compat.py`` to pin.

Run once with the 0.2.0 code (commit ec9c160) from the repository root:
``python tests/data/make_v020.py``. It imports ``blocks`` from the checkout it lives in, whatever is
installed. The rule is that of ``make_v010.py``, whose `fill`, `filled_state` and `model_input` it
imports rather than copies: for each model of `MODELS` (1-D and 3-D networks, MDNC presets, U-Nets
on a blocks encoder, 2-D U-Nets with options new in 0.2.0) it stores the state_dict keys and shapes,
the parameter count, the summary table and the eval-mode output for a fixed input, with every
parameter and buffer set by `fill` from its key's name.

It also stores the public names (``blocks.__all__``). For each model of `SAVED` it writes
``v020_saved/<name>/`` with ``save_pretrained`` (``config.json`` and ``model.safetensors``, the weights
set by the same rule) and stores in ``v020.pt`` the class name and the eval-mode output for a fixed
input (`saved_input`), which ``blocks.from_pretrained`` must give back.

It runs on one CPU thread, as the test does. Running it again writes the same bytes: every value comes
from `fill` and the fixed inputs, none from the time or the random initialisation, and one thread fixes
the order of the sums (another thread count changes outputs in their last bits, around 1e-7 relative).
``python tests/data/make_v020.py OTHER_FOLDER`` writes a second copy elsewhere to check that.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

HERE = Path(__file__).resolve().parent

_spec = importlib.util.spec_from_file_location("make_v010", HERE / "make_v010.py")
make_v010 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_v010)
fill, filled_state, model_input = make_v010.fill, make_v010.filled_state, make_v010.model_input

MODELS: dict[str, tuple[str, tuple[int, ...]]] = {
    # ResNets in 1-D and 3-D (their widths are 64..512 whatever the input, so resnet18 at small sizes).
    "resnet18_1d": ("resnet18(ndim=1, num_classes=5)", (2, 3, 67)),
    "resnet18_3d_preact_grey": (
        "resnet18(in_planes=1, layer_order='new', num_classes=None, ndim=3)",
        (2, 1, 15, 16, 17),
    ),
    # The U-Net family in 1-D and 3-D.
    "unet1d": ("UNet1d(in_planes=2, out_planes=3, channels=(4, 8, 16), layers=1)", (2, 2, 37)),
    "unet3d": ("UNet3d(in_planes=1, out_planes=2, channels=(4, 8), layers=(1, 2))", (2, 1, 7, 9, 5)),
    "ae1d": ("AE1d(channels=(4, 8, 16), layers=(2, 1, 1))", (2, 1, 29)),
    "ae3d_plain": ("AE3d(in_planes=2, out_planes=2, channels=(4, 8), layers=1, block='plain')", (2, 2, 5, 7, 9)),
    "encnet1d_batch": (
        "EncoderNet1d(in_planes=2, out_length=3, channels=(4, 8, 16), layers=1, normalizer='batch')",
        (2, 2, 41),
    ),
    "encnet3d_old_relu": (
        "EncoderNet3d(in_planes=2, out_length=3, channels=(4, 8, 16), layers=1, activator='relu', layer_order='old')",
        (2, 2, 5, 6, 7),
    ),
    "decnet1d": ("DecoderNet1d(37, in_length=5, out_planes=2, channels=(4, 8, 16), layers=1)", (2, 5)),
    "decnet3d_map_plain": (
        "DecoderNet3d((5, 7, 9), in_length=None, channels=(4, 8), layers=1, block='plain')",
        (2, 8, 3, 4, 5),
    ),
    # MDNC's presets, narrow.
    "preset_unet16_3d": ("unet16(ndim=3, in_planes=1, out_planes=2, channels=(4, 8, 16))", (1, 1, 9, 7, 11)),
    "preset_decnet13_1d": ("decnet13(19, ndim=1, in_length=4, channels=(4, 4, 8, 8, 16))", (2, 4)),
    # U-Nets on a blocks encoder.
    "unet3d_on_encnet3d": (
        "UNet3d(encoder=EncoderNet3d(in_planes=1, out_length=None, channels=(4, 8), layers=1), layers=1)",
        (1, 1, 7, 6, 5),
    ),
    "unet1d_on_resnet18": (
        (
            "UNet1d(out_planes=2, encoder=resnet18(in_planes=1, num_classes=None, ndim=1), layers=1, "
            "decoder_channels=(32, 16, 8, 8, 4))"
        ),
        (1, 1, 45),
    ),
    # 2-D U-Nets with options new in 0.2.0.
    "unet2d_decoder_channels": (
        "UNet2d(in_planes=1, out_planes=2, channels=(4, 8, 16), layers=1, decoder_channels=(6, 4))",
        (2, 1, 19, 23),
    ),
    "unet2d_interpolate": ("UNet2d(channels=(4, 8, 16), layers=1, upsample='interpolate')", (2, 1, 17, 13)),
    "unet2d_nearest_plain_old": (
        (
            "UNet2d(in_planes=2, out_planes=3, channels=(4, 8, 16), layers=1, upsample='nearest', block='plain', "
            "normalizer='batch', activator='relu', layer_order='old')"
        ),
        (2, 2, 15, 21),
    ),
    "unet2d_group_gelu": (
        (
            "UNet2d(in_planes=3, out_planes=2, channels=(4, 8), layers=2, normalizer=('group', {'num_groups': 2}), "
            "activator='gelu')"
        ),
        (2, 3, 11, 9),
    ),
}
"""name -> (constructor expression in the ``blocks`` namespace, input shape)."""

SAVED: dict[str, tuple[str, tuple[int, ...]]] = {
    "unet3d": (
        "UNet3d(in_planes=1, out_planes=2, channels=(2, 4), layers=1, decoder_channels=(3,), upsample='interpolate')",
        (1, 1, 7, 6, 5),
    ),
    "unet_on_encoder": (
        (
            "UNet1d(out_planes=2, encoder=EncoderNet1d(in_planes=2, out_length=None, channels=(2, 4, 8), layers=1), "
            "layers=1, upsample='nearest')"
        ),
        (2, 2, 23),
    ),
}
"""folder name under ``v020_saved/`` -> (constructor expression in the ``blocks`` namespace, input shape)."""


def saved_input(name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """The fixed input of the saved model ``name`` (`model_input` under the name ``saved/<name>``).

    Args:
        name: A key of `SAVED`.
        shape: The input's shape, batch first.

    Returns:
        A float32 tensor of ``shape`` with values in [-1, 1).
    """
    return model_input(f"saved/{name}", shape)


def filled_model(expression: str, namespace: dict[str, Any]) -> torch.nn.Module:
    """Build ``expression``, set every state_dict entry by `fill` (strictly) and switch to eval mode.

    Args:
        expression: A constructor call in the ``blocks`` namespace, e.g. ``"UNet1d(channels=(4, 8))"``.
        namespace: ``vars(blocks)``.

    Returns:
        The model, in eval mode.
    """
    torch.manual_seed(0)
    model = eval(expression, namespace)
    model.load_state_dict(filled_state(model), strict=True)
    return model.eval()


def main(folder: Path = HERE) -> None:
    """`write` the pinned data with the checkout's ``blocks``, on one CPU thread.

    Args:
        folder: Where to write them (this script's folder by default; another one to check that a
            second run writes the same bytes).

    Raises:
        RuntimeError: If ``blocks`` is not version 0.2.0.
    """
    import blocks

    if blocks.__version__ != "0.2.0":
        raise RuntimeError(f"make_v020 pins 0.2.0; blocks {blocks.__version__} is at {blocks.__file__}")
    print(f"blocks {blocks.__version__} from {Path(blocks.__file__).parent}, torch {torch.__version__}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        write(blocks, folder)
    finally:
        torch.set_num_threads(threads)


def write(blocks: ModuleType, folder: Path) -> None:
    """Build, fill, run and save every model of `MODELS` and `SAVED`; write ``v020.pt`` and ``v020_saved/``.

    Args:
        blocks: The ``blocks`` package to pin.
        folder: Where to write them.
    """
    namespace = vars(blocks)
    models = {}
    for name, (expression, shape) in MODELS.items():
        model = filled_model(expression, namespace)
        with torch.no_grad():
            output = model(model_input(name, shape))
        with contextlib.redirect_stdout(io.StringIO()):
            table = blocks.summary(model, shape[1:], batch_size=shape[0])
        models[name] = {
            "expression": expression,
            "input_shape": shape,
            "shapes": {key: tuple(value.shape) for key, value in model.state_dict().items()},
            "output": output,
            "parameters": sum(p.numel() for p in model.parameters()),
            "summary": table,
        }
        print(f"{name:26s} {tuple(output.shape)} |y|max={output.abs().max():.3g}")

    saved = {}
    for name, (expression, shape) in SAVED.items():
        model = filled_model(expression, namespace)
        model.save_pretrained(folder / "v020_saved" / name)
        with torch.no_grad():
            output = model(saved_input(name, shape))
        saved[name] = {"expression": expression, "class": type(model).__name__, "input_shape": shape, "output": output}
        print(f"v020_saved/{name:16s} {tuple(output.shape)} |y|max={output.abs().max():.3g}")
    data = {"version": blocks.__version__, "names": list(blocks.__all__), "models": models, "saved": saved}
    torch.save(data, folder / "v020.pt")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1]))  # the checkout's blocks, not an installed one
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
