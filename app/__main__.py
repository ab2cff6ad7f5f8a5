"""Command line: ``python -m app sample N [--seed S]`` and ``python -m app evaluate``."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

MAX_SAMPLE = 10_000_000


def sample(n: int, seed: int | None, out) -> None:
    """Write ``n`` generated records as CSV, timestamps in ISO 8601 (UTC, ``Z``)."""
    from app.data.generator import generate

    records = generate(n, seed=seed)
    stamps = records["timestamp"].dt.tz_localize(None).to_numpy().astype("datetime64[ms]")
    records["timestamp"] = np.char.add(np.datetime_as_string(stamps, unit="ms"), "Z")
    records.to_csv(out, index=False, lineterminator="\n")


def evaluate(version: int | None, n: int, wait: float) -> dict:
    """Run ``pipeline.evaluate`` on a worker, or here when no worker answers."""
    from app.redis_server import answers
    from app.tasks.pipeline import evaluate as evaluate_task
    from worker import app as celery_app

    kwargs = {"version": version, "n": n}
    broker = celery_app.conf.broker_url
    if not answers(broker):
        print(f"Redis at {broker} does not answer; evaluating in this process.", file=sys.stderr)
    elif not celery_app.control.ping(timeout=1.0):
        print("No Celery worker answered; evaluating in this process.", file=sys.stderr)
    else:
        return evaluate_task.apply_async(kwargs=kwargs).get(timeout=wait)
    return evaluate_task.apply(kwargs=kwargs, throw=True).get()


def _count(text: str) -> int:
    value = int(text)
    if not 0 <= value <= MAX_SAMPLE:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_SAMPLE:,}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    sample_cmd = commands.add_parser("sample", help="print N generated records as CSV")
    sample_cmd.add_argument("n", type=_count, help="how many records")
    sample_cmd.add_argument("--seed", type=int, help="same seed, same output")
    evaluate_cmd = commands.add_parser("evaluate", help="score a model version and print a report")
    evaluate_cmd.add_argument("--version", type=int, help="model version (default: newest)")
    evaluate_cmd.add_argument("--n", type=int, default=5000, help="fresh records to score on")
    evaluate_cmd.add_argument("--json", action="store_true", help="print the whole result as JSON")
    evaluate_cmd.add_argument("--wait", type=float, default=300.0,
                              help="seconds to wait for a worker's answer")
    args = parser.parse_args(argv)

    if args.command == "sample":
        try:
            sample(args.n, args.seed, sys.stdout)
        except BrokenPipeError:
            # `python -m app sample 1000 | head` closes the pipe early; that is not an error.
            sys.stderr.close()
        return 0

    from app import logs, settings

    logs.configure(level="WARNING", debug=settings.load().debug)
    try:
        result = evaluate(args.version, args.n, args.wait)
    except Exception as error:  # every failure reaches the user as one readable line
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2) if args.json else result["report"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
