"""Synthetic employee records with a known ground truth for ``salario``.

The ground truth is additive, so a model that is linear in one-hot ``cidade`` and ``cargo``
plus a quadratic in ``idade`` can represent it exactly, and the noise is multiplicative
(log-normal), as real salaries are::

    expected(idade, cidade, cargo) = CARGOS[cargo] + CIDADES[cidade]
                                     + 120 * (idade - 18) - 1.6 * (idade - 18) ** 2
    salario = expected * exp(sigma * z - sigma ** 2 / 2),   z ~ N(0, 1), sigma = 0.2

The noise factor has mean 1, so ``expected`` is the conditional mean: the best any model can
do. Its R² is ``optimum_r2()``, computed exactly from the catalogue's probabilities.

**Drift.** A :class:`Regime` is the world in force for one generated batch, numbered from 1 in
a ``PIPELINE_HOME`` (``DRIFT`` names the scenario, ``DRIFT_AFTER`` the first batch of the
change; see :func:`regime`): the ground truth, and who is drawn. In ``sudden`` and ``gradual``
only ``expected`` changes, never who is drawn or the noise; in ``covariate`` only who is drawn:

- ``none``: the catalogue above, for every batch;
- ``sudden``: from batch ``DRIFT_AFTER`` on, at once, an ``Analista de Sistemas`` earns 5,000
  more (base 11,500), a ``Gerente de Projetos`` 5,000 less (base 6,000), and a year of age is
  worth 180 instead of 120, pivoting at 44 (the mean age, whose pay stays put): the young earn
  less and the old more. The mean salary moves by only +200, so the error a perfect model
  makes hardly changes, while a model of the old world loses about 0.2 of R²;
- ``gradual``: from batch ``DRIFT_AFTER`` on, São Paulo, Rio de Janeiro and Brasília lose 20
  of premium with every batch and Recife, Salvador and Fortaleza gain 20, for 100 batches
  (2,000 in all); after that the world stays where it got to;
- ``covariate``: from batch ``DRIFT_AFTER`` on, other people arrive, under the same ground
  truth: aged 55 to 70 (drawn evenly), and four in five from São Paulo, Rio de Janeiro and
  Brasília (each as often), the other cities sharing the rest as before. They earn more, and
  the noise being a share of the salary, their salaries vary more: the prequential error rises
  by about a fifth, as it would after a change of the world. Yet a model of the whole
  population predicts them as well as the noise allows: the world did not change, only who
  arrived.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from app.settings import DRIFT_SCENARIOS as SCENARIOS

FIELDS = ("nome", "idade", "salario", "cidade", "cargo", "timestamp", "geracao_id")
AGE_MIN, AGE_MAX = 18, 70
AGE_SLOPE, AGE_CURVATURE = 120.0, 1.6
NOISE_SIGMA = 0.2

# Monthly base salary (BRL) of each job title, and how often it is drawn.
CARGOS: dict[str, tuple[float, float]] = {
    "Atendente": (1900.0, 0.12),
    "Auxiliar Administrativo": (2200.0, 0.12),
    "Vendedor": (2500.0, 0.12),
    "Motorista": (2800.0, 0.08),
    "Técnico de Enfermagem": (3200.0, 0.08),
    "Professor": (4200.0, 0.09),
    "Enfermeiro": (5200.0, 0.06),
    "Contador": (5800.0, 0.06),
    "Analista de Sistemas": (6500.0, 0.08),
    "Advogado": (8000.0, 0.05),
    "Engenheiro Civil": (9000.0, 0.04),
    "Cientista de Dados": (10500.0, 0.04),
    "Gerente de Projetos": (11000.0, 0.04),
    "Médico": (14000.0, 0.02),
}

# What each city adds to the salary (BRL), and how often it is drawn.
CIDADES: dict[str, tuple[float, float]] = {
    "São Paulo": (1800.0, 0.20),
    "Rio de Janeiro": (1400.0, 0.12),
    "Brasília": (1600.0, 0.06),
    "Campinas": (1000.0, 0.05),
    "Florianópolis": (900.0, 0.04),
    "Curitiba": (800.0, 0.07),
    "Porto Alegre": (750.0, 0.06),
    "Belo Horizonte": (700.0, 0.09),
    "Goiânia": (400.0, 0.05),
    "Manaus": (300.0, 0.05),
    "Recife": (250.0, 0.06),
    "Salvador": (200.0, 0.07),
    "Fortaleza": (100.0, 0.05),
    "Belém": (0.0, 0.03),
}

_CARGO_NAMES = np.array(list(CARGOS), dtype=object)
_CARGO_BASE = np.array([base for base, _ in CARGOS.values()])
_CARGO_P = np.array([p for _, p in CARGOS.values()])
_CIDADE_NAMES = np.array(list(CIDADES), dtype=object)
_CIDADE_PREMIUM = np.array([premium for premium, _ in CIDADES.values()])
_CIDADE_P = np.array([p for _, p in CIDADES.values()])
_CARGO_DTYPE = pd.CategoricalDtype(_CARGO_NAMES)
_CIDADE_DTYPE = pd.CategoricalDtype(_CIDADE_NAMES)

# A fixed instant for seeded output, so that the same seed gives the same bytes.
SEEDED_START = datetime(2025, 1, 1, tzinfo=timezone.utc)


# The sudden change: two job titles' pay moves, and each year of age is worth half as much
# again, pivoting at the mean age (so the level of salaries, and the noise, hardly move).
SUDDEN_CARGOS = {"Analista de Sistemas": 5000.0, "Gerente de Projetos": -5000.0}
SUDDEN_AGE_SLOPE = 180.0
AGE_PIVOT = 44
# The gradual change: these cities' premiums move by this much per batch, for this many batches.
GRADUAL_STEP = {"São Paulo": -20.0, "Rio de Janeiro": -20.0, "Brasília": -20.0,
                "Recife": 20.0, "Salvador": 20.0, "Fortaleza": 20.0}
GRADUAL_BATCHES = 100
# The shifted population: older people, most of them from these cities.
COVARIATE_AGES = (55, AGE_MAX)
COVARIATE_CITIES = ("São Paulo", "Rio de Janeiro", "Brasília")
COVARIATE_SHARE = 0.8


def age_effect(idade, slope: float = AGE_SLOPE):
    """What age adds to the salary: rises with experience and flattens towards retirement.

    Another ``slope`` turns the curve about ``AGE_PIVOT``, whose effect stays the same.
    """
    years = np.asarray(idade, dtype=float) - AGE_MIN
    return (AGE_SLOPE * years - AGE_CURVATURE * years**2
            + (slope - AGE_SLOPE) * (years - (AGE_PIVOT - AGE_MIN)))


@dataclass(frozen=True, eq=False)
class Regime:
    """The ground truth in force: each job title's base, each city's premium, the age slope."""

    scenario: str = "none"
    batch: int = 1
    cargo_base: np.ndarray = field(default_factory=_CARGO_BASE.copy)
    cidade_premium: np.ndarray = field(default_factory=_CIDADE_PREMIUM.copy)
    age_slope: float = AGE_SLOPE
    # Who is drawn: ages evenly in [low, high], cities with these probabilities.
    ages: tuple[int, int] = (AGE_MIN, AGE_MAX)
    cidade_p: np.ndarray = field(default_factory=_CIDADE_P.copy)

    @property
    def changed(self) -> bool:
        """Whether this regime's ground truth differs from the original catalogue's."""
        return bool(self.age_slope != AGE_SLOPE or (self.cargo_base != _CARGO_BASE).any()
                    or (self.cidade_premium != _CIDADE_PREMIUM).any())

    @property
    def shifted(self) -> bool:
        """Whether this regime draws other people than the original catalogue does."""
        return bool(self.ages != (AGE_MIN, AGE_MAX) or (self.cidade_p != _CIDADE_P).any())

    def expected_codes(self, idade, cidade_idx, cargo_idx) -> np.ndarray:
        return (self.cargo_base[cargo_idx] + self.cidade_premium[cidade_idx]
                + age_effect(idade, self.age_slope))

    def expected(self, idade, cidade, cargo) -> np.ndarray:
        """The mean salary for these ages, cities and job titles under this regime."""
        cargo_idx = pd.Index(_CARGO_NAMES).get_indexer(list(cargo))
        cidade_idx = pd.Index(_CIDADE_NAMES).get_indexer(list(cidade))
        if (cargo_idx < 0).any() or (cidade_idx < 0).any():
            raise ValueError("the ground truth knows only the catalogue's cities and job titles")
        return self.expected_codes(np.asarray(idade), cidade_idx, cargo_idx)


def regime(scenario: str = "none", batch: int = 1, drift_after: int = 100) -> Regime:
    """The ground truth of generated batch number ``batch`` (from 1) under ``scenario``.

    >>> regime("sudden", 99, 100).changed, regime("sudden", 100, 100).age_slope
    (False, 180.0)
    >>> gradual = regime("gradual", 102, 100)  # the third batch of the change
    >>> float(gradual.cidade_premium[list(CIDADES).index("São Paulo")])
    1740.0
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {', '.join(SCENARIOS)}, got {scenario!r}")
    if batch < 1 or drift_after < 1:
        raise ValueError(f"batch and drift_after count from 1, got {batch} and {drift_after}")
    steps = batch - drift_after + 1
    if scenario == "none" or steps <= 0:
        return Regime(scenario, batch)
    if scenario == "covariate":
        others = np.isin(_CIDADE_NAMES, COVARIATE_CITIES)
        cidade_p = np.where(others, COVARIATE_SHARE / others.sum(),
                            _CIDADE_P * (1 - COVARIATE_SHARE) / _CIDADE_P[~others].sum())
        return Regime(scenario, batch, ages=COVARIATE_AGES, cidade_p=cidade_p)
    if scenario == "sudden":
        cargo_base = _CARGO_BASE.copy()
        for cargo, change in SUDDEN_CARGOS.items():
            cargo_base[list(CARGOS).index(cargo)] += change
        return Regime(scenario, batch, cargo_base=cargo_base, age_slope=SUDDEN_AGE_SLOPE)
    premium = _CIDADE_PREMIUM.copy()
    for city, step in GRADUAL_STEP.items():
        premium[list(CIDADES).index(city)] += step * min(steps, GRADUAL_BATCHES)
    return Regime(scenario, batch, cidade_premium=premium)


ORIGINAL = Regime()


def expected_salary(idade, cidade, cargo, regime: Regime = ORIGINAL) -> np.ndarray:
    """The ground truth: the mean salary for these ages, cities and job titles.

    >>> expected_salary([18, 40], ["São Paulo", "Belém"], ["Professor", "Médico"]).round(1)
    array([ 6000. , 15865.6])
    """
    return regime.expected(idade, cidade, cargo)


def ground_truth(records: pd.DataFrame, regime: Regime = ORIGINAL) -> np.ndarray:
    """The ground truth's predictions for generated ``records``: the best any model can do."""
    return regime.expected(records["idade"], records["cidade"], records["cargo"])


def optimum_r2(regime: Regime = ORIGINAL) -> float:
    """The R² of the ground truth itself under ``regime``: no model can expect to do better.

    Age, city and job title are drawn independently, so the variance of the expected salary is
    the sum of the three parts' variances; the log-normal noise adds ``expected² * (e^σ² - 1)``.

    >>> round(optimum_r2(), 4), round(optimum_r2(regime("sudden", 2, 1)), 4)
    (0.7913, 0.8256)
    """
    def moments(values, p):
        mean = float(np.dot(p, values))
        return mean, float(np.dot(p, (values - mean) ** 2))

    ages = np.arange(regime.ages[0], regime.ages[1] + 1)
    parts = [
        moments(regime.cargo_base, _CARGO_P),
        moments(regime.cidade_premium, regime.cidade_p),
        moments(age_effect(ages, regime.age_slope), np.full(len(ages), 1.0 / len(ages))),
    ]
    mean = sum(m for m, _ in parts)
    signal = sum(v for _, v in parts)
    noise = (signal + mean**2) * np.expm1(NOISE_SIGMA**2)
    return float(signal / (signal + noise))


@functools.lru_cache(maxsize=1)
def _name_dtype() -> pd.CategoricalDtype:
    """Every pairing of Faker ``pt_BR`` first and last names, made once: Faker is slow per call."""
    from faker import Faker

    fake = Faker("pt_BR")
    fake.seed_instance(20240601)
    first = sorted({fake.first_name() for _ in range(3000)})
    last = sorted({fake.last_name() for _ in range(3000)})
    return pd.CategoricalDtype([f"{a} {b}" for a in first for b in last])


def new_batch_id() -> str:
    return uuid.uuid4().hex


def seed_for(batch_id: str) -> int:
    """A seed derived from a batch id, so a batch made again has the same records."""
    return int.from_bytes(hashlib.sha256(batch_id.encode()).digest()[:8], "big")


def generate(n: int, seed: int | None = None, batch_id: str | None = None,
             start: datetime | None = None, regime: Regime = ORIGINAL) -> pd.DataFrame:
    """``n`` records with the contract's fields, drawn in bulk, salaries by ``regime``.

    The same ``seed`` gives the same records; ``start`` is the first record's timestamp (the
    next ones follow a millisecond apart). With a seed and no ``start`` or ``batch_id`` the
    output is entirely fixed. A different ``regime`` with the same seed draws the same people
    and noise; only their expected salary differs.

    >>> df = generate(3, seed=1)
    >>> list(df.columns) == list(FIELDS), len(df), df["idade"].between(18, 70).all()
    (True, 3, np.True_)
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    rng = np.random.default_rng(seed)
    if batch_id is None:
        batch_id = f"sample-{seed}" if seed is not None else new_batch_id()
    if start is None:
        start = SEEDED_START if seed is not None else datetime.now(timezone.utc)

    names = _name_dtype()
    name_idx = rng.integers(len(names.categories), size=n)
    idade = rng.integers(regime.ages[0], regime.ages[1] + 1, size=n)
    cidade_idx = rng.choice(len(_CIDADE_NAMES), size=n, p=regime.cidade_p)
    cargo_idx = rng.choice(len(_CARGO_NAMES), size=n, p=_CARGO_P)
    expected = regime.expected_codes(idade, cidade_idx, cargo_idx)
    noise = np.exp(NOISE_SIGMA * rng.standard_normal(n) - NOISE_SIGMA**2 / 2)
    first = np.datetime64(start.astimezone(timezone.utc).replace(tzinfo=None), "ms")
    timestamps = first + np.arange(n).astype("timedelta64[ms]")

    # Categoricals from codes cost one integer array each, where strings would cost a Python
    # object per record; Parquet keeps them dictionary-encoded too.
    return pd.DataFrame({
        "nome": pd.Categorical.from_codes(name_idx, dtype=names),
        "idade": idade.astype("int64"),
        "salario": np.round(expected * noise, 2),
        "cidade": pd.Categorical.from_codes(cidade_idx, dtype=_CIDADE_DTYPE),
        "cargo": pd.Categorical.from_codes(cargo_idx, dtype=_CARGO_DTYPE),
        "timestamp": pd.DatetimeIndex(timestamps).tz_localize("UTC"),
        "geracao_id": pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=[batch_id]),
    }, columns=list(FIELDS))
