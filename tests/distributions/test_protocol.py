"""The evaluation protocol's habits: one home for the Gaussian log-density, objectives that use only the
protocol, runnable examples, and defects found on the way (the product of experts' prior expert)."""

from __future__ import annotations

import doctest
import importlib
import math
import re
from pathlib import Path

import pytest
import torch
import torch.distributions as td
from torch import nn

import deepgm.flows
from deepgm.distributions import Env, MixtureOfNormal, Normal, ProductOfNormal, normal_log_density

SRC = Path(__file__).resolve().parents[2] / "src" / "deepgm"


def test_normal_log_density_matches_torch() -> None:
    x, loc, scale = torch.randn(4, 3), torch.randn(4, 3), torch.rand(4, 3) + 0.2
    assert torch.allclose(normal_log_density(x, loc, scale), td.Normal(loc, scale).log_prob(x), atol=1e-6)
    assert torch.allclose(normal_log_density(x, loc, scale, scale.log()), td.Normal(loc, scale).log_prob(x),
                          atol=1e-6)


def test_mixture_of_normal_uses_the_gaussian_density() -> None:
    loc, scale = torch.randn(3, 2), torch.rand(3, 2) + 0.5
    p = MixtureOfNormal(var=["x"], loc=loc, scale=scale)
    x = torch.randn(7, 2)
    want = td.MixtureSameFamily(td.Categorical(logits=torch.zeros(3)),
                                td.Independent(td.Normal(loc, scale), 1)).log_prob(x)
    assert torch.allclose(p.log_prob({"x": x}), want, atol=1e-5)


def test_the_gaussian_log_density_has_one_home() -> None:
    pattern = re.compile(r"log\(2 \* math\.pi\)|log\(2\*math\.pi\)|_HALF_LOG_2PI|log\(math\.tau\)")
    homes = sorted(str(f.relative_to(SRC)) for f in SRC.rglob("*.py") if pattern.search(f.read_text()))
    assert homes == ["distributions/families.py"], homes


def test_objectives_use_only_the_protocol() -> None:
    internals = re.compile(r"\._(consts|computed|refs|params|const_slots|sample_into|log_prob_env|reduce|"
                           r"compute_params|draw_from|cond_key|cond_t)\b|_dispatch_kl|\.shared\.")
    found = [f"{f.name}:{i}" for f in sorted((SRC / "losses").glob("*.py"))
             for i, line in enumerate(f.read_text().splitlines(), 1) if internals.search(line)]
    assert found == []


MODULES = ["deepgm.distributions", "deepgm.distributions.base", "deepgm.distributions.env",
           "deepgm.distributions.family", "deepgm.distributions.families", "deepgm.distributions.special",
           "deepgm.distributions.kl", "deepgm.flows.distribution"]


@pytest.mark.parametrize("name", MODULES)
def test_the_examples_in_the_docstrings_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_the_flow_distribution_alias_is_gone() -> None:
    assert not hasattr(deepgm.flows, "FlowDistribution")


class LocScale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 4)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        loc, s = self.lin(x).chunk(2, -1)
        return {"loc": loc, "scale": nn.functional.softplus(s) + 0.1}


def test_product_of_normal_prior_expert_alone_takes_the_experts_dtype() -> None:
    # was torch.zeros(shape): float32 on the CPU whatever the module's dtype and device
    poe = ProductOfNormal([Normal(var=["z"], cond_var=["x"], net=LocScale(), name="q_x")],
                          features_shape=[2]).to(torch.float64)
    params = poe.params({})
    assert params["loc"].dtype == params["scale"].dtype == torch.float64
    z = poe.sample({}, batch_n=5)["z"]
    assert z.dtype == torch.float64 and z.shape == (5, 2)
    both = poe.params({"x": torch.randn(4, 3, dtype=torch.float64)})
    assert both["loc"].dtype == torch.float64
    log_p0 = float(poe.log_prob({"z": torch.zeros(2, dtype=torch.float64)}))
    assert math.isclose(log_p0, -math.log(2 * math.pi))  # N(0, I) at 0 in two dimensions


def test_tracing_records_the_bindings_of_its_block_only() -> None:
    env = Env({"x": torch.zeros(2)})
    env.set("a", torch.ones(1))
    with env.tracing() as outer:
        env.child().set("b", torch.ones(1))
        with env.tracing() as inner:
            env.set("c", torch.ones(1))
    env.set("d", torch.ones(1))
    assert sorted(outer) == ["b", "c"] and sorted(inner) == ["c"]
    assert env.shared.traces == []


def test_the_protocol_page_example_runs() -> None:
    page = SRC.parents[1] / "docs" / "protocol.md"
    result = doctest.testfile(str(page), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 5 and result.failed == 0
