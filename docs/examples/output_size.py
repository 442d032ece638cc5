import torch

import blocks

down = blocks.BlockBottleneck2d(16, 32, stride=2)
up = blocks.BlockBottleneck2d(32, 16, stride=2, scaler="up")  # no output_size: decided per call

for height, width in [(255, 255), (64, 100), (33, 7)]:
    x = torch.randn(1, 16, height, width)
    y = down(x)
    z = up(y, output_size=x.shape[-2:])  # the size of the tensor we want to match
    print(tuple(x.shape), "->", tuple(y.shape), "->", tuple(z.shape))

print("by the factor alone:", tuple(x.shape), "->", tuple(up(down(x)).shape))
