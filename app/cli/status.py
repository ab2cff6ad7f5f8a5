"""``status``: what the running system says of itself (``GET /status``)."""

from __future__ import annotations

import json

import click

from app.cli import Context, cli


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the API's answer as JSON.")
@click.pass_obj
def status(obj: Context, as_json: bool) -> None:
    """Is data arriving? Batches and records so far, versions, queues; stale or not."""
    answer = obj.call("GET", "/status")
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    last = answer["last_batch_at"]
    if last is None:
        arriving = "no batch yet"
    else:
        arriving = f"last batch at {last} ({answer['seconds_since_last_batch']:,.1f} s ago)"
    if answer["stale"]:
        arriving += f": STALE, no batch for over {answer['stale_after_seconds']} s"
    elif answer["stale"] is None:
        arriving += " (no generator: batches come as they are sent)"
    queues = answer["queues"]
    click.echo(f"data:     {arriving}")
    click.echo(f"batches:  {answer['batches']:,} ({answer['records']:,} records, "
               f"{answer['clean']:,} clean, {answer['quarantined']:,} quarantined)")
    click.echo(f"versions: newest {_v(answer['newest_version'])}, served "
               f"{_v(answer['serving_version'])} ({answer.get('serving_mode', '?')})")
    click.echo("queues:   " + (queues["error"] if "error" in queues else ", ".join(
        f"{name} {length:,}" for name, length in queues.items())))


def _v(version) -> str:
    return "none" if version is None else str(version)
