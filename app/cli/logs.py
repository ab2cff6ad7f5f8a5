"""``logs [FILE]``: a summary of the pipeline's log, plain lines or ``LOG_JSON=1`` lines.

It reads the lines :mod:`app.logs` writes (the default file is the running system's log, see
:attr:`app.settings.Settings.system_log`), or what ``make run`` printed, saved to a file, and
counts what an operator asks first: events per
task and level, the failures with their reasons and batches, quarantined rows, drift and the
versions made. The facts come from the messages themselves (the same text in both formats),
so a line is understood the same way however it was written.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import click

from app.cli import cli
from app.cli.files import FileProblem

# {time} | {level} | {process} | task={task_id} batch={batch_id} | {module}:{function} | {message}
PLAIN = re.compile(r"^(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) \| (?P<level>\w+)\s*\| "
                   r"(?P<process>.*?) \| task=(?P<task_id>\S+) batch=(?P<batch_id>\S+) \| "
                   r"(?P<source>\S+) \| (?P<message>.*)$")
# What `make run` puts before each line a process printed: its name, padded, and a bar.
RELAYED = re.compile(r"^[A-Za-z0-9_-]+ *\| (?=\d{4}-\d\d-\d\d |\{)")
TASK_END = re.compile(r"^task (?P<task>\S+) ended: outcome=(?P<outcome>\w+) batch=(?P<batch>\S+) "
                      r"version=(?P<version>\S+) duration=(?P<duration>[\d.]+)s"
                      r"(?: error=(?P<error>.*))?$")
NORMALIZED = re.compile(r"^normalized: (?P<clean>\d+) clean, (?P<quarantined>\d+) quarantined")
DRIFT = re.compile(r"^drift detected on batch (?P<batch>\S+): (?P<detail>.*)$")
VERSION = re.compile(r"^version (?P<version>\d+) learnt (?P<rows>[\d,]+) rows"
                     r"(?: of (?P<batches>\d+) batch)?")
CHALLENGER = re.compile(r"^challenger version (?P<version>\d+) \((?P<what>[^)]*)\)")
FORGOT = re.compile(r"^forgot batch (?P<batch>\S+) .*; version (?P<version>\d+) is the model")
MAX_LISTED = 20


@dataclass
class Event:
    time: str
    level: str
    task_id: str
    batch_id: str
    message: str


@dataclass
class Summary:
    lines: int = 0
    events: int = 0
    unreadable: int = 0
    first: str | None = None
    last: str | None = None
    per_task: dict = field(default_factory=lambda: defaultdict(Counter))
    tasks_ended: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)
    quarantined: Counter = field(default_factory=Counter)
    drift: list = field(default_factory=list)
    versions: list = field(default_factory=list)


def parse(line: str) -> Event | None:
    """One event from a plain or a JSON line, as the log file holds it or as ``make run``
    printed it (after its ``worker | `` name column); None for anything else (a traceback's
    lines, the runner's own)."""
    line = RELAYED.sub("", line, count=1)
    if line.startswith("{"):
        try:
            record = json.loads(line)["record"]
            extra = record.get("extra") or {}
            return Event(record["time"]["repr"][:23].replace("T", " "), record["level"]["name"],
                         str(extra.get("task_id", "-")), str(extra.get("batch_id", "-")),
                         record["message"])
        except (ValueError, KeyError, TypeError):
            return None
    found = PLAIN.match(line.rstrip("\n"))
    if found is None:
        return None
    return Event(found["time"], found["level"], found["task_id"], found["batch_id"],
                 found["message"])


def summarise(lines) -> Summary:
    summary = Summary()
    events: list[Event] = []
    names: dict[str, str] = {}
    for line in lines:
        summary.lines += 1
        event = parse(line)
        if event is None:
            summary.unreadable += bool(line.strip())
            continue
        events.append(event)
        summary.first = summary.first or event.time
        summary.last = event.time
        message = event.message
        if found := TASK_END.match(message):
            names[event.task_id] = found["task"]
            summary.tasks_ended[(found["task"], found["outcome"])] += 1
            if found["outcome"] == "failure":
                summary.failures.append((event.time, found["task"], found["batch"],
                                         found["error"] or ""))
        elif found := NORMALIZED.match(message):
            if int(found["quarantined"]):
                summary.quarantined[event.batch_id] += int(found["quarantined"])
        elif found := DRIFT.match(message):
            summary.drift.append((event.time, found["batch"], found["detail"]))
        elif found := VERSION.match(message):
            batches = int(found["batches"] or 1)
            summary.versions.append((event.time, int(found["version"]), (
                f"learnt {found['rows']} rows (batch {event.batch_id})" if batches == 1 else
                f"learnt {found['rows']} rows of {batches} batches (the last: batch "
                f"{event.batch_id})")))
        elif found := CHALLENGER.match(message):
            summary.versions.append((event.time, int(found["version"]),
                                     f"challenger, {found['what']}"))
        elif found := FORGOT.match(message):
            summary.versions.append((event.time, int(found["version"]),
                                     f"forgot the batch (batch {found['batch']})"))
    summary.events = len(events)
    for event in events:
        task = names.get(event.task_id, "(no task)" if event.task_id == "-" else "(task unnamed)")
        summary.per_task[task][event.level] += 1
    return summary


def render(summary: Summary, source: str) -> str:
    out = [f"{source}: {summary.events:,} events in {summary.lines:,} lines"
           + (f", from {summary.first} to {summary.last}" if summary.first else "")]
    out.append("\nevents per task and level:")
    levels = ["DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]
    for task in sorted(summary.per_task):
        counts = summary.per_task[task]
        out.append(f"  {task:<22} " + "  ".join(f"{level} {counts[level]:,}" for level in levels
                                                 if counts[level]))
    if summary.tasks_ended:
        out.append("\ntasks ended:")
        for (task, outcome), count in sorted(summary.tasks_ended.items()):
            out.append(f"  {task:<22} {outcome:<8} {count:,}")
    out.append(f"\nfailures: {len(summary.failures):,}" + _shown(summary.failures, "last"))
    for time, task, batch, error in summary.failures[-MAX_LISTED:]:
        out.append(f"  {time}  {task}  batch {batch}: {error}")
    quarantined = sum(summary.quarantined.values())
    out.append(f"\nquarantined rows: {quarantined:,} in {len(summary.quarantined):,} batches"
               + _shown(summary.quarantined, "largest"))
    for batch, count in summary.quarantined.most_common(MAX_LISTED):
        out.append(f"  batch {batch}: {count:,}")
    out.append(f"\ndrift events: {len(summary.drift):,}" + _shown(summary.drift, "last"))
    for time, batch, detail in summary.drift[-MAX_LISTED:]:
        out.append(f"  {time}  batch {batch}: {detail}")
    out.append(f"\nversions made: {len(summary.versions):,}" + _shown(summary.versions, "last"))
    for time, version, what in summary.versions[-MAX_LISTED:]:
        out.append(f"  {time}  version {version}: {what}")
    if summary.unreadable:
        out.append(f"\n{summary.unreadable:,} lines were not log events (tracebacks, other output)")
    return "\n".join(out)


def _shown(items, which: str) -> str:
    """What a list cut to its MAX_LISTED entries says of it."""
    return f" (the {which} {MAX_LISTED} shown)" if len(items) > MAX_LISTED else ""


@cli.command()
@click.argument("file", required=False, metavar="[FILE]")
def logs(file: str | None) -> None:
    """Summarise the pipeline's log FILE (default: the running system's, LOG_FILE)."""
    from app import settings

    if file is None:
        system_log = settings.load().system_log
        if system_log is None:
            raise FileProblem("no FILE given, and no system log: set LOG_FILE or PIPELINE_HOME "
                              "to a local folder")
        file = str(system_log)
    try:
        with open(file, encoding="utf-8", errors="replace") as handle:
            summary = summarise(handle)
    except OSError as error:
        raise FileProblem(f"{file}: {error.strerror or error}") from None
    click.echo(render(summary, file))
