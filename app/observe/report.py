"""The HTML evaluation report: scores in words and tables, and matplotlib plots inlined as PNG.

One self-contained page (images are ``data:`` URIs), so it can be mailed or archived as is:

- predicted against actual values of the target (with the ideal diagonal);
- residuals by each declared category (box plots: where the model is biased);
- the prequential learning curve across versions, with changes of the relation (drift),
  population shifts and refused promotions marked.

With a baseline version, both versions are scored on the same records and shown side by side.
The scores come from :mod:`app.models.evaluation`, the curve from :mod:`app.observe.curve`;
reports are kept under ``reports/`` of the pipeline home, through its storage.
"""

from __future__ import annotations

import base64
import html
import io
import re

import numpy as np
import pandas as pd

from app.data import generator
from app.data.generator import ORIGINAL, Regime
from app.dataset import Dataset, number_text
from app.limits import EVALUATE_N
from app.models.evaluation import evaluate, fresh_records
from app.observe.curve import Point, learning_curve
from app.storage import Storage

REPORT_ID = re.compile(r"evaluation-v\d{6,}(?:-vs-v\d{6,})?-\d{8}T\d{9}Z")
LATEST_KEY = "reports/latest.json"
COLORS = {"model": "#2563eb", "baseline": "#9ca3af", "drift": "#dc2626", "shift": "#7c3aed",
          "refused": "#f59e0b",
          "ideal": "#111827"}
# Points drawn in the scatter at most: more only blacken the plot and fatten the page.
SCATTER_POINTS = 2000
SCORES = ("n", "mse", "rmse", "mae", "r2")
# Categories whose residuals are plotted at most, and values shown in each plot at most.
RESIDUAL_PLOTS = 4
RESIDUAL_VALUES = 20


class NothingToScore(ValueError):
    """No records to evaluate on yet (the message says why)."""


def held_out_rows(home, n: int) -> pd.DataFrame:
    """Up to ``n`` held-out rows of the batches learnt most recently: rows no version learnt,
    the same whichever version is scored on them, so that the scores of an old version and of
    the newest compare (and an old one is judged on the data of now)."""
    from app.lifecycle.holdout import HoldoutPool
    from app.lifecycle.lineage import Lineage
    from app.models.stats import Design

    lineage = Lineage(home, Design.of(home.dataset))
    batches = lineage.recent_batches(lineage.head(home.registry.latest_version() or 0))
    rows = HoldoutPool(home).pool(batches, limit=n)
    if len(rows) < 2:
        raise NothingToScore("no held-out rows to score on yet: about one row in twenty of each "
                             "batch is held out, so learn a few more batches first")
    return rows


def evaluate_and_report(home, version: int, n: int = EVALUATE_N,
                        baseline_version: int | None = None, regime: Regime = ORIGINAL) -> dict:
    """Score ``version`` (and ``baseline_version`` on the same records), keep the HTML report.

    With the built-in dataset the records are drawn under ``regime``, the world as the
    generator draws it now; with another, they are held-out rows of recent batches.

    The result is :func:`app.models.evaluation.evaluate`'s, plus ``report_id`` and
    ``report_url`` (a path of the web app: ``/reports/<id>``), and with a baseline
    ``baseline_version`` and its ``baseline_scores``.
    """
    dataset = home.dataset
    loaded = home.registry.load(version)
    if dataset.generated:
        records = fresh_records(n, regime=regime)
        reference = {"truth": generator.ground_truth(records, regime),
                     "optimum_r2": generator.optimum_r2(regime), "regime": regime}
    else:
        records, reference = held_out_rows(home, n), {}
    result = evaluate(loaded, records, dataset, **reference)
    predictions = {f"version {loaded.version}": loaded.model.predict(records)}
    if baseline_version is not None:
        other = home.registry.load(baseline_version)
        scores = evaluate(other, records, dataset, **reference)
        result["baseline_version"] = other.version
        result["baseline_scores"] = {key: scores[key] for key in SCORES}
        predictions[f"version {other.version}"] = other.model.predict(records)
    identifier = report_id(result)
    result.update(report_id=identifier, report_url=f"/reports/{identifier}")
    page = render(result, records, predictions, learning_curve(home.registry), dataset)
    save_report(home.storage, result, page)
    return result


def report_id(result: dict) -> str:
    """``evaluation-v000042[-vs-v000040]-20250101T120000123Z``: version(s) and time, sortable."""
    stamp = re.sub(r"[^0-9T]", "", result["evaluated_at"].split("+")[0])
    compared = result.get("baseline_version")
    versus = f"-vs-v{compared:06d}" if compared else ""
    return f"evaluation-v{result['model_version']:06d}{versus}-{stamp}Z"


def html_key(identifier: str) -> str:
    return f"reports/{identifier}.html"


def save_report(storage: Storage, result: dict, page: str) -> str:
    """Keep the page and the result under ``reports/``; the newest is also ``latest.json``."""
    identifier = result["report_id"]
    storage.write_bytes(html_key(identifier), page.encode())
    storage.write_json(f"reports/{identifier}.json", result)
    storage.write_json(LATEST_KEY, result)
    return identifier


def read_report(storage: Storage, identifier: str) -> bytes:
    """The page of report ``identifier`` (``latest`` for the newest); FileNotFoundError if none."""
    if identifier == "latest":
        identifier = storage.read_json(LATEST_KEY).get("report_id") or ""
    if not REPORT_ID.fullmatch(identifier):
        raise FileNotFoundError(identifier)
    return storage.read_bytes(html_key(identifier))


# -- plots ----------------------------------------------------------------------------------

def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _figure(width: float = 7.0, height: float = 4.2):
    # Imported here: web processes read reports but never draw, and matplotlib takes a second
    # of their start-up.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    figure.set_facecolor("white")
    return figure


def _style(axes, money_x: bool = False, money_y: bool = False) -> None:
    from matplotlib.ticker import FuncFormatter

    thousands = FuncFormatter(lambda value, _: number_text(round(value, 6)))
    if money_x:
        axes.xaxis.set_major_formatter(thousands)
    if money_y:
        axes.yaxis.set_major_formatter(thousands)
    axes.grid(True, color="#e5e7eb", linewidth=0.8)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)


def predicted_vs_actual(truth: np.ndarray, predictions: dict[str, np.ndarray],
                        dataset: Dataset) -> str:
    figure = _figure(7.0, 5.0)
    axes = figure.subplots()
    rng = np.random.default_rng(0)
    shown = rng.choice(len(truth), min(len(truth), SCATTER_POINTS), replace=False)
    for (label, predicted), color in zip(predictions.items(), (COLORS["model"], COLORS["refused"])):
        axes.scatter(truth[shown], predicted[shown], s=6, alpha=0.35, color=color, label=label,
                     linewidths=0)
    low, high = np.percentile(truth, [0.5, 99.5])
    axes.plot([low, high], [low, high], color=COLORS["ideal"], linewidth=1, linestyle="--",
              label="predicted = actual")
    axes.set_xlim(low, high)
    axes.set_xlabel(f"actual {dataset.target}{_unit(dataset)}")
    axes.set_ylabel(f"predicted {dataset.target}{_unit(dataset)}")
    axes.set_title("Predicted against actual")
    axes.legend(loc="upper left", frameon=False, markerscale=3)
    _style(axes, money_x=True, money_y=True)
    return _png(figure)


def _unit(dataset: Dataset) -> str:
    return f" ({dataset.unit})" if dataset.unit else ""


def residuals_by(records: pd.DataFrame, residuals: dict[str, np.ndarray], column: str,
                 dataset: Dataset) -> str:
    """Box plots of predicted − actual per value of ``column``, worst median first (the
    ``RESIDUAL_VALUES`` most frequent values)."""
    groups = records[column].astype(str)
    frequent = set(groups.value_counts().index[:RESIDUAL_VALUES])
    first = next(iter(residuals.values()))
    medians = pd.Series(first).groupby(groups.to_numpy()).median()
    order = (medians[medians.index.isin(frequent)].abs()
             .sort_values(ascending=False).index.tolist())
    figure = _figure(7.0, 0.5 + 0.42 * len(order) * max(1, len(residuals)) ** 0.5 + 1)
    axes = figure.subplots()
    width = 0.8 / len(residuals)
    for index, ((label, values), color) in enumerate(
            zip(residuals.items(), (COLORS["model"], COLORS["refused"]))):
        data = [values[(groups == name).to_numpy()] for name in order]
        positions = np.arange(len(order)) + (index - (len(residuals) - 1) / 2) * width
        boxes = axes.boxplot(data, positions=positions, widths=width * 0.85,
                             showfliers=False, patch_artist=True, orientation="horizontal",
                             medianprops={"color": COLORS["ideal"]})
        for box in boxes["boxes"]:
            box.set(facecolor=color, alpha=0.55, edgecolor=color)
        axes.plot([], [], color=color, linewidth=6, alpha=0.55, label=label)
    axes.axvline(0, color=COLORS["ideal"], linewidth=1, linestyle="--")
    axes.set_yticks(np.arange(len(order)), order)
    axes.invert_yaxis()
    axes.set_xlabel(f"predicted − actual{_unit(dataset)}")
    axes.set_title(f"Residuals by {column}")
    if len(residuals) > 1:
        axes.legend(loc="best", frameon=False)
    _style(axes, money_x=True)
    return _png(figure)


def learning_curve_plot(points: list[Point], marked: dict[int, str], dataset: Dataset) -> str:
    """Prequential MAE by version; a changed relation (red lines), a shifted population (violet
    lines), refused promotions (amber crosses)."""
    figure = _figure(7.0, 4.0)
    axes = figure.subplots()
    scored = [point for point in points if point.mae is not None]
    axes.plot([p.version for p in scored], [p.mae for p in scored], color=COLORS["model"],
              linewidth=1.6, marker="o", markersize=2.5, label="prequential MAE")
    for kind, label, marked_points in (("drift", "relation changed", [p for p in points if p.drift]),
                                       ("shift", "population shifted", [p for p in points if p.shift])):
        for index, point in enumerate(marked_points):
            axes.axvline(point.version, color=COLORS[kind], linewidth=1, linestyle=":",
                         label=label if index == 0 else None)
    refused = [p for p in scored if p.refused]
    if refused:
        axes.scatter([p.version for p in refused], [p.mae for p in refused], marker="x", s=40,
                     color=COLORS["refused"], zorder=3, label="promotion refused")
    for version, label in marked.items():
        point = next((p for p in scored if p.version == version), None)
        if point is not None:
            axes.annotate(label, (point.version, point.mae), xytext=(0, 12),
                          textcoords="offset points", ha="center", fontsize=8,
                          arrowprops={"arrowstyle": "-", "color": "#6b7280"})
    axes.set_ylim(bottom=0)
    axes.set_xlabel("model version")
    axes.set_ylabel(f"MAE on the next batch{_unit(dataset)}")
    axes.set_title("Learning curve: each version's error on data it had not seen")
    # Below the plot: a peak after a drift would run into a legend inside it.
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    _style(axes, money_y=True)
    return _png(figure)


# -- the page -------------------------------------------------------------------------------

STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #111827;
       max-width: 980px; margin: 2rem auto; padding: 0 1.2rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2rem; font-size: 1.2rem; }
.muted { color: #6b7280; } .summary { background: #f3f4f6; padding: .8rem 1rem; border-radius: 6px; }
table { border-collapse: collapse; margin: .6rem 0; } td, th { padding: .3rem .8rem;
  border-bottom: 1px solid #e5e7eb; text-align: right; } th:first-child, td:first-child { text-align: left; }
figure { margin: 1.2rem 0; } img { max-width: 100%; }
"""


def _row(name: str, scores: dict | None) -> str:
    if not scores:
        return ""
    cells = "".join(f"<td>{scores[key]:,.{digits}f}</td>" for key, digits in
                    (("mae", 2), ("rmse", 2), ("mse", 0), ("r2", 4)))
    return f"<tr><td>{html.escape(name)}</td>{cells}</tr>"


def render(result: dict, records: pd.DataFrame, predictions: dict[str, np.ndarray],
           points: list[Point], dataset: Dataset) -> str:
    """The page for ``result``; ``predictions`` by label, the evaluated version's first."""
    truth = records[dataset.target].to_numpy(dtype=float)
    residuals = {label: np.asarray(values, dtype=float) - truth
                 for label, values in predictions.items()}
    version, compared = result["model_version"], result.get("baseline_version")
    marked = {version: f"v{version}"}
    if compared:
        marked[compared] = f"v{compared}"
    rows = [_row(f"version {version}", result)]
    if compared:
        rows.append(_row(f"version {compared} (baseline)", result["baseline_scores"]))
    rows += [_row(f"always the mean {dataset.target}", result["baseline"]),
             _row("the true function (best possible)", result.get("ground_truth"))]
    title = f"{dataset.name}: evaluation of model version {version}"
    if compared:
        title += f" against version {compared}"
    plots = {"Predicted against actual": predicted_vs_actual(truth, predictions, dataset)}
    for category in dataset.categories[:RESIDUAL_PLOTS]:
        plots[f"Residuals by {category.name}"] = residuals_by(records, residuals, category.name,
                                                              dataset)
    plots["Learning curve"] = learning_curve_plot(points, marked, dataset)
    figures = "\n".join(f'<figure><img alt="{html.escape(name)}" src="{uri}"></figure>'
                        for name, uri in plots.items())
    unit = html.escape(_unit(dataset))
    scored = "fresh records" if result["records"] == "fresh" else "held-out rows"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{html.escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="muted">Scored on {result['n']:,} {scored} at {html.escape(result['evaluated_at'])};
report {html.escape(result['report_id'])}.</p>
<p class="summary">{html.escape(result['report'])}</p>
<h2>Scores</h2>
<table><thead><tr><th>predictor</th><th>MAE{unit}</th><th>RMSE{unit}</th><th>MSE</th><th>R²</th></tr></thead>
<tbody>{''.join(rows)}</tbody></table>
<h2>Plots</h2>
{figures}
</body></html>
"""
