from torch import nn

import blocks

# A name for BatchNorm without learnable affine parameters, and one for tanh.
blocks.register_normalizer("frozen", lambda channels, **kw: nn.BatchNorm2d(channels, affine=False, **kw))
blocks.register_activator("tanh", lambda channels, **kw: nn.Tanh())

block = blocks.BlockPlain2d(8, 16, normalizer="frozen", activator="tanh")
blocks.summary(block, (8, 32, 32))

try:
    blocks.BlockPlain2d(8, 16, normalizer="btach")  # a typo is an error, never a silent default
except ValueError as error:
    print(error)
