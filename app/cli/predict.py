"""``predict FILE``: score a file of records through the running system, the stream consumer."""

from __future__ import annotations

import re

import click

from app.cli import CommandError, Context, cli
from app.cli.client import ApiError
from app.cli.files import Progress, RecordFile, RecordWriter

# The most records one /predict call takes.
MAX_PER_CALL = 10_000
FEATURES = ("idade", "cidade", "cargo")
_RECORD_PATH = re.compile(r"^records\[(\d+)\]\.?")


@cli.command()
@click.argument("file", metavar="FILE")
@click.option("-o", "--output", "out", metavar="OUT",
              help="Where to write (.csv, .parquet, .jsonl); default: CSV on stdout.")
@click.option("--chunk", type=click.IntRange(1, MAX_PER_CALL), default=MAX_PER_CALL,
              show_default=True, help="Records per /predict call.")
@click.pass_obj
def predict(obj: Context, file: str, out: str | None, chunk: int) -> None:
    """Score FILE's records (.csv, .parquet, .jsonl; - for CSV on stdin) with the served model.

    Writes every record back with two more columns: salario_previsto and model_version (the
    version that made that prediction: a new one may be served while the file is read).
    """
    scored = 0
    with RecordFile(file, chunk, required=FEATURES) as records, RecordWriter(out) as writer, \
            Progress(records.length, "scoring") as bar:
        for part in records.chunks():
            # pandas' writer turns NaN into null and numpy numbers into JSON numbers.
            body = part.frame[list(FEATURES)].to_json(orient="records", double_precision=15,
                                                      force_ascii=False)
            try:
                answer = obj.client.request("POST", "/predict",
                                            raw=b'{"records":' + body.encode() + b"}")
            except ApiError as error:
                raise CommandError(_located(file, part.first_row, error, scored)) from None
            part.frame["salario_previsto"] = answer["predictions"]
            part.frame["model_version"] = answer["model_version"]
            writer.write(part.frame)
            scored += len(part.frame)
            bar.to(part.progress)
    click.echo(f"{scored:,} records scored", err=True)


def _located(file: str, first_row: int, error: ApiError, scored: int) -> str:
    """The API's sentence, with ``records[i]`` turned into the row of the file."""
    message = str(error)
    found = _RECORD_PATH.match(message)
    if found:
        message = f"record {first_row + int(found.group(1)):,}, " + message[found.end():]
    return f"{file}: {message} ({scored:,} records were scored and written before it)"
