"""Commands on data and models that need no running web app: ``sample`` and ``evaluate``."""

from __future__ import annotations

import json
import sys

import click
import numpy as np

from app.cli import CommandError, Context, InputError, cli
from app.limits import EVALUATE_N, EVALUATE_N_MAX, EVALUATE_N_MIN
from app.settings import DRIFT_SCENARIOS

MAX_SAMPLE = 10_000_000


def write_sample(n: int, seed: int | None, out, drift: str = "none", batch: int = 1,
                 drift_after: int = 100) -> None:
    """Write ``n`` generated records as CSV, timestamps in ISO 8601 (UTC, ``Z``).

    Salaries follow the ground truth of generated batch number ``batch`` under ``drift``.
    """
    from app.data.generator import generate, regime

    records = generate(n, seed=seed, regime=regime(drift, batch, drift_after))
    stamps = records["timestamp"].dt.tz_localize(None).to_numpy().astype("datetime64[ms]")
    records["timestamp"] = np.char.add(np.datetime_as_string(stamps, unit="ms"), "Z")
    records.to_csv(out, index=False, lineterminator="\n")


@cli.command()
@click.argument("n", type=click.IntRange(0, MAX_SAMPLE))
@click.option("--seed", type=int, help="Same seed, same output.")
@click.option("--drift", type=click.Choice(DRIFT_SCENARIOS), default="none", show_default=True,
              help="The drift scenario to draw from (not read from DRIFT: the default is the "
                   "world before any change).")
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True,
              help="Draw as the generator draws its batch number BATCH (from 1).")
@click.option("--drift-after", type=click.IntRange(1), default=100, show_default=True,
              envvar="DRIFT_AFTER", help="The batch number from which the drift starts.")
def sample(n: int, seed: int | None, drift: str, batch: int, drift_after: int) -> None:
    """Print N generated records as CSV (the scheduled generator's distribution).

    With --drift and --batch, as the generator draws batch number BATCH under that scenario.
    """
    try:
        write_sample(n, seed, sys.stdout, drift, batch, drift_after)
    except BrokenPipeError:
        # `python -m app sample 1000 | head` closes the pipe early; that is not an error.
        sys.stderr.close()


def run_evaluation(version: int | None, n: int, wait: float,
                   baseline_version: int | None = None) -> dict:
    """Run ``pipeline.evaluate`` on a worker, or here when no worker answers."""
    from app.redis_server import refusal
    from app.tasks.pipeline import evaluate as evaluate_task
    from worker import app as celery_app

    kwargs = {"version": version, "n": n, "baseline_version": baseline_version}
    if trouble := refusal(celery_app.conf.broker_url):
        click.echo(f"{trouble}; evaluating in this process.", err=True)
    elif not celery_app.control.ping(timeout=1.0):
        click.echo("No Celery worker answered; evaluating in this process.", err=True)
    else:
        return evaluate_task.apply_async(kwargs=kwargs).get(timeout=wait)
    return evaluate_task.apply(kwargs=kwargs, throw=True).get()


@cli.command()
@click.option("--version", type=click.IntRange(1), help="Model version (default: the served one).")
@click.option("--n", type=click.IntRange(EVALUATE_N_MIN, EVALUATE_N_MAX), default=EVALUATE_N,
              show_default=True, help="Fresh records to score on.")
@click.option("--baseline", type=click.IntRange(1),
              help="Also score this version on the same records, side by side in the report.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON.")
@click.option("--wait", type=float, default=300.0, show_default=True,
              help="Seconds to wait for a worker's answer.")
@click.pass_obj
def evaluate(obj: Context, version: int | None, n: int, baseline: int | None, as_json: bool,
             wait: float) -> None:
    """Score a model version on fresh records and print the report."""
    from app import logs, settings

    logs.configure(level="WARNING", debug=settings.load().debug)
    try:
        result = run_evaluation(version, n, wait, baseline)
    except Exception as error:  # every failure reaches the user as one readable line
        raise CommandError(str(error)) from None
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(result["report"])
        # The report lives in PIPELINE_HOME; the web app serves it (--url, PIPELINE_URL).
        click.echo(f"HTML report, with plots: {obj.client.base_url}{result['report_url']}")


def describe_dataset(dataset) -> list[str]:
    """What ``python -m app dataset`` prints of a declaration: target, features, bounds and the
    model's columns."""
    from app.dataset import span
    from app.models.stats import Design

    unit = f" ({dataset.unit})" if dataset.unit else ""
    bounds = dataset.target_range()
    lines = [f"dataset: {dataset.name} ({dataset.source or 'from the running system'})",
             f"target: {dataset.target}{unit}"
             + (f", {bounds}: rows outside are quarantined" if bounds else ", any finite number"),
             "features:"]
    width = max(len(feature.name) for feature in dataset.features)
    for feature in dataset.features:
        if feature.kind == "number":
            extras = [word for word, on in (("whole", feature.whole), ("squared", feature.square))
                      if on]
            kind = f"number {span(feature.min, feature.max)}" + "".join(f", {e}" for e in extras)
        else:
            kind = "category (text; a value never seen still gets an answer)"
        lines.append(f"  {feature.name:<{width}}  {kind}")
    if dataset.keep:
        lines.append(f"kept with each row, not learnt: {', '.join(dataset.keep)}")
    lines.append("the model's columns:")
    lines += [f"  {line}" for line in Design.of(dataset).describe()]
    lines.append("generator: on, it feeds this dataset" if dataset.generated else
                 "generator: off; data comes from /ingest, `python -m app ingest` and the inbox")
    return lines


@cli.command()
@click.argument("file", required=False, metavar="[FILE]")
def dataset(file: str | None) -> None:
    """Check a dataset declaration (default: the one in use, DATASET) and print it.

    Prints the target, the features with their bounds, and the model's columns; a declaration
    that cannot be used gets the one-line error `make run` gives, and exit status 2.
    """
    from app import settings
    from app.dataset import DatasetError, load

    try:
        declared = load(file) if file else settings.load().dataset()
    except DatasetError as error:
        raise InputError(str(error)) from None
    for line in describe_dataset(declared):
        click.echo(line)
