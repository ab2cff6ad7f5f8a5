"""Synthetic employee records with a known ground truth for ``salario``.

The ground truth is additive, so a model that is linear in one-hot ``cidade`` and ``cargo``
plus a quadratic in ``idade`` can represent it exactly, and the noise is multiplicative
(log-normal), as real salaries are::

    expected(idade, cidade, cargo) = CARGOS[cargo] + CIDADES[cidade]
                                     + 120 * (idade - 18) - 1.6 * (idade - 18) ** 2
    salario = expected * exp(sigma * z - sigma ** 2 / 2),   z ~ N(0, 1), sigma = 0.2

The noise factor has mean 1, so ``expected`` is the conditional mean: the best any model can
do. Its R² is ``optimum_r2()``, computed exactly from the catalogue's probabilities.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from datetime import datetime, timezone

import numpy as np
import pandas as pd

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
_AGES = np.arange(AGE_MIN, AGE_MAX + 1)

# A fixed instant for seeded output, so that the same seed gives the same bytes.
SEEDED_START = datetime(2025, 1, 1, tzinfo=timezone.utc)


def age_effect(idade):
    """What age adds to the salary: rises with experience and flattens towards retirement."""
    years = np.asarray(idade, dtype=float) - AGE_MIN
    return AGE_SLOPE * years - AGE_CURVATURE * years**2


def expected_salary(idade, cidade, cargo) -> np.ndarray:
    """The ground truth: the mean salary for these ages, cities and job titles.

    >>> expected_salary([18, 40], ["São Paulo", "Belém"], ["Professor", "Médico"]).round(1)
    array([ 6000. , 15865.6])
    """
    cargo_base = pd.Series(_CARGO_BASE, index=_CARGO_NAMES)
    cidade_premium = pd.Series(_CIDADE_PREMIUM, index=_CIDADE_NAMES)
    return (
        cargo_base.loc[list(cargo)].to_numpy()
        + cidade_premium.loc[list(cidade)].to_numpy()
        + age_effect(idade)
    )


def optimum_r2() -> float:
    """The R² of the ground truth itself: no model can expect to do better.

    Age, city and job title are drawn independently, so the variance of the expected salary is
    the sum of the three parts' variances; the log-normal noise adds ``expected² * (e^σ² - 1)``.

    >>> round(optimum_r2(), 4)
    0.7913
    """
    def moments(values, p):
        mean = float(np.dot(p, values))
        return mean, float(np.dot(p, (values - mean) ** 2))

    age_p = np.full(len(_AGES), 1.0 / len(_AGES))
    parts = [
        moments(_CARGO_BASE, _CARGO_P),
        moments(_CIDADE_PREMIUM, _CIDADE_P),
        moments(age_effect(_AGES), age_p),
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
             start: datetime | None = None) -> pd.DataFrame:
    """``n`` records with the contract's fields, drawn in bulk.

    The same ``seed`` gives the same records; ``start`` is the first record's timestamp (the
    next ones follow a millisecond apart). With a seed and no ``start`` or ``batch_id`` the
    output is entirely fixed.

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
    idade = rng.integers(AGE_MIN, AGE_MAX + 1, size=n)
    cidade_idx = rng.choice(len(_CIDADE_NAMES), size=n, p=_CIDADE_P)
    cargo_idx = rng.choice(len(_CARGO_NAMES), size=n, p=_CARGO_P)
    expected = _CARGO_BASE[cargo_idx] + _CIDADE_PREMIUM[cidade_idx] + age_effect(idade)
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
