"""``GET /``: the model page. Which version is served and why, the learning curve (an SVG drawn
here, no script), the versions with their prequential scores, the last batches, and links.

Server-rendered from the registry, the serving state and the ledger; nothing to build.
"""

from __future__ import annotations

import math
from datetime import datetime
from html import escape

from flask import Blueprint, current_app, render_template, request
from markupsafe import Markup

from app.data.ledger import Ledger
from app.dataset import Dataset, figure, number_text
from app.observe.curve import Point, learning_curve
from app.settings import redact
from app.web.openapi import documented
from app.web.holder import get_home, get_model_holder
from app.web.status import live_error

bp = Blueprint("page", __name__)

VERSIONS_SHOWN = 15
BATCHES_SHOWN = 10
REPORTS_SHOWN = 8
# The chart's drawing area, in SVG units (it scales to the page's width).
WIDTH, HEIGHT = 920, 300
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 34, 40


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round values spanning [low, high].

    >>> _ticks(0, 4300)
    [0.0, 1000.0, 2000.0, 3000.0, 4000.0]
    """
    span = max(high - low, 1e-9)
    raw = span / count
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


class _Scale:
    """Where a version and an error fall on the chart: versions ``first`` to ``last`` across,
    errors 0 to ``top`` up."""

    def __init__(self, first: int, last: int, top: float):
        self.first, self.last, self.top = first, last, top

    def x(self, version: float) -> float:
        across = (version - self.first) / max(self.last - self.first, 1)
        return LEFT + across * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        return HEIGHT - BOTTOM - value / self.top * (HEIGHT - TOP - BOTTOM)


def curve_svg(points: list[Point], served: int | None, dataset: Dataset,
              live: dict | None = None) -> Markup:
    """Prequential MAE by version: a changed relation (drift) as red dashed lines, a shifted
    population as violet dotted ones, refused versions as amber crosses, the served version
    ringed in green; with ``live`` (``{version: {"labelled", "mae"}}``), each version's live
    MAE, of its answers whose labels came back, as a teal diamond. Every value shown is a
    number or escaped."""
    scored = [p for p in points if p.mae is not None]
    if not scored:
        return Markup('<p class="muted" id="learning-curve">No version has been scored yet: the '
                      'curve starts with the second version.</p>')
    shown = {p.version for p in points}
    live = {v: f for v, f in (live or {}).items() if v in shown and f["mae"] is not None}
    top = max([p.mae for p in scored] + [f["mae"] for f in live.values()]) * 1.08
    y_ticks = _ticks(0, top)
    scale = _Scale(points[0].version, points[-1].version, max(top, y_ticks[-1]))
    parts = [f'<svg id="learning-curve" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             'aria-label="Learning curve: prequential MAE by model version">',
             *_axes(scale, y_ticks, dataset), *_changes(points, scale)]
    line = " ".join(f"{scale.x(p.version):.1f},{scale.y(p.mae):.1f}" for p in scored)
    parts.append(f'<polyline class="mae" points="{line}"/>')
    for point in scored:
        parts.extend(_scored_point(point, scale, dataset, served))
    for version, figures in live.items():
        lx, ly = scale.x(version), scale.y(figures["mae"])
        parts.append(f'<path class="live" d="M{lx:.1f},{ly - 5:.1f}l5,5l-5,5l-5,-5z"><title>'
                     f'version {version}: live MAE {escape(dataset.amount(figures["mae"]))} over '
                     f'{figures["labelled"]:,} answers whose labels came back</title></path>')
    parts.extend(_legend(bool(live)))
    parts.append("</svg>")
    return Markup("".join(parts))


def _axes(scale: _Scale, y_ticks: list[float], dataset: Dataset) -> list[str]:
    """The grid and ticks of both axes, and their titles."""
    x, y = scale.x, scale.y
    unit = escape(f" ({dataset.unit})") if dataset.unit else ""
    parts = []
    for value in y_ticks:
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" '
                     f'y2="{y(value):.1f}"/><text class="tick" x="{LEFT - 8}" y="{y(value) + 4:.1f}" '
                     f'text-anchor="end">{number_text(round(value, 6))}</text>')
    for value in _ticks(scale.first, scale.last, 8):
        if float(value).is_integer():
            parts.append(f'<text class="tick" x="{x(value):.1f}" y="{HEIGHT - BOTTOM + 18}" '
                         f'text-anchor="middle">{value:.0f}</text>')
    parts.append(f'<text class="axis" x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 4}" '
                 'text-anchor="middle">model version</text>')
    parts.append(f'<text class="axis" transform="translate(14 {(TOP + HEIGHT - BOTTOM) / 2}) '
                 f'rotate(-90)" text-anchor="middle">MAE on the next batch{unit}</text>')
    return parts


def _changes(points: list[Point], scale: _Scale) -> list[str]:
    """A vertical line at each version where the relation changed or the population shifted."""
    parts = []
    for point in points:
        where = (f'x1="{scale.x(point.version):.1f}" x2="{scale.x(point.version):.1f}" '
                 f'y1="{TOP}" y2="{HEIGHT - BOTTOM}"')
        if point.drift:
            parts.append(f'<line class="drift" {where}><title>the relation changed at version '
                         f'{point.version}: refit on the batches since</title></line>')
        elif point.shift:
            parts.append(f'<line class="shift" {where}><title>the population shifted at version '
                         f'{point.version} ({escape(point.shift)}): learnt on</title></line>')
    return parts


def _scored_point(p: Point, scale: _Scale, dataset: Dataset, served: int | None) -> list[str]:
    """A version's point (a cross when its promotion was refused), ringed when it is served."""
    tip = (f"version {p.version}: prequential MAE {dataset.amount(p.mae)}, R² {_r2(p.r2)}"
           + (", the relation changed" if p.drift else "")
           + (", the population shifted" if p.shift else "")
           + (", promotion refused" if p.refused else ""))
    px, py = scale.x(p.version), scale.y(p.mae)
    if p.refused:
        parts = [f'<path class="refused" d="M{px - 5:.1f},{py - 5:.1f}l10,10m0,-10l-10,10">'
                 f'<title>{escape(tip)}</title></path>']
    else:
        parts = [f'<circle class="point" cx="{px:.1f}" cy="{py:.1f}" r="3">'
                 f'<title>{escape(tip)}</title></circle>']
    if p.version == served:
        # Near the right edge the label ends at the point rather than overflowing.
        anchor = "end" if px > WIDTH - RIGHT - 60 else "middle"
        parts.append(f'<circle class="served" cx="{px:.1f}" cy="{py:.1f}" r="8"/>'
                     f'<text class="served-label" x="{px:.1f}" y="{py - 13:.1f}" '
                     f'text-anchor="{anchor}">served v{p.version}</text>')
    return parts


def _legend(with_live: bool) -> list[str]:
    legend = [("mae", "prequential MAE"), ("drift", "relation changed"),
              ("shift", "population shifted"), ("refused", "promotion refused"),
              ("served", "served version")] + ([("live", "live MAE")] if with_live else [])
    parts = []
    for index, (kind, label) in enumerate(legend):
        lx = LEFT + index * (WIDTH - LEFT) / len(legend)
        parts.append(f'<g class="legend"><rect class="key-{kind}" x="{lx}" y="8" width="14" '
                     f'height="14" rx="3"/><text x="{lx + 20}" y="19">{label}</text></g>')
    return parts


def _r2(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def why_served(state, served: int | None, newest: int | None, registry) -> tuple[str, str]:
    """``(kind, sentence)``: kind is ``pinned``, ``gate`` or ``follow``."""
    if served is None:
        return "none", "no version can be served yet: the first appears once a batch is trained"
    if state.mode == "pinned":
        return "pinned", (f"pinned by {state.by or 'an operator'} at {state.since}: "
                          f"{state.reason}")
    if newest is not None and newest != served:
        gate = registry.metadata(newest).gate
        return "gate", (f"the promotion gate refused the newer version {newest}: "
                        f"{gate.get('reason', 'no reason recorded')}")
    return "follow", "the newest version: follow mode serves each one the promotion gate lets through"


def _when(stamp: str | None) -> str:
    """``2025-01-01 12:00:00`` from an ISO time (UTC, to the second)."""
    if not stamp:
        return ""
    return datetime.fromisoformat(stamp).strftime("%Y-%m-%d %H:%M:%S")


def _recent_batches(ledger: Ledger) -> list[dict]:
    batches = []
    for batch in ledger.newest_first():
        batches.append(batch)
        if len(batches) == BATCHES_SHOWN:
            break
    return batches


def _reports(home) -> list[str]:
    names = [name.removesuffix(".html") for name in home.storage.list("reports")
             if name.endswith(".html")]
    return sorted(names, key=lambda name: name.rsplit("-", 1)[-1], reverse=True)[:REPORTS_SHOWN]


def _flower_url() -> str:
    configured = current_app.config.get("FLOWER_URL")
    if configured:
        # Anyone who reaches this page may read it: a password in the URL stays out.
        return redact(configured)
    host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
    return f"{request.scheme}://{host}:{current_app.config['FLOWER_PORT']}/"


@bp.get("/")
@documented(responses={200: "the model page (HTML)"})
def page():
    """The model page: served version and why, learning curve, versions, batches, links."""
    home, holder = get_home(), get_model_holder()
    serving = holder.current()
    served = serving.version if serving else None
    registry = home.registry
    newest = registry.latest_version()
    state = home.serving.state()
    kind, why = why_served(state, served, newest, registry)
    points = learning_curve(registry, known=current_app.extensions.setdefault("curve_points", {}))
    live = live_error() if current_app.config["LOG_PREDICTIONS"] else None
    by_version = {int(v): f for v, f in (live or {}).get("by_version", {}).items()}
    return render_template(
        "page.html", dataset=home.dataset, served=served,
        served_metadata=serving.metadata if serving else None, newest=newest, kind=kind,
        why=why, mode=state.mode, chart=curve_svg(points, served, home.dataset, by_version),
        live=by_version if live is not None else None,
        versions=points[::-1][:VERSIONS_SHOWN], batches=_recent_batches(home.ledger),
        reports=_reports(home), flower_url=_flower_url(), when=_when, figure=figure, r2=_r2)
