import torch

import blocks

# a pre-activation bottleneck block that halves the width
block = blocks.BlockBottleneck2d(16, 32, stride=(1, 2))
print("block:", tuple(block(torch.randn(8, 16, 4, 255)).shape))

# torchvision's ResNet-50, for grey images and 10 classes
resnet = blocks.resnet50(in_planes=1, num_classes=10)
print("resnet50:", tuple(resnet(torch.randn(2, 1, 64, 64)).shape))

# a U-Net returns exactly its input's size, whatever the size
unet = blocks.UNet2d(in_planes=1, out_planes=2, channels=(16, 32, 64, 128))
print("unet:", tuple(unet(torch.randn(1, 1, 75, 111)).shape))

blocks.summary(block, (16, 4, 255))
