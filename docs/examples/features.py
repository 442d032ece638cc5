import torch

import blocks

# a small encoder network: 4 levels, 3 outputs
net = blocks.EncoderNet2d(out_length=3, channels=(8, 16, 32, 64), layers=1)
x = torch.randn(2, 1, 37, 53)
print("forward:", tuple(net(x).shape))
print("forward_features:", tuple(net.forward_features(x).shape))
final, maps = net.forward_intermediates(x)  # the last map, every map
print("forward_intermediates:", [tuple(m.shape) for m in maps])
ends = net.forward_intermediates(x, indices=(0, -1))[1]
print("indices=(0, -1):", [tuple(m.shape) for m in ends])
info = [(f["num_chs"], f["reduction"], f["module"])
        for f in net.feature_info]
print("feature_info:", info)
pooled = net.forward_head(final, pre_logits=True)  # pooled, before fc
print("pre_logits:", tuple(pooled.shape))

net.reset_classifier(10)  # a new fc for 10 classes
print("reset_classifier(10):", tuple(net(x).shape))
net.reset_classifier(0)  # no classifier: the pooled features
print("reset_classifier(0):", tuple(net(x).shape))
kept = net.prune_intermediate_layers((0, 1, 2))  # drop level 3, the head
print("prune_intermediate_layers:", kept, tuple(net(x).shape))
