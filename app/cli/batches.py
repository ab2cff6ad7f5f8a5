"""Commands on batches, through the running system: ``ingest``, ``batches``, ``forget``."""

from __future__ import annotations

import json
import time
from collections import deque

import click

from app.cli import CommandError, Context, cli
from app.cli.client import ApiError
from app.cli.files import FileProblem, Progress, RecordFile, body
from app.settings import MAX_BATCH_SIZE
from app.data.files import FileProblem as BrokenFile
from app.limits import MAX_RECORDS

SETTLED_POLL = 0.25


def _default_batch_size() -> int:
    from app import settings

    return settings.load().batch_size


def describe(batch: dict) -> str:
    """One line: the batch, its counts, and why rows were quarantined or it learnt nothing."""
    line = (f"batch {batch['batch_id']}: {batch['rows']:,} rows, {batch['clean'] or 0:,} clean, "
            f"{batch['quarantined'] or 0:,} quarantined")
    reasons = batch.get("reasons") or {}
    if reasons:
        line += " (" + "; ".join(f"{reason}: {count:,}" for reason, count in
                                 list(reasons.items())[:3]) + ")"
    if batch.get("unknown_fields"):
        # R's write.csv heads its row names with an empty name: say so rather than print ", ".
        line += "; unknown fields ignored: " + ", ".join(
            name if name.strip() else "(a column with no name)" for name in batch["unknown_fields"])
    if batch.get("status") in ("empty", "failed"):
        line += f"; no version learnt it: {batch.get('failure')}"
    return line


class Settled:
    """Batches sent and not yet reported: each is printed once the worker has checked it."""

    def __init__(self, obj: Context):
        self.obj = obj
        self.waiting: deque[str] = deque()

    def report(self, deadline: float | None) -> None:
        """Print every checked batch at the head of the queue; with a deadline, wait for all."""
        while self.waiting:
            batch = self.obj.call("GET", f"/batches/{self.waiting[0]}")
            if batch["status"] == "received":
                if deadline is None:
                    return
                if time.monotonic() > deadline:
                    for batch_id in self.waiting:
                        click.echo(f"batch {batch_id}: sent, not checked yet (see "
                                   f"`python -m app batches`)")
                    self.waiting.clear()
                    return
                time.sleep(SETTLED_POLL)
                continue
            click.echo(describe(batch))
            self.waiting.popleft()


class ThroughTheApi:
    """Each chunk a ``POST /ingest``: what any client that reaches the web app can do."""

    limit = MAX_RECORDS

    def __init__(self, obj: Context, dataset):
        self.obj, self.dataset = obj, dataset

    def describe(self) -> str:
        return (f"sending batches to {self.obj.client.base_url}/ingest (the web app takes "
                f"{self.limit:,} records a request)")

    def send(self, chunk) -> str:
        return self.obj.client.request("POST", "/ingest", raw=body(chunk, self.dataset))["batch_id"]


class IntoTheStore:
    """Each chunk written to the system's own lake and ledger, and sent on through its own
    Redis, as the inbox does: no JSON, no HTTP, batches as large as the machine takes."""

    limit = MAX_BATCH_SIZE

    def __init__(self, environment):
        # The lake and the ledger alone, not a whole Home: the registry's model code would
        # cost the command a second of imports before its first row.
        from app.data.lake import DataLake
        from app.data.ledger import Ledger
        from worker import app as celery_app

        self.celery, self.storage = celery_app, environment.storage()
        self.lake, self.ledger = DataLake(self.storage), Ledger(self.storage)

    def describe(self) -> str:
        from app.settings import redact

        return (f"writing batches to the system's store at {redact(self.storage.url)} directly "
                "(it is reachable from here)")

    def send(self, chunk) -> str:
        from kombu.exceptions import OperationalError

        from app.data.batches import discard_batch, receive_chunk
        from app.data.generator import new_batch_id
        from app.queueing import check_and_learn

        batch_id = new_batch_id()
        receive_chunk(self.lake, self.ledger, batch_id, chunk, source="ingest")
        try:
            check_and_learn(self.celery, batch_id)
        except (OperationalError, OSError) as error:
            discard_batch(self.lake, self.ledger, batch_id)
            raise ApiError(f"the task queue (Redis) cannot be reached, so the batch was not "
                           f"kept: {type(error).__name__}") from None
        return batch_id


def way_in(obj: Context, dataset):
    """Straight into the store when this machine reaches the system's own store and Redis
    (the fingerprints ``GET /status`` gives match this environment's, and both answer);
    through the web app otherwise."""
    from app import redis_server, settings, storage

    environment = settings.load()
    try:
        theirs = obj.client.request("GET", "/status").get("fingerprints") or {}
    except ApiError:
        return ThroughTheApi(obj, dataset)  # which will say what is wrong
    ours = {"home": settings.fingerprint(environment.pipeline_home),
            "redis": settings.fingerprint(environment.redis_url)}
    if (theirs == ours and storage.refusal(environment.pipeline_home) is None
            and redis_server.answers(environment.redis_url)):
        return IntoTheStore(environment)
    return ThroughTheApi(obj, dataset)


@cli.command()
@click.argument("file", metavar="FILE")
@click.option("--batch-size", type=click.IntRange(1, MAX_BATCH_SIZE), default=None,
              help=f"Records per batch (default: BATCH_SIZE, 1000; at most {MAX_RECORDS:,} "
                   "through the web app).")
@click.option("--wait", type=float, default=120.0, show_default=True,
              help="Seconds to wait, at the end, for the last batches to be checked.")
@click.pass_obj
def ingest(obj: Context, file: str, batch_size: int | None, wait: float) -> None:
    """Send labelled records from FILE (.csv, .parquet, .jsonl; - for CSV on stdin) as batches.

    Each batch goes through normalize and train as a generated one does; rows that fail the
    checks are quarantined, not refused. Prints each batch id with its clean and quarantined
    counts. A failure midway leaves the batches sent before it whole, and none half-sent.

    When this machine reaches the system's own store (PIPELINE_HOME) and Redis (REDIS_URL),
    the batches are written there directly; otherwise they go through the web app's /ingest.
    The first line says which.
    """
    # The columns the running system learns: a file whose header lacks one is refused up front.
    dataset = obj.dataset()
    sender = way_in(obj, dataset)
    size = min(batch_size or _default_batch_size(), sender.limit)
    with RecordFile(file, size, required=tuple(dataset.learnt_columns)) as records:
        click.echo(f"{file}: {sender.describe()}, {size:,} records each", err=True)
        settled = Settled(obj)
        sent: list[str] = []
        rows = 0
        with Progress(records.length, "ingesting") as bar:
            try:
                for chunk in records.chunks():
                    try:
                        batch_id = sender.send(chunk)
                    except ApiError as error:
                        problem = _midway(file, chunk.first_row, sent, rows,
                                          f"were not ingested: {error}")
                        break
                    if chunk.malformed:
                        click.echo(f"{file}: {len(chunk.malformed):,} malformed line(s) "
                                   f"skipped, not sent: {chunk.malformed[0]}", err=True)
                    sent.append(batch_id)
                    settled.waiting.append(batch_id)
                    rows += len(chunk)
                    bar.to(chunk.progress)
                    settled.report(deadline=None)
                else:
                    problem = None
            except BrokenFile as error:  # a malformed row further on
                problem = _midway(file, rows + 1, sent, rows,
                                  f"could not be read: {str(error).strip()}")
    # The batches sent are whole whatever happened next: say what became of each.
    settled.report(deadline=time.monotonic() + wait)
    if problem:
        raise CommandError(problem)
    if not sent:
        raise FileProblem(f"{file}: the file holds no record")
    click.echo(f"{rows:,} records sent in {len(sent):,} batch{'es' if len(sent) > 1 else ''}")


def _midway(file: str, row: int, sent: list[str], rows: int, what: str) -> str:
    done = (f"; the {len(sent):,} batch(es) before it ({rows:,} records, the last "
            f"{sent[-1]}) were ingested whole" if sent else "; nothing was ingested")
    return f"{file}: the records from row {row:,} on {what}{done}"


@cli.command()
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the API's answer as JSON.")
@click.pass_obj
def batches(obj: Context, limit: int, as_json: bool) -> None:
    """List the newest batches: source, counts, status and the version that learnt each."""
    answer = obj.call("GET", "/batches", query={"limit": limit})
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    click.echo(f"{'batch':<36} {'source':<9} {'created_at':<29} {'status':<10} {'rows':>7} "
               f"{'clean':>7} {'quar.':>6} {'version':>7}")
    for batch in answer["batches"]:
        click.echo(f"{batch['batch_id']:<36} {batch['source']:<9} {batch['created_at']:<29} "
                   f"{batch['status']:<10} {_n(batch['rows']):>7} {_n(batch['clean']):>7} "
                   f"{_n(batch['quarantined']):>6} {_n(batch['version']):>7}")
    click.echo(f"{len(answer['batches'])} of {answer['total']:,} batches")


def _n(value) -> str:
    return "-" if value is None else f"{value:,}"


@cli.command()
@click.argument("batch_id")
@click.option("--reason", required=True, help="Why (kept in the audit trail).")
@click.option("--wait", type=float, default=60.0, show_default=True,
              help="Seconds to wait for the version without the batch (0: do not wait).")
@click.pass_obj
def forget(obj: Context, batch_id: str, reason: str, wait: float) -> None:
    """Remove BATCH_ID from the model (a new version exactly without it) and its rows."""
    task_id = obj.call("POST", f"/batches/{batch_id}/forget", {"reason": reason})["task_id"]
    click.echo(f"forgetting batch {batch_id}: task {task_id}")
    deadline = time.monotonic() + wait
    while wait and time.monotonic() < deadline:
        task = obj.call("GET", f"/tasks/{task_id}")
        if task["state"] == "SUCCESS":
            version = task["result"]["version"]
            click.echo(f"forgotten; version {version} is the model without it" if version else
                       "forgotten; no version had learnt it")
            return
        if task["state"] == "FAILURE":
            raise CommandError(f"forgetting batch {batch_id} failed: {task['result']}")
        time.sleep(SETTLED_POLL)
    if wait:
        click.echo(f"still running after {wait:g} s: `python -m app batches` will show it")


@cli.command()
@click.argument("file", metavar="FILE")
@click.pass_obj
def feedback(obj: Context, file: str) -> None:
    """Send labels for answers already given: FILE (.csv or .jsonl; - for CSV on stdin) has a
    prediction_id (from /predict, with LOG_PREDICTIONS=1) and a value on each line.

    Prints how many labels matched an answer kept (and are learnt), how many ids were unknown
    (never given, or older than KEEP_PREDICTIONS_DAYS) and how many were labelled already.
    """
    import pandas as pd

    totals = {"matched": 0, "unknown": 0, "repeated": 0}
    batches = []
    with RecordFile(file, MAX_RECORDS, required=("prediction_id", "value")) as records:
        for chunk in records.chunks():
            frame = chunk.frame[["prediction_id", "value"]]
            values = pd.to_numeric(frame["value"], errors="coerce")
            labels = [{"prediction_id": str(i), "value": v if pd.notna(v) else raw}
                      for i, v, raw in zip(frame["prediction_id"], values, frame["value"])]
            answer = obj.call("POST", "/feedback", {"labels": labels})
            for name in totals:
                totals[name] += answer.get(name, 0)
            if answer.get("batch_id"):
                batches.append(answer["batch_id"])
            if answer.get("note"):
                click.echo(answer["note"], err=True)
    click.echo(f"{totals['matched']:,} matched, {totals['unknown']:,} unknown, "
               f"{totals['repeated']:,} labelled already; "
               + (f"learnt as batch(es) {', '.join(batches)}" if batches else "nothing to learn"))
