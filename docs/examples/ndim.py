from torch import nn

import blocks


# A factory that declares `ndim` is given the block's dimension: batch norm for volumes, one-group
# GroupNorm (a layer norm over channels and positions) for signals and images.
def volume_batch_norm(channels: int, ndim: int) -> nn.Module:
    return nn.BatchNorm3d(channels) if ndim == 3 else nn.GroupNorm(1, channels)


blocks.register_normalizer("volume-batch", volume_batch_norm)

# By the registered name, or the function itself.
signal = blocks.BlockPlain1d(8, 8, normalizer="volume-batch")
volume = blocks.BlockPlain3d(8, 8, normalizer=volume_batch_norm)
for block in [signal, volume]:
    unit = block.branch[0]  # norm -> act -> conv
    print(f"{type(block).__name__}: {' -> '.join(type(layer).__name__ for layer in unit)}")

# A factory without `ndim` is called with the channels only, in every dimension: nn.BatchNorm2d in a
# 3-D block would build a 2-D layer, so in 1-D and 3-D use a name ('batch') or a dimension-aware factory.
print(type(blocks.BlockPlain3d(8, 8, normalizer="batch").branch[0].norm).__name__)
