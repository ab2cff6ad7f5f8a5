"""``predict FILE``: score a file of records through the running system, the stream consumer."""

from __future__ import annotations

import re

import click
import numpy as np
import pandas as pd

from app.cli import CommandError, Context, cli
from app.cli.client import ApiError
from app.cli.files import Progress, RecordFile, RecordWriter
from app.data.files import numbers_from_text
from app.limits import MAX_RECORDS

_RECORD_PATH = re.compile(r"^records\[(\d+)\]\.?")
MAX_SHOWN = 5


@cli.command()
@click.argument("file", metavar="FILE")
@click.option("-o", "--output", "out", metavar="OUT",
              help="Where to write (.csv, .parquet, .jsonl); default: CSV on stdout.")
@click.option("--chunk", type=click.IntRange(1, MAX_RECORDS), default=MAX_RECORDS,
              show_default=True, help="Records per /predict call.")
@click.pass_obj
def predict(obj: Context, file: str, out: str | None, chunk: int) -> None:
    """Score FILE's records (.csv, .parquet, .jsonl; - for CSV on stdin) with the served model.

    Writes every record back with two more columns: the prediction (named as the dataset's
    declaration says, ``predicted_<target>`` by default) and model_version (the version that
    made that prediction: a new one may be served while the file is read). A record the API
    refuses (a number out of its range, a missing category) is written with both empty, and
    stderr says which and why.
    """
    dataset = obj.dataset()
    scored, refused = 0, []
    with RecordFile(file, chunk, required=dataset.feature_names) as records, \
            RecordWriter(out) as writer, Progress(records.length, "scoring") as bar:
        for part in records.chunks():
            frame = part.frame
            sent = numbers_from_text(frame, dataset) if part.raw_format == "text" else frame
            predictions, versions = score(obj, sent[list(dataset.feature_names)],
                                          part.first_row, refused)
            frame[dataset.prediction] = predictions
            frame["model_version"] = pd.array(versions, dtype="Int64")
            writer.write(frame)
            scored += int(np.isfinite(predictions).sum())
            bar.to(part.progress)
    click.echo(f"{scored:,} records scored", err=True)
    if refused:
        shown = "; ".join(f"record {row:,}, {why}" for row, why in refused[:MAX_SHOWN])
        more = f" (and {len(refused) - MAX_SHOWN:,} more)" if len(refused) > MAX_SHOWN else ""
        click.echo(f"{len(refused):,} records could not be scored, left empty: {shown}{more}",
                   err=True)


def score(obj: Context, frame: pd.DataFrame, first_row: int, refused: list):
    """Predictions and versions for ``frame``'s rows (NaN / None for those the API refuses)."""
    predictions = np.full(len(frame), np.nan)
    versions: list[int | None] = [None] * len(frame)
    todo = np.arange(len(frame))
    while len(todo):
        # pandas' writer turns NaN into null and numpy numbers into JSON numbers.
        body = frame.iloc[todo].to_json(orient="records", double_precision=15,
                                        force_ascii=False)
        try:
            answer = obj.client.request("POST", "/predict", raw=b'{"records":' + body.encode() + b"}")
        except ApiError as error:
            bad = _refused_records(error)
            if not bad:
                raise CommandError(f"records {first_row + todo[0]:,} on: {error}") from None
            for index, why in bad.items():
                refused.append((first_row + todo[index], why))
            todo = np.delete(todo, list(bad))
            continue
        predictions[todo] = answer["predictions"]
        for index in todo:
            versions[index] = answer["model_version"]
        break
    return predictions, versions


def _refused_records(error: ApiError) -> dict[int, str]:
    """``{position in the request: why}`` for the records a 400 names (at most 20 a time)."""
    if error.status != 400 or not isinstance(error.body, dict):
        return {}
    bad = {}
    for item in error.body.get("errors") or []:
        found = _RECORD_PATH.match(item.get("field", ""))
        if found:
            field = item["field"][found.end():]
            bad.setdefault(int(found.group(1)), f"{field}: {item.get('message')}" if field
                           else item.get("message"))
    return bad
