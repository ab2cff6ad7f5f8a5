"""The command line, ``python -m app``: one Click group, a family of commands per module.

Commands that act on the running system (status, promote, forget...) reach it through one
:class:`~app.cli.client.ApiClient`, built once per run and handed to them as ``ctx.obj``; the
HTTP API checks and records what they do exactly as it does for any other client. Commands
that work on data (sample, evaluate) use the code directly.

Errors: a wrong usage exits with status 2 and Click's usage line; a failure of the command
itself prints ``error: <one sentence>`` to stderr and exits with status 1.
"""

from __future__ import annotations

import sys

import click

from app.cli.client import ApiClient, ApiError
from app.settings import redact


class CommandError(click.ClickException):
    """A failure of the command (not of its usage): ``error: ...``, exit status 1."""

    def show(self, file=None) -> None:
        click.echo(f"error: {redact(self.format_message())}", err=True, file=file)


class InputError(CommandError):
    """What the user gave cannot be used (a file, a declaration): one line, exit status 2."""

    exit_code = 2


class Context:
    """What every command may need, made on first use."""

    def __init__(self, url: str | None, token: str | None):
        self._url, self._token = url, token
        self._client: ApiClient | None = None

    @property
    def client(self) -> ApiClient:
        if self._client is None:
            self._client = ApiClient.from_environment(self._url, self._token)
        return self._client

    def dataset(self):
        """What the running system learns (``GET /dataset``): the columns files must have.

        When nothing answers, the declaration ``DATASET`` names here: a file can still be
        checked before the command says the system does not answer.
        """
        from app import settings
        from app.dataset import Dataset

        try:
            return Dataset.from_document(self.client.request("GET", "/dataset"))
        except ApiError as error:
            if error.status is not None:
                raise CommandError(str(error)) from None
            return settings.load().dataset()

    def call(self, method: str, path: str, body=None, query=None, raw: bytes | None = None):
        """The API's JSON answer; a :class:`CommandError` with its error sentence otherwise."""
        try:
            return self.client.request(method, path, body, query, raw=raw)
        except ApiError as error:
            raise CommandError(str(error)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--url", envvar="PIPELINE_URL", metavar="URL",
              help="The web app to talk to (default: http://WEB_HOST:WEB_PORT, 127.0.0.1:5000).")
@click.option("--token", envvar="API_TOKEN", metavar="TOKEN", show_envvar=True,
              help="Bearer token for the routes that change state.")
@click.pass_context
def cli(ctx: click.Context, url: str | None, token: str | None) -> None:
    """The stream pipeline's command line: data, models and the running system."""
    ctx.obj = Context(url, token)


def main(argv: list[str] | None = None) -> int:
    # Each module adds its commands to the group.
    from app.cli import batches, data, lifecycle, logs, predict, status  # noqa: F401

    try:
        cli.main(args=argv, prog_name="python -m app", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.exceptions.Exit as done:
        return done.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
