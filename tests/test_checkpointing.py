"""Tests of set_grad_checkpointing on ResNet and UNet2d: same gradients, far less saved for backward."""

import pytest
import torch

from blocks import UNet2d, resnet18
from blocks.residual import BlockBottleneck2d


def saved_bytes_and_grads(model, x):
    """Bytes of distinct activations autograd keeps for the backward pass, and the gradients."""
    params = {p.data_ptr() for p in model.parameters()}
    saved = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            saved[ptr] = t.untyped_storage().nbytes()
        return t

    model.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    out.square().mean().backward()
    return sum(saved.values()), out.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize(
    "build, size, ratio",
    [  # the U-Net is all blocks; a ResNet keeps its stem and max-pool outside them
        (lambda: UNet2d(1, 2, channels=(8, 16, 32), layers=2), (2, 1, 40, 36), 0.5),
        (lambda: resnet18(normalizer="inst", num_classes=10), (2, 3, 64, 64), 0.6),
    ],
)
def test_checkpointing_keeps_gradients_and_cuts_saved_activations(build, size, ratio):
    torch.manual_seed(0)
    model = build()
    x = torch.randn(*size)
    plain_bytes, plain_out, plain_grads = saved_bytes_and_grads(model, x)
    model.set_grad_checkpointing(True)
    assert all(b.grad_checkpointing for b in model.modules() if hasattr(b, "grad_checkpointing"))
    ckpt_bytes, ckpt_out, ckpt_grads = saved_bytes_and_grads(model, x)
    assert torch.equal(plain_out, ckpt_out)
    for name, grad in plain_grads.items():
        torch.testing.assert_close(ckpt_grads[name], grad, rtol=1e-5, atol=1e-6, msg=name)
    assert ckpt_bytes < ratio * plain_bytes, (ckpt_bytes, plain_bytes)
    model.set_grad_checkpointing(False)
    assert saved_bytes_and_grads(model, x)[0] == plain_bytes


def test_checkpointing_is_off_by_default_and_unused_without_grad():
    model = UNet2d(1, 1, channels=(4, 8), layers=1)
    assert not any(getattr(m, "grad_checkpointing", False) for m in model.modules())
    model.set_grad_checkpointing()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 9, 9)).shape == (1, 1, 9, 9)


def test_up_scaling_block_checkpoints_with_output_size():
    block = BlockBottleneck2d(8, 4, stride=2, scaler="up")
    block.grad_checkpointing = True
    x = torch.randn(1, 8, 5, 5, requires_grad=True)
    y = block(x, output_size=(9, 10))
    y.sum().backward()
    assert y.shape == (1, 4, 9, 10) and x.grad.shape == x.shape


def test_enable_must_be_a_bool():
    with pytest.raises(TypeError, match="enable='yes' must be True or False"):
        UNet2d(1, 1, channels=(4, 8), layers=1).set_grad_checkpointing("yes")
