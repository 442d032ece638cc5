import blocks

print(blocks.list_models("unet*"))
volumes = blocks.create_model("unet16", ndim=3)  # a preset, in 3-D
ecg = blocks.create_model("resnet18", ndim=1, in_planes=12)
print(type(volumes).__name__, type(ecg).__name__, ecg.ndim)


@blocks.register_model(input_sizes={2: (1, 64, 64)}, description="Narrow")
def tiny_unet(**kwargs):
    return blocks.UNet2d(channels=(8, 16), layers=1, **kwargs)


tiny = blocks.create_model("tiny_unet")
print(blocks.list_models("tiny*"), type(tiny).__name__)
try:
    blocks.create_model("unet_16")
except ValueError as error:
    print(error)
