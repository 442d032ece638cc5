"""blocks: reusable 2-D residual blocks for PyTorch, and the ResNet and U-Net backbones built from them."""

from .conv import ConvModern2d, Upsample
from .layers import register_activator, register_normalizer
from .residual import BlockBottleneck2d, BlockPlain2d
from .summary import summary

__all__ = [
    "BlockBottleneck2d",
    "BlockPlain2d",
    "ConvModern2d",
    "Upsample",
    "register_activator",
    "register_normalizer",
    "summary",
]

__version__ = "0.1.0"
