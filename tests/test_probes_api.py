"""The API's probe table (issue 19): bad inputs a user gives the Python API, each with the named deepgm
error and the words it must say. A new distribution family, objective or data loader is held to it:
add its rows here, and put every new family in ``FAMILIES`` (``test_every_distribution_is_swept`` fails
until it is there or exempted with a reason).

Every row checks: the exception type, a substring of its message, and that the message is one line
naming what is wrong (no raw torch, gzip or numpy error reaches the user).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import deepgm.distributions as dists
from deepgm.data import DatasetNotFoundError, IDXFormatError, load_dataset, load_mnist, write_idx
from deepgm.distributions import (
    Bernoulli,
    Beta,
    Categorical,
    Deterministic,
    Dirichlet,
    Distribution,
    Gamma,
    JointDistribution,
    Laplace,
    MixtureOfNormal,
    Multinomial,
    Normal,
    RelaxedBernoulli,
    RelaxedCategorical,
)
from deepgm.errors import (
    DeepGMError,
    MissingVariableError,
    ObjectiveError,
    ParameterError,
    ShapeError,
    SupportError,
)
from deepgm.losses import IWELBO, KL, MMD, E, LogProb, RenyiBound, as_loss
from deepgm.models import Model

INF, NAN = float("inf"), float("nan")
TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


# -- small models the probes are made of -----------------------------------------------------------------
class _Enc(nn.Module):
    def __init__(self, d: int = 4, z: int = 2, scale: float = 1.0) -> None:
        super().__init__()
        self.lin, self.scale = nn.Linear(d, z), scale

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        loc = self.lin(x)
        return {"loc": loc, "scale": torch.full_like(loc, self.scale)}


class _Dec(nn.Module):
    def __init__(self, z: int = 2, d: int = 4) -> None:
        super().__init__()
        self.lin = nn.Linear(z, d)

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.lin(z)}


def _q(scale: float = 1.0) -> Normal:
    return Normal(var=["z"], cond_var=["x"], net=_Enc(scale=scale), name="q")


def _p() -> Bernoulli:
    return Bernoulli(var=["x"], cond_var=["z"], net=_Dec(), name="p")


def _prior() -> Normal:
    return Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[2], name="prior")


def _x(n: int = 3) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, 4), 0.5))


def _model() -> Model:
    q, p, prior = _q(), _p(), _prior()
    return Model((KL(q, prior) - E(q, LogProb(p))).mean(), distributions=[q, p])


def _vae_loss() -> Any:
    q, p, prior = _q(), _p(), _prior()
    return (KL(q, prior) - E(q, LogProb(p))).mean()


# -- data files -------------------------------------------------------------------------------------------
def _mnist(folder: Path, gz: bool = True, n: int = 20, n_labels: int | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    write_idx(folder / (TEST_FILES[0] + suffix), np.zeros((n, 28, 28), np.uint8))
    write_idx(folder / (TEST_FILES[1] + suffix), (np.arange(n if n_labels is None else n_labels) % 10).astype(np.uint8))
    return folder


def _damaged(tmp: Path, how: str) -> Path:
    folder = _mnist(tmp / "data", gz=how != "raw-magic" and how != "raw-short")
    name = TEST_FILES[0] + ("" if how.startswith("raw") else ".gz")
    path = folder / name
    data = path.read_bytes()
    damaged = {
        "truncated-gz": lambda: data[: len(data) // 2],
        "garbage-gz": lambda: b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff\x07" + bytes(50),
        "crc-gz": lambda: data[:-8] + bytes(8),
        "raw-magic": lambda: b"\x01\x02" + data[2:],
        "raw-short": lambda: data[:-100],
    }[how]()
    path.write_bytes(damaged)
    return folder


def _not_a_folder(tmp: Path) -> Path:
    path = tmp / "a-file"
    path.write_text("not a folder")
    return path


@dataclass(frozen=True)
class Probe:
    id: str
    call: Callable[[Path], object]
    error: type[BaseException]
    says: str
    one_line: bool = True


PROBES: list[Probe] = [
    # distributions: values outside the support (issue 19: Bernoulli of 2.0 gave -2.05)
    Probe("bernoulli target 2", lambda t: Bernoulli(var=["x"], probs=0.5, features_shape=[2]).log_prob(
        {"x": torch.tensor([[0.0, 2.0]])}), SupportError, "variable 'x' must be in [0, 1]"),
    Probe("bernoulli target -0.5", lambda t: _p().log_prob({"x": torch.full((3, 4), -0.5), "z": torch.zeros(3, 2)}),
          SupportError, "Bernoulli p(x|z): variable 'x' must be in [0, 1]"),
    Probe("normal target nan", lambda t: _prior().log_prob({"z": torch.tensor([[NAN, 0.0]])}),
          SupportError, "variable 'z' must be finite"),
    # non-finite and invalid parameters (issue 19: loc=inf was accepted)
    Probe("normal loc inf", lambda t: Normal(var=["x"], loc=INF, scale=1.0), ParameterError,
          "Normal p(x): parameter 'loc' must be finite"),
    Probe("normal scale inf", lambda t: Normal(var=["x"], loc=0.0, scale=INF), ParameterError,
          "parameter 'scale' must be finite"),
    Probe("laplace loc -inf", lambda t: Laplace(var=["x"], loc=-INF, scale=1.0), ParameterError,
          "Laplace p(x): parameter 'loc' must be finite"),
    Probe("deterministic loc inf", lambda t: Deterministic(var=["x"], loc=INF), ParameterError,
          "parameter 'loc' must be finite"),
    Probe("mixture loc inf", lambda t: MixtureOfNormal(var=["x"], loc=torch.tensor([[INF, 0.0]])),
          ParameterError, "loc must be finite"),
    Probe("normal scale -1", lambda t: Normal(var=["x"], loc=0.0, scale=-1.0), ParameterError,
          "parameter 'scale' must satisfy > 0"),
    Probe("bernoulli probs 1.5", lambda t: Bernoulli(var=["x"], probs=1.5), ParameterError,
          "parameter 'probs' must satisfy in [0, 1]"),
    Probe("network scale inf, first evaluation", lambda t: _q(scale=INF).sample({"x": _x()}), ParameterError,
          "Normal q(z|x): parameter 'scale' must be finite"),
    # draws and batches (issue 19: sample_shape=0 gave NaN, empty batches "objective is nan")
    Probe("sample sample_shape 0", lambda t: _q().sample({"x": _x()}, sample_shape=0), ShapeError,
          "Normal q(z|x): sample_shape must be >= 1, got 0"),
    Probe("sample batch_n 0", lambda t: _prior().sample(batch_n=0), ShapeError, "batch_n must be >= 1, got 0"),
    Probe("sample empty batch", lambda t: _q().sample({"x": torch.zeros(0, 4)}), ShapeError,
          "Normal q(z|x): input 'x' has 0 rows"),
    Probe("log_prob empty batch", lambda t: _prior().log_prob({"z": torch.zeros(0, 2)}), ShapeError,
          "input 'z' has 0 rows"),
    # what the network cannot take (issue 19: raw torch errors)
    Probe("network wrong width", lambda t: _q().sample({"x": torch.zeros(3, 5)}), ShapeError,
          "Normal q(z|x): its network failed on the conditioning variables 'x' (3, 5) float32"),
    Probe("network float64 input", lambda t: _q().sample({"x": torch.zeros(3, 4, dtype=torch.float64)}),
          ShapeError, "'x' (3, 4) float64; its network's parameters are float32"),
    Probe("network int64 input", lambda t: _q().sample({"x": torch.zeros(3, 4, dtype=torch.long)}),
          ShapeError, "'x' (3, 4) int64"),
    Probe("network 1-d input", lambda t: _q().sample({"x": torch.zeros(5)}), ShapeError,
          "'x' (5,) float32"),
    Probe("missing condition", lambda t: _q().sample({"y": _x()}), MissingVariableError,
          "Normal q(z|x) needs the variable 'x', but the inputs hold y"),
    Probe("wrong event shape", lambda t: _prior().log_prob({"z": torch.zeros(3, 5)}), ShapeError,
          "variable 'z' has event shape (5,), expected (2,)"),
    Probe("class index out of range", lambda t: Categorical(var=["y"], probs=[0.5, 0.5]).log_prob(
        {"y": torch.tensor([0, 2])}), ParameterError, "class indices of 'y' must lie in [0, 2)"),
    # joints
    Probe("joint missing variable", lambda t: (_p() * _prior()).log_prob({"x": _x()}), MissingVariableError,
          "needs the variable 'z'"),
    Probe("joint sample_shape 0", lambda t: (_p() * _prior()).sample(batch_n=2, sample_shape=(0,)), ShapeError,
          "sample_shape must be >= 1"),
    Probe("joint bernoulli target 2", lambda t: (_p() * _prior()).log_prob(
        {"x": torch.full((3, 4), 2.0), "z": torch.zeros(3, 2)}), SupportError, "variable 'x' must be in [0, 1]"),
    Probe("joint empty batch", lambda t: (_p() * _prior()).log_prob({"x": torch.zeros(0, 4), "z": torch.zeros(0, 2)}),
          ShapeError, "has 0 rows"),
    Probe("joint variable twice", lambda t: JointDistribution([_prior(), _prior()]), ValueError,
          "variable 'z' is defined twice"),
    # objectives: counts at construction, inputs at evaluation
    Probe("E sample_shape 0", lambda t: E(_q(), LogProb(_p()), sample_shape=0), ObjectiveError,
          "E: sample_shape must be >= 1, got 0"),
    Probe("KL monte carlo sample_shape 0", lambda t: KL(_q(), _prior(), analytic=False, sample_shape=0),
          ObjectiveError, "KL: sample_shape must be >= 1"),
    Probe("IWELBO k 0", lambda t: IWELBO(_p() * _prior(), _q(), k=0), ObjectiveError,
          "IWELBO: k must be a positive int"),
    Probe("RenyiBound k 0", lambda t: RenyiBound(_p() * _prior(), _q(), k=0), ObjectiveError,
          "RenyiBound: k must be a positive int"),
    Probe("MMD batch_n 1", lambda t: MMD(_prior(), _prior(), batch_n=1), ObjectiveError, "MMD: batch_n must be >= 2"),
    Probe("MMD bandwidth -1", lambda t: MMD(_prior(), _prior(), bandwidth=-1.0), ObjectiveError,
          "MMD: bandwidth must be a positive finite number"),
    Probe("KL over different variables", lambda t: KL(_q(), Normal(var=["w"], loc=0.0, scale=1.0)), ObjectiveError,
          "both must be over the same variables"),
    Probe("distribution as an objective", lambda t: as_loss(_q()), ObjectiveError, "did you mean LogProb(q)?"),
    Probe("objective empty batch", lambda t: _vae_loss()({"x": torch.zeros(0, 4)}), ShapeError,
          "input 'x' has 0 rows"),
    Probe("objective missing input", lambda t: _vae_loss()({"y": _x()}), MissingVariableError,
          "needs the variable 'x'"),
    Probe("objective wrong width", lambda t: _vae_loss()({"x": torch.zeros(3, 6)}), ShapeError,
          "its network failed on the conditioning variables 'x' (3, 6)"),
    Probe("objective bernoulli target 2", lambda t: _vae_loss()({"x": torch.full((3, 4), 2.0)}), SupportError,
          "Bernoulli p(x|z): variable 'x' must be in [0, 1]"),
    # Model.train_step / eval_step
    Probe("train_step empty batch", lambda t: _model().train_step({"x": torch.zeros(0, 4)}), ShapeError,
          "input 'x' has 0 rows"),
    Probe("eval_step empty batch", lambda t: _model().eval_step({"x": torch.zeros(0, 4)}), ShapeError,
          "input 'x' has 0 rows"),
    Probe("train_step float64 batch", lambda t: _model().train_step({"x": _x().double()}), ShapeError,
          "float64; its network's parameters are float32"),
    Probe("train_step target 2", lambda t: _model().train_step({"x": torch.full((3, 4), 2.0)}), SupportError,
          "variable 'x' must be in [0, 1]"),
    Probe("train_step missing input", lambda t: _model().train_step({"image": _x()}), MissingVariableError,
          "needs the variable 'x'"),
    Probe("train_step objective not scalar", lambda t: Model(-E(_q(), LogProb(_p())), [_q(), _p()]).train_step(
        {"x": _x()}), ObjectiveError, "must be a scalar"),
    # data loaders: an explicit folder is used or refused (issue 19), damaged files are named
    Probe("data dir typo", lambda t: load_mnist("test", t / "mnsit"), DatasetNotFoundError,
          "mnsit does not exist; expected it (or one of its sub-folders"),
    Probe("data dir is a file", lambda t: load_mnist("test", _not_a_folder(t)), DatasetNotFoundError,
          "is not a folder; expected a folder holding t10k-images-idx3-ubyte"),
    Probe("data dir without the files", lambda t: load_mnist("test", (t / "empty").mkdir() or t / "empty"),
          DatasetNotFoundError, "files not found in the data folder"),
    Probe("data dir lacks one file", lambda t: load_mnist(
        "test", (lambda f: ((f / (TEST_FILES[1] + ".gz")).unlink(), f)[1])(_mnist(t / "part"))),
        DatasetNotFoundError, "missing t10k-labels-idx1-ubyte (each may be gzipped"),
    Probe("truncated gz", lambda t: load_mnist("test", _damaged(t, "truncated-gz")), IDXFormatError,
          "t10k-images-idx3-ubyte.gz: corrupt or truncated gzip stream"),
    Probe("garbage gz", lambda t: load_mnist("test", _damaged(t, "garbage-gz")), IDXFormatError,
          "corrupt or truncated gzip stream"),
    Probe("gz with a bad CRC", lambda t: load_mnist("test", _damaged(t, "crc-gz")), IDXFormatError,
          "corrupt or truncated gzip stream"),
    Probe("raw IDX bad magic", lambda t: load_mnist("test", _damaged(t, "raw-magic")), IDXFormatError,
          "bad IDX magic number"),
    Probe("raw IDX short payload", lambda t: load_mnist("test", _damaged(t, "raw-short")), IDXFormatError,
          "payload has"),
    Probe("labels do not match images", lambda t: load_mnist("test", _mnist(t / "odd", n=20, n_labels=7)),
          IDXFormatError, "expected 20 labels"),
    Probe("data dir for digits", lambda t: load_dataset("digits", "test", t), ValueError,
          "given for 'digits', which reads no files"),
    Probe("unknown dataset", lambda t: load_dataset("mnits"), ValueError, "unknown dataset 'mnits'; valid names"),
]

_PLAIN_VALUE_ERRORS = {"joint variable twice", "unknown dataset", "data dir for digits"}  # ValueErrors, one line


def test_the_table_is_large_and_its_ids_unique() -> None:
    assert len(PROBES) >= 25
    assert len({p.id for p in PROBES}) == len(PROBES)


@pytest.mark.parametrize("probe", PROBES, ids=[p.id for p in PROBES])
def test_probe(probe: Probe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPGM_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # an empty cache: nothing to fall back to
    torch.manual_seed(0)
    with pytest.raises(probe.error) as info:
        probe.call(tmp_path)
    msg = str(info.value)
    assert probe.says in msg, f"{probe.id}: expected {probe.says!r} in {msg!r}"
    if probe.one_line:
        assert "\n" not in msg, f"{probe.id}: the message is not one line: {msg!r}"
    if probe.id not in _PLAIN_VALUE_ERRORS:
        assert isinstance(info.value, DeepGMError), f"{probe.id}: {type(info.value).__name__} is not a deepgm error"
    assert "download=True" not in msg


def test_missing_data_without_a_folder_suggests_no_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPGM_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist("test")
    assert "download=True" not in str(info.value) and "--data-dir" in str(info.value)


# -- every family, swept ------------------------------------------------------------------------------------
# name -> (a valid constant distribution over "x" with a batch value, the same with a non-finite parameter)
FAMILIES: dict[str, tuple[Callable[[], Distribution], Callable[[], Distribution]]] = {
    "Normal": (lambda: Normal(loc=0.0, scale=1.0, features_shape=[2]),
               lambda: Normal(loc=INF, scale=1.0, features_shape=[2])),
    "Laplace": (lambda: Laplace(loc=0.0, scale=1.0, features_shape=[2]),
                lambda: Laplace(loc=0.0, scale=INF, features_shape=[2])),
    "Bernoulli": (lambda: Bernoulli(probs=0.5, features_shape=[2]), lambda: Bernoulli(probs=NAN, features_shape=[2])),
    "Categorical": (lambda: Categorical(probs=[0.5, 0.5]), lambda: Categorical(probs=[NAN, 0.5])),
    "RelaxedBernoulli": (lambda: RelaxedBernoulli(probs=0.5, features_shape=[2]),
                         lambda: RelaxedBernoulli(temperature=INF, probs=0.5, features_shape=[2])),
    "RelaxedCategorical": (lambda: RelaxedCategorical(probs=[0.5, 0.5]),
                           lambda: RelaxedCategorical(temperature=INF, probs=[0.5, 0.5])),
    "Beta": (lambda: Beta(concentration1=1.0, concentration0=1.0, features_shape=[2]),
             lambda: Beta(concentration1=INF, concentration0=1.0, features_shape=[2])),
    "Gamma": (lambda: Gamma(concentration=1.0, rate=1.0, features_shape=[2]),
              lambda: Gamma(concentration=1.0, rate=INF, features_shape=[2])),
    "Dirichlet": (lambda: Dirichlet(concentration=[1.0, 1.0]), lambda: Dirichlet(concentration=[INF, 1.0])),
    "Multinomial": (lambda: Multinomial(total_count=3, probs=[0.5, 0.5]),
                    lambda: Multinomial(total_count=3, probs=[0.5, NAN])),
    "Deterministic": (lambda: Deterministic(loc=0.0, features_shape=[2]),
                      lambda: Deterministic(loc=INF, features_shape=[2])),
    "MixtureOfNormal": (lambda: MixtureOfNormal(loc=torch.zeros(3, 2)),
                        lambda: MixtureOfNormal(loc=torch.zeros(3, 2), scale=INF)),
    "DiscretizedNormal": (lambda: dists.DiscretizedNormal(loc=0.0, scale=1.0, features_shape=[2], low=0.0, high=1.0),
                          lambda: dists.DiscretizedNormal(loc=0.0, scale=INF, features_shape=[2])),
    "DiscretizedLogisticMixture": (
        lambda: dists.DiscretizedLogisticMixture(logits=torch.zeros(2, 3), loc=torch.zeros(2, 3),
                                                 log_scale=torch.zeros(2, 3), features_shape=[2]),
        lambda: dists.DiscretizedLogisticMixture(logits=torch.zeros(2, 3), loc=torch.full((2, 3), NAN),
                                                 log_scale=torch.zeros(2, 3), features_shape=[2])),
}
# distributions whose parameters are networks' (no constant parameter to make non-finite): the same sweep of
# zero draws, empty batches and missing variables, over "x" of 2 values (a 1×2 image for the PixelCNNs)
NETWORKED: dict[str, Callable[[], Distribution]] = {
    "NADE": lambda: dists.NADE(dim=2, hidden=4),
    "BinaryMADE": lambda: dists.BinaryMADE(dim=2, hidden=(4,)),
    "PixelCNN": lambda: dists.PixelCNN(image_shape=(1, 1, 2), channels=4, layers=1, kernel=3, first_kernel=3),
    "GatedPixelCNN": lambda: dists.GatedPixelCNN(image_shape=(1, 1, 2), channels=4, layers=1),
    "RBM": lambda: dists.RBM(visible=2, hidden=3),
    "EnergyDistribution": lambda: dists.EnergyDistribution(var=["x"], energy=lambda x: (x**2).sum(-1),
                                                           event_shape=[2], log_normalizer=1.0),
}
# built from other distributions (which the sweep holds), or wrapping torch's own checks
EXEMPT = {
    "Distribution": "the abstract base", "Family": "the abstract base of the families above",
    "JointDistribution": "a product of swept factors (rows above)", "MarginalizedDistribution": "a view of a joint",
    "ProductOfNormal": "built from Normal experts", "MixtureOfExperts": "built from Normal experts",
    "Empirical": "no parameters: the data itself", "FromTorch": "wraps a torch distribution, which validates itself",
    "JumpySlice": "no parameters: slices given series (tests/distributions/test_slicing.py checks its errors)",
    "MultiDeterministic": "no parameters: a network's outputs (tests/distributions/test_slicing.py)",
    "NormalMixture": "its bad parameters are refused in tests/distributions/test_normal_mixture.py",
    "Autoregressive": "the abstract base of NADE, BinaryMADE and the PixelCNNs (swept in NETWORKED)",
    "PixelAutoregressive": "the abstract base of PixelCNN and GatedPixelCNN (swept in NETWORKED)",
    "DiscreteUniform": "over integers t with int bounds (tests/distributions/test_uniform.py checks its errors)",
}


def test_every_distribution_is_swept() -> None:
    exported = {n for n in dists.__all__ if isinstance(getattr(dists, n), type)
                and issubclass(getattr(dists, n), Distribution)}
    missing = exported - set(FAMILIES) - set(NETWORKED) - set(EXEMPT)
    assert not missing, f"add {sorted(missing)} to FAMILIES in tests/test_probes_api.py (or EXEMPT, with a reason)"


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_family_refuses_a_non_finite_parameter(name: str) -> None:
    with pytest.raises(ParameterError, match="must"):
        FAMILIES[name][1]()


@pytest.mark.parametrize("name", sorted(FAMILIES) + sorted(NETWORKED))
def test_family_refuses_zero_draws_and_empty_batches(name: str) -> None:
    d = FAMILIES[name][0]() if name in FAMILIES else NETWORKED[name]()
    assert d.sample(batch_n=2)["x"].shape[0] == 2
    with pytest.raises(ShapeError, match="sample_shape must be >= 1"):
        d.sample(batch_n=2, sample_shape=0)
    with pytest.raises(ShapeError, match="batch_n must be >= 1"):
        d.sample(batch_n=0)
    with pytest.raises(ShapeError, match="input 'x' has 0 rows"):
        d.log_prob({"x": torch.zeros(0, 2)})
    with pytest.raises(MissingVariableError, match="needs the variable 'x'"):
        d.log_prob({"y": torch.zeros(3, 2)})
