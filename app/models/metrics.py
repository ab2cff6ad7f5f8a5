"""Regression scores, one definition for training logs, evaluation and the registry."""

from __future__ import annotations

import numpy as np


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    """MSE, RMSE, MAE and R² as plain floats (JSON-ready); R² is None for a single row, where
    it is undefined (JSON has no NaN, and a batch may hold one row).

    >>> regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    {'n': 3, 'mse': 0.3333333333333333, 'rmse': 0.5773502691896257, 'mae': 0.3333333333333333, 'r2': 0.5}
    """
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    if y_true.shape != y_pred.shape or not len(y_true):
        raise ValueError(f"need as many predictions as true values, and some: got "
                         f"{y_pred.shape} for {y_true.shape}")
    # numpy rather than sklearn.metrics: its input validation cost more than the arithmetic,
    # and this runs several times in every train step.
    residual = y_true - y_pred
    mse = float(residual @ residual / len(residual))
    spread = y_true - y_true.mean()
    total = float(spread @ spread)
    if len(y_true) < 2:
        r2 = None
    elif total:
        r2 = 1.0 - mse * len(residual) / total
    else:  # sklearn's convention for a constant target: perfect or nothing
        r2 = 1.0 if mse == 0 else 0.0
    return {
        "n": int(len(y_true)),
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(np.abs(residual).mean()),
        "r2": None if r2 is None else float(r2),
    }
