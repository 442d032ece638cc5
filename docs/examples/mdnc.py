import torch
from torch import nn

import blocks

# 'old' order with ReLU trains: the activation follows the sum
# (MDNC's in-place sum fails in this backward pass)
block = blocks.BlockPlain2d(8, 8, activator="relu", layer_order="old")
x = torch.randn(2, 8, 9, 9, requires_grad=True)
block(x).sum().backward()
print("old order, ReLU, backward:", tuple(x.grad.shape))

# unet16 runs at any size and returns exactly that size (narrow here)
net = blocks.unet16(channels=(8, 16, 32))
print("unet16:", tuple(net(torch.randn(1, 1, 37, 53)).shape))
decoder = blocks.decnet13((37, 53), channels=(4, 8, 16, 32, 64))
print("decnet13((37, 53)):", tuple(decoder(torch.randn(2, 2)).shape))

# the network's normalizer, activator and order reach every layer
net = blocks.unet32(channels=(8, 16, 32), normalizer="batch",
                    activator="relu", layer_order="old")
leaves = {type(m).__name__ for m in net.modules()
          if not list(m.children())}
print("unet32 layers:", sorted(leaves))

# scaler='up' with stride 1 up-samples nothing, not even in the shortcut
up = blocks.BlockPlain2d(8, 16, scaler="up")
kinds = (nn.Upsample, blocks.Upsample)
print("Upsample layers:", sum(isinstance(m, kinds) for m in up.modules()))

# an unknown name is an error, in every block and network
try:
    blocks.ConvModern2d(8, 8, activator="tanh")
except ValueError as error:
    print(error)
