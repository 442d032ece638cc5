"""Checkpointing, mixed precision and torch.compile on a small U-Net (CPU)."""

import torch
from torch.nn import functional as F

import blocks

torch.manual_seed(0)
model = blocks.UNet2d(in_planes=1, out_planes=2, channels=(8, 16, 32), layers=1)
x, y = torch.randn(4, 1, 64, 64), torch.randint(0, 2, (4, 64, 64))


def gradients(net):
    net.zero_grad()
    F.cross_entropy(net(x), y).backward()
    return [p.grad.clone() for p in net.parameters()]


# 1. Gradient checkpointing: blocks recompute their inside in the backward
#    pass, and the gradients stay the same.
plain = gradients(model)
model.set_grad_checkpointing(True)
checked = gradients(model)
model.set_grad_checkpointing(False)
same = all(torch.allclose(a, b, atol=1e-6) for a, b in zip(plain, checked))
print("checkpointing keeps the gradients:", same)

# 2. Mixed precision: autocast runs the convolutions in bfloat16.
with torch.autocast("cpu", dtype=torch.bfloat16):
    out = model(x)
print("autocast output:", out.dtype, tuple(out.shape))

# 3. torch.compile: the user's choice, never applied inside the library.
#    ('eager' keeps this page fast; the default 'inductor' is for speed.)
compiled = torch.compile(model, fullgraph=True, backend="eager")
same = torch.allclose(compiled(x), model(x), atol=1e-6)
print("compiled output equals eager:", same)
