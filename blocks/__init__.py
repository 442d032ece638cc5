"""blocks: reusable 2-D residual blocks for PyTorch, and the ResNet and U-Net backbones built from them."""

from .conv import ConvModern2d, Upsample
from .layers import register_activator, register_normalizer
from .residual import BlockBottleneck2d, BlockPlain2d
from .resnet import ResNet, from_torchvision, resnet18, resnet34, resnet50, resnet101, resnet152
from .summary import summary
from .unet import UNet2d

__all__ = [
    "BlockBottleneck2d",
    "BlockPlain2d",
    "ConvModern2d",
    "ResNet",
    "UNet2d",
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

__version__ = "0.1.0"
