"""Score a saved model on fresh records and say in words how good it is."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd

from app.data.generator import ORIGINAL, Regime, generate, optimum_r2
from app.models.metrics import regression_metrics
from app.models.registry import LoadedModel

MAX_N = 1_000_000


def fresh_records(n: int, seed: int | None = None, regime: Regime = ORIGINAL) -> pd.DataFrame:
    """``n`` records never seen by any model, drawn as the generator draws them under
    ``regime`` (the ground truth in force)."""
    if not 2 <= n <= MAX_N:
        raise ValueError(f"n must be between 2 and {MAX_N:,}, got {n}")
    return generate(n, seed=seed, batch_id="evaluation", regime=regime)


def evaluate(loaded: LoadedModel, n: int = 5000, seed: int | None = None,
             records: pd.DataFrame | None = None, regime: Regime = ORIGINAL) -> dict:
    """MSE, RMSE, MAE and R² of ``loaded`` on ``n`` new records, against two references.

    The records are drawn under ``regime``, the ground truth in force. The baseline always
    predicts the training mean (what a model that learnt nothing does); the ground truth is
    the best any model can do on the same records. ``records``: score on these instead (to
    compare two versions on the very same rows; they must come from ``regime``).
    """
    if records is None:
        records = fresh_records(n, seed, regime)
    n = len(records)
    truth = records["salario"].to_numpy()
    model = loaded.model
    scores = regression_metrics(truth, model.predict(records))
    baseline = regression_metrics(truth, np.full(n, model.target_mean_))
    ground_truth = regression_metrics(
        truth, regime.expected(records["idade"], records["cidade"], records["cargo"]))
    result = {
        "model_version": loaded.version,
        "n_samples_seen": int(model.n_samples_seen_),
        **scores,
        "baseline": baseline,
        "ground_truth": ground_truth,
        "optimum_r2": optimum_r2(regime),
        "regime": {"scenario": regime.scenario, "batch": regime.batch, "changed": regime.changed},
        "evaluated_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
    }
    result["report"] = report(result)
    return result


def report(result: dict) -> str:
    """A paragraph a person can read: how good the model is and compared with what."""
    r2, optimum = result["r2"], result["optimum_r2"]
    # The truth's score on these very records is the fairest yardstick: the sample's own noise
    # moves both alike, where the exact optimum is only what they average to.
    truth_r2 = result["ground_truth"]["r2"]
    share = r2 / truth_r2
    if share >= 0.97:
        verdict = "as good as this data allows: what is left is the noise in salaries"
    elif share >= 0.85:
        verdict = "good, but not yet at the optimum: more batches should close the gap"
    elif r2 > 0:
        verdict = "weak: it beats guessing the mean but misses much of what can be learnt"
    else:
        verdict = "useless: it does no better than always guessing the mean salary"
    baseline = result["baseline"]
    return (
        f"Model version {result['model_version']}, trained on "
        f"{result['n_samples_seen']:,} records, scored on {result['n']:,} fresh ones: "
        f"R² {r2:.4f}, {share:.1%} of the {truth_r2:.4f} the true function itself scores on "
        f"them (its exact optimum: {optimum:.4f}). "
        f"Its predictions are off by R$ {result['mae']:,.2f} on average "
        f"(RMSE R$ {result['rmse']:,.2f}; MSE {result['mse']:,.0f}), against "
        f"R$ {baseline['mae']:,.2f} (RMSE R$ {baseline['rmse']:,.2f}) for always guessing the "
        f"mean salary and R$ {result['ground_truth']['mae']:,.2f} for the true function. "
        f"Verdict: {verdict}."
    )
