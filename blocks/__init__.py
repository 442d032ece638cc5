"""blocks: reusable residual blocks for PyTorch in 1-D, 2-D and 3-D, and the ResNet and U-Net networks built from them."""

from .conv import ConvModern, ConvModern1d, ConvModern2d, ConvModern3d, Upsample
from .layers import register_activator, register_normalizer
from .residual import (
    BlockBottleneck,
    BlockBottleneck1d,
    BlockBottleneck2d,
    BlockBottleneck3d,
    BlockPlain,
    BlockPlain1d,
    BlockPlain2d,
    BlockPlain3d,
)
from .resnet import ResNet, from_torchvision, resnet18, resnet34, resnet50, resnet101, resnet152
from .summary import summary
from .unet import UNet, UNet1d, UNet2d, UNet3d

__all__ = [
    "BlockBottleneck",
    "BlockBottleneck1d",
    "BlockBottleneck2d",
    "BlockBottleneck3d",
    "BlockPlain",
    "BlockPlain1d",
    "BlockPlain2d",
    "BlockPlain3d",
    "ConvModern",
    "ConvModern1d",
    "ConvModern2d",
    "ConvModern3d",
    "ResNet",
    "UNet",
    "UNet1d",
    "UNet2d",
    "UNet3d",
    "Upsample",
    "register_activator",
    "register_normalizer",
    "from_torchvision",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "summary",
]

__version__ = "0.2.0"
