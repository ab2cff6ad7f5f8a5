"""Commands on what is served, through the running system's API: ``serving``, ``promote``,
``rollback``, ``follow`` and ``audit``.

Each change goes through ``PUT /serving`` or ``POST /serving/rollback``, so the web app checks
it, decides it (in :mod:`app.lifecycle.serving`) and records it in the audit trail with the
token's name, exactly as for any other client.
"""

from __future__ import annotations

import json

import click

from app.cli import Context, cli

REASON = click.option("--reason", required=True, metavar="TEXT",
                      help="Why (required): it goes into the audit trail.")


def describe(state: dict) -> str:
    """One line about the serving state, as the API gives it."""
    if state["version"] is None:
        line = f"nothing is served yet ({state['mode']} mode)"
    elif state["mode"] == "pinned":
        line = f"serving version {state['version']}, pinned"
    else:
        line = f"serving version {state['version']}, following the newest promoted version"
    if state.get("by"):
        line += f" (by {state['by']} at {state['since']})"
    line += f": {state['reason']}"
    if state.get("forgotten_batches"):
        line += (f"\nwarning: version {state['version']} learnt from forgotten batch(es) "
                 f"{', '.join(state['forgotten_batches'])}")
    return line


@cli.command("serving")
@click.pass_obj
def show_serving(ctx: Context) -> None:
    """Show which version is served, in which mode, and why."""
    click.echo(describe(ctx.call("GET", "/serving")))


@cli.command()
@click.argument("version", type=click.IntRange(1))
@REASON
@click.pass_obj
def promote(ctx: Context, version: int, reason: str) -> None:
    """Serve VERSION (pin it) until told otherwise, whatever versions arrive meanwhile."""
    click.echo(describe(ctx.call("PUT", "/serving", {"version": version, "reason": reason})))


@cli.command()
@click.option("--to", "to", type=click.IntRange(1), metavar="V",
              help="The version to serve (default: the newest promoted one before the served one).")
@REASON
@click.pass_obj
def rollback(ctx: Context, to: int | None, reason: str) -> None:
    """Serve the version before the one served now (or --to V), pinned."""
    body = {"reason": reason} if to is None else {"reason": reason, "to": to}
    click.echo(describe(ctx.call("POST", "/serving/rollback", body)))


@cli.command()
@REASON
@click.pass_obj
def follow(ctx: Context, reason: str) -> None:
    """Serve the newest version the promotion gate lets through again (undo a pin)."""
    click.echo(describe(ctx.call("PUT", "/serving", {"version": "latest", "reason": reason})))


def _versions(event: dict) -> str:
    before, after = event.get("from_version"), event.get("to_version")
    return f"{'-' if before is None else before} -> {'-' if after is None else after}"


@cli.command()
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True,
              help="How many events.")
@click.option("--before", type=click.IntRange(1), metavar="ID",
              help="Events older than this id (the last line's id continues a listing).")
@click.option("--action", help="Only this kind: pin, follow, rollback, refused_promotion, "
              "forget, drift...")
@click.option("--json", "as_json", is_flag=True, help="Print the API's answer as JSON.")
@click.pass_obj
def audit(ctx: Context, limit: int, before: int | None, action: str | None,
          as_json: bool) -> None:
    """The audit trail, newest first: who changed what is served, or what the model learnt, and why."""
    page = ctx.call("GET", "/audit", query={"limit": limit, "before": before, "action": action})
    if as_json:
        click.echo(json.dumps(page, indent=2))
        return
    for event in page["events"]:
        batch = f" batch {event['batch_id']}" if event.get("batch_id") else ""
        click.echo(f"#{event['id']:<5} {event['at']}  {event['action']:<17} {_versions(event):<12} "
                   f"by {event['by']}{batch}: {event['reason']}")
    if page.get("next_before"):
        click.echo(f"(older: --before {page['next_before']})")
