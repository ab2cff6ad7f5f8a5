"""Score a saved model on records it never learnt and say in words how good it is.

With the built-in dataset the records are drawn fresh by the generator, and the ground truth
(the function the generator draws the target from) is scored beside the model: the best any
model can do. With any other dataset there is no generator: the records are held-out rows of
recent batches (see :func:`app.data.normalize.holdout_mask`), and there is no ground truth.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd

from app.data.generator import ORIGINAL, Regime, generate
from app.dataset import Dataset, figure
from app.limits import EVALUATE_N_MAX, EVALUATE_N_MIN
from app.models.metrics import regression_metrics
from app.models.registry import LoadedModel


def fresh_records(n: int, seed: int | None = None, regime: Regime = ORIGINAL) -> pd.DataFrame:
    """``n`` records never seen by any model, drawn as the generator draws them under
    ``regime`` (the ground truth in force)."""
    if not EVALUATE_N_MIN <= n <= EVALUATE_N_MAX:
        raise ValueError(f"n must be between {EVALUATE_N_MIN} and {EVALUATE_N_MAX:,}, got {n}")
    return generate(n, seed=seed, batch_id="evaluation", regime=regime)


def evaluate(loaded: LoadedModel, records: pd.DataFrame, dataset: Dataset,
             truth: np.ndarray | None = None, optimum_r2: float | None = None,
             regime: Regime | None = None) -> dict:
    """MSE, RMSE, MAE and R² of ``loaded`` on ``records``, against references.

    The baseline always predicts the training mean (what a model that learnt nothing does).
    ``truth``: the ground truth's predictions for the same records (the best any model can
    do), when a generator made them under ``regime``; ``optimum_r2``: its exact R².
    """
    actual = records[dataset.target].to_numpy(dtype=float)
    model = loaded.model
    result = {
        "model_version": loaded.version,
        "n_samples_seen": int(model.n_samples_seen_),
        **regression_metrics(actual, model.predict(records)),
        "baseline": regression_metrics(actual, np.full(len(actual), model.target_mean_)),
        "records": "fresh" if truth is not None else "held-out",
    }
    if truth is not None:
        result["ground_truth"] = regression_metrics(actual, truth)
        result["optimum_r2"] = optimum_r2
    if regime is not None:
        result["regime"] = {"scenario": regime.scenario, "batch": regime.batch,
                            "changed": regime.changed, "shifted": regime.shifted}
    result["evaluated_at"] = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    result["report"] = report(result, dataset)
    return result


def _verdict(result: dict) -> str:
    r2 = result["r2"]
    if "ground_truth" in result:
        share = r2 / result["ground_truth"]["r2"]
        if share >= 0.97:
            return "as good as this data allows: what is left is the noise in the target"
        if share >= 0.85:
            return "good, but not yet at the optimum: more batches should close the gap"
    if r2 > 0:
        return "weak: it beats guessing the mean but misses much of what can be learnt" if (
            "ground_truth" in result) else (
            f"it explains {r2:.1%} of the variance that guessing the mean leaves")
    return "useless: it does no better than always guessing the mean"


def report(result: dict, dataset: Dataset) -> str:
    """A paragraph a person can read: how good the model is and compared with what."""
    r2, baseline = result["r2"], result["baseline"]
    amount = dataset.amount
    scored = ("fresh ones" if result["records"] == "fresh"
              else "held-out rows of recent batches, which no version learnt")
    text = (f"Model version {result['model_version']}, trained on "
            f"{result['n_samples_seen']:,} records, scored on {result['n']:,} {scored}: "
            f"R² {r2:.4f}")
    if "ground_truth" in result:
        # The truth's score on these very records is the fairest yardstick: the sample's own
        # noise moves both alike, where the exact optimum is only what they average to.
        truth_r2 = result["ground_truth"]["r2"]
        text += (f", {r2 / truth_r2:.1%} of the {truth_r2:.4f} the true function itself scores "
                 f"on them (its exact optimum: {result['optimum_r2']:.4f})")
    text += (f". Its predictions of {dataset.target} are off by {amount(result['mae'])} on "
             f"average (RMSE {amount(result['rmse'])}; MSE {figure(result['mse'])}), against "
             f"{amount(baseline['mae'])} (RMSE {amount(baseline['rmse'])}) for always guessing "
             "the mean")
    if "ground_truth" in result:
        text += f" and {amount(result['ground_truth']['mae'])} for the true function"
    return text + f". Verdict: {_verdict(result)}."
