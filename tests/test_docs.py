"""The docs (README.md and docs/*.md) name only what the code has, and the code has nothing they
leave out: settings, commands and their options, HTTP routes, make targets, links and pictures.

Each check reads the docs as text and the code as the code itself (the settings module's
source, the Click group, the Flask app's URL map and ``/openapi.json``, the Makefile), so a
setting, command or route added without docs fails here, and so does a doc that names one
the code does not have.
"""

from __future__ import annotations

import ast
import re
import unicodedata
from functools import cache
from pathlib import Path

import pytest

from app import settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
# Environment variables read through the settings module (helpers named here take the
# variable's name first).
ENV_READERS = {"get", "getenv", "_positive_int", "_flag", "_choice"}


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def where(path: Path) -> str:
    return str(path.relative_to(ROOT))


# -- settings ------------------------------------------------------------------------------

def settings_tables() -> list[tuple[Path, list[str]]]:
    """The first column of every markdown table whose header starts with ``variable``: the
    names of each settings table, in order, with the file it is in."""
    tables = []
    for path in DOCS:
        current = None
        for line in text(path).splitlines():
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not line.lstrip().startswith("|"):
                current = None
            elif current is None and cells[0].lower() == "variable":
                current = []
                tables.append((path, current))
            elif current is not None and not set(cells[0]) <= set("-: "):
                current.extend(re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0]))
    return tables


def documented_settings() -> set[str]:
    return {name for _, names in settings_tables() for name in names}


@cache
def settings_module_variables() -> set[str]:
    """Every environment variable app/settings.py reads: the first argument of
    ``os.environ.get``, ``os.getenv`` and the module's own readers, and ``os.environ[...]``."""
    tree = ast.parse(Path(settings.__file__).read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ENV_READERS and isinstance(node.args[0].value, str) \
                    and ENV_NAME.match(node.args[0].value):
                found.add(node.args[0].value)
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
                and "environ" in ast.unparse(node.value) and isinstance(node.slice.value, str):
            found.add(node.slice.value)
    return found


def procfile_variables() -> set[str]:
    """The variables the Procfile's commands take (``${WEB_PORT:-5000}``)."""
    commands = [line for line in text(ROOT / "Procfile").splitlines() if not line.startswith("#")]
    return set(re.findall(r"\$\{(\w+)", "\n".join(commands)))


def cli_variables() -> set[str]:
    group = cli_group()
    params = [*group.params, *(param for command in group.commands.values() for param in command.params)]
    return {param.envvar for param in params if isinstance(param.envvar, str)}


def flower_variables() -> set[str]:
    """What Flower itself reads: ``FLOWER_<option>`` for each of its options, and the variables
    its code names."""
    import flower
    from flower import options  # noqa: F401  (defines them)
    from tornado.options import options as defined

    source = "\n".join(text(path) for path in Path(flower.__file__).parent.rglob("*.py"))
    return ({"FLOWER_" + name.upper().replace("-", "_") for name in defined._options}
            | set(re.findall(r"\bFLOWER_[A-Z_]+", source)))


def system_variables() -> set[str]:
    """Every variable the system takes: what the settings module reads or masks as a secret,
    what the processes' commands and docker-compose.yml pass on, the command line's, and
    Flower's own."""
    compose = text(ROOT / "docker-compose.yml")
    return (settings_module_variables() | set(settings.SECRET_URL_VARIABLES)
            | set(settings.SECRET_VARIABLES) | procfile_variables() | cli_variables()
            | set(re.findall(r"\$\{(\w+)", compose))
            | set(re.findall(r"^\s+([A-Z][A-Z0-9_]+):", compose, re.MULTILINE)) | flower_variables())


def test_the_docs_have_a_settings_table():
    assert documented_settings(), "no markdown table with a `variable` column in the docs"


def test_every_setting_the_settings_module_reads_is_documented():
    missing = (settings_module_variables() | procfile_variables() | cli_variables()) - documented_settings()
    assert not missing, (f"read by the code but in no settings table of the docs: {sorted(missing)}; "
                         "add a row to the table in docs/operating.md")


def test_every_documented_setting_is_read_by_the_code():
    unknown = documented_settings() - system_variables()
    assert not unknown, f"in a settings table but read nowhere in the code: {sorted(unknown)}"


def test_no_settings_table_names_a_variable_twice():
    for path, names in settings_tables():
        twice = sorted({name for name in names if names.count(name) > 1})
        assert not twice, f"{where(path)}: a settings table lists {twice} more than once"


def repository_text() -> str:
    """The repository's code and configuration (not its markdown): where a name shown in
    the docs must appear at least once."""
    parts = []
    for pattern in ("app/**/*.py", "tests/**/*.py", "bench/*.py", "*.py", "*.yml", "deploy/**/*",
                    "Procfile", "Makefile", "Dockerfile"):
        parts += [text(path) for path in ROOT.glob(pattern) if path.is_file() and path.suffix != ".md"
                  and ".venv" not in path.parts]
    return "\n".join(parts)


def test_every_variable_set_in_an_example_exists():
    """``NAME=value`` in the docs (a command line, an env file) names a documented setting, or
    one that the code, its tests or its configuration use."""
    known = documented_settings() | system_variables()
    everything = repository_text()
    for path in DOCS:
        for name in sorted(set(re.findall(r"(?<![\w$./-])([A-Z][A-Z0-9]*_[A-Z0-9_]+|[A-Z]{4,})=", text(path)))):
            assert name in known or re.search(rf"\b{name}\b", everything), \
                f"{where(path)} sets {name}=..., which nothing reads"


# -- the command line ----------------------------------------------------------------------

@cache
def cli_group():
    from app.cli import batches, cli, data, lifecycle, logs, predict, status  # noqa: F401

    return cli


# `python -m app ...` up to the end of its inline code span, its line, or a shell separator.
CLI_USE = re.compile(r"python -m app[ \t]+([^`\n|;&#]*)")


def cli_uses() -> list[tuple[Path, str, list[str]]]:
    """Each ``python -m app <command> ...`` the docs show: the file, the command and the
    options written after it."""
    group = cli_group()
    global_options = {opt: param.is_flag for param in group.params for opt in param.opts}
    uses = []
    for path in DOCS:
        for found in CLI_USE.finditer(text(path)):
            words = found.group(1).split()
            while words and words[0].split("=")[0] in global_options:
                option = words.pop(0)
                if "=" not in option and not global_options[option] and words:
                    words.pop(0)
            if words and not words[0].startswith(("-", "[", "<", "$")):
                options = [re.sub(r"[=\]\[,.:)]+.*$", "", word.lstrip("[("))
                           for word in words[1:] if re.match(r"\[?\(?-", word)]
                uses.append((path, words[0].rstrip(",.:)"), [option for option in options if option]))
    return uses


def test_the_docs_show_the_command_line():
    assert cli_uses()


def test_every_command_shown_exists_with_its_options():
    group = cli_group()
    for path, command, options in cli_uses():
        assert command in group.commands, \
            f"{where(path)} shows `python -m app {command}`, which is not a command ({sorted(group.commands)})"
        known = {opt for param in group.commands[command].params for opt in param.opts} | {"-h", "--help"}
        unknown = sorted(set(options) - known)
        assert not unknown, f"{where(path)}: `python -m app {command}` has no option {unknown}"


def test_every_command_and_option_is_documented():
    shown = {}
    for _, command, options in cli_uses():
        shown.setdefault(command, set()).update(options)
    for name, command in cli_group().commands.items():
        assert name in shown, f"`python -m app {name}` is shown nowhere in the docs"
        missing = [param.opts[-1] for param in command.params
                   if param.param_type_name == "option" and not set(param.opts) & shown[name]]
        assert not missing, f"`python -m app {name}`: the docs never show its option(s) {missing}"


# -- HTTP routes ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def web_app(tmp_path_factory):
    """The app factory as the web tests use it, over an empty home of its own."""
    from app.web import create_app

    home = tmp_path_factory.mktemp("docs-home")
    return create_app({"TESTING": True, "CONFIGURE_LOGGING": False, "PIPELINE_HOME": str(home),
                       "MODEL_NOTICES": False})


def app_routes(web_app) -> set[tuple[str, str]]:
    """Every (method, rule) the app answers, from its URL map, Flask's static files aside."""
    return {(method, rule.rule) for rule in web_app.url_map.iter_rules() if rule.endpoint != "static"
            for method in rule.methods - {"HEAD", "OPTIONS"}}


ROUTE_SHOWN = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE)\s+(/[^\s`'\"*\[?),;]*)")
CURL_PATH = re.compile(r"curl[^\n`]*?(?:\$PIPELINE_URL|(?:localhost|127\.0\.0\.1):5000)(/[^\s'\"`?]*)")


def shown_routes() -> list[tuple[Path, str, str]]:
    shown = []
    for path in DOCS:
        body = text(path)
        shown += [(path, method, route.rstrip(".:")) for method, route in ROUTE_SHOWN.findall(body)]
        shown += [(path, "", route.rstrip(".:")) for route in CURL_PATH.findall(body)]
    return shown


def matched_rule(web_app, method: str, route: str) -> str | None:
    """The app's rule for ``method route``; for a curl command (no method), for any method."""
    from werkzeug.exceptions import HTTPException

    adapter = web_app.url_map.bind("localhost")
    for candidate in [method] if method else ["GET", "POST", "PUT"]:
        try:
            rule, _ = adapter.match(route, method=candidate, return_rule=True)
        except HTTPException:
            continue
        return rule.rule
    return None


def test_every_route_shown_exists(web_app):
    assert shown_routes()
    for path, method, route in shown_routes():
        assert matched_rule(web_app, method, route), \
            f"{where(path)} shows `{method or 'curl'} {route}`, which the app does not answer"


def test_every_route_of_the_app_is_documented(web_app):
    documented = {(method, matched_rule(web_app, method, route))
                  for _, method, route in shown_routes() if method}
    missing = sorted(app_routes(web_app) - documented)
    assert not missing, "routes of the app that no doc shows as `METHOD /path`: " + ", ".join(
        f"{method} {rule}" for method, rule in missing)


def test_openapi_lists_the_routes_the_docs_check(web_app):
    """The URL map above is what ``GET /openapi.json`` describes: the same (method, path)s."""
    document = web_app.test_client().get("/openapi.json").get_json()
    described = {(method.upper(), re.sub(r"\{(\w+)\}", r"<\1>", route))
                 for route, operations in document["paths"].items() for method in operations}
    assert described == app_routes(web_app)


# -- make targets, links, pictures ---------------------------------------------------------

def make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w.-]*):(?!=)", text(ROOT / "Makefile"), re.MULTILINE))


def code_of(path: Path) -> list[str]:
    """The lines of the fenced code blocks and the inline code spans of a page."""
    body = text(path)
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", body, re.DOTALL | re.MULTILINE)
    prose = re.sub(r"^```.*?^```", "", body, flags=re.DOTALL | re.MULTILINE)
    return [line for block in blocks for line in block.splitlines()] + re.findall(r"`([^`\n]+)`", prose)


# `make run` at the start of a command: a line or span, after a prompt or a separator, or after
# variables set for it (`DATASET=x.toml make run`).
MAKE_USE = re.compile(r"(?:^|\$ |[;&|(]\s*)(?:[A-Z_][A-Z0-9_]*=\S*\s+)*make ([a-z][\w-]*)")


def make_uses(path: Path) -> list[str]:
    return [target for line in code_of(path) for target in MAKE_USE.findall(line.strip())]


def test_every_make_target_shown_exists():
    targets = make_targets()
    for path in DOCS:
        for target in make_uses(path):
            assert target in targets, f"{where(path)} shows `make {target}`, not a target of the Makefile"


def test_every_make_target_is_documented():
    phony = set(re.search(r"^\.PHONY:(.*)$", text(ROOT / "Makefile"), re.MULTILINE).group(1).split())
    shown = {target for path in DOCS for target in make_uses(path)}
    missing = sorted(phony - shown - {"$(VENV)"})
    assert not missing, f"make targets the docs never show: {missing}"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, letters, digits, ``_``, ``-``, spaces as ``-``."""
    heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    kept = "".join(c for c in heading.replace("`", "").replace("*", "")
                   if c in " -_" or unicodedata.category(c)[0] in "LMN")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    body = re.sub(r"```.*?```", "", text(path), flags=re.DOTALL)
    return {slug(heading) for heading in re.findall(r"^#+\s+(.*)$", body, re.MULTILINE)}


def test_every_relative_link_resolves():
    for path in DOCS:
        body = re.sub(r"```.*?```", "", text(path), flags=re.DOTALL)
        for target in re.findall(r"\]\(([^)\s]+)\)", body):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            resolved = (path.parent / file).resolve() if file else path
            assert resolved.exists(), f"{where(path)} links to {target}, which does not exist"
            if anchor and resolved.suffix == ".md":
                assert anchor in anchors(resolved), \
                    f"{where(path)} links to {target}: {where(resolved)} has no heading #{anchor}"


def test_every_picture_in_docs_is_shown():
    linked = {(path.parent / target).resolve() for path in DOCS
              for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text(path))}
    unused = sorted(where(picture) for picture in (ROOT / "docs").glob("*.png")
                    if picture.resolve() not in linked)
    assert not unused, f"pictures in docs/ that no page shows: {unused}"
