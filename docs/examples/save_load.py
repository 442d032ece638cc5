import tempfile
from pathlib import Path

import torch

import blocks

# MDNC's unet32, narrow
net = blocks.create_model("unet32", out_planes=2, channels=(8, 16, 32))
with tempfile.TemporaryDirectory() as tmp:
    folder = net.save_pretrained(Path(tmp) / "unet32")
    print(sorted(path.name for path in folder.iterdir()))
    print((folder / "config.json").read_text())
    # the same class, arguments and weights, in eval mode
    again = blocks.from_pretrained(folder)

x = torch.randn(1, 1, 37, 53)
same = torch.equal(again(x), net.eval()(x))
print(type(again).__name__, "equal outputs:", same)
