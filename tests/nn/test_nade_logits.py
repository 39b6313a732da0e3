"""NADE's blockwise logits and hand-written backward pass against plain autograd over the definition."""

from __future__ import annotations

import pytest
import torch

import deepgm.nn.nade as nade
from deepgm.nn import nade_logits
from deepgm.nn.nade import nade_logits_reference


def _args(m: int, d: int, h: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    torch.manual_seed(0)
    x = torch.bernoulli(torch.full((m, d), 0.4)).double()
    params = [torch.randn(h, d), torch.randn(m, h), torch.randn(d, h), torch.randn(m, d)]
    return x, [p.double().requires_grad_() for p in params]


@pytest.mark.parametrize("block", [1, 4, 7, 30, 64])
def test_nade_logits_and_their_gradients_match_the_cumulative_sum_definition(block: int) -> None:
    x, params = _args(5, 30, 6)
    fast = nade_logits(x, *params, block=block)
    ref = nade_logits_reference(x, *params)
    torch.testing.assert_close(fast, ref)
    w = torch.randn_like(ref)
    g_fast = torch.autograd.grad((fast * w).sum(), params)
    g_ref = torch.autograd.grad((ref * w).sum(), params)
    for a, b in zip(g_fast, g_ref, strict=True):
        torch.testing.assert_close(a, b)


def test_nade_logits_pass_gradcheck_when_the_batch_is_split_into_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nade, "CHUNK_ELEMENTS", 50)  # 50 // (11 · 3) = 1 row per chunk
    x, params = _args(4, 11, 3)
    assert torch.autograd.gradcheck(lambda *p: nade_logits(x, *p, block=4), params)


def test_nade_logits_give_the_inputs_a_gradient_when_they_require_one() -> None:
    x, params = _args(3, 8, 4)
    x.requires_grad_()
    (gx,) = torch.autograd.grad(nade_logits(x, *params).sum(), [x])
    (ref,) = torch.autograd.grad(nade_logits_reference(x, *params).sum(), [x])
    torch.testing.assert_close(gx, ref)
