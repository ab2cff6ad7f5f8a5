"""`python -m app ingest / batches / forget / status / predict`, run as a user runs them,
against the Procfile's web server and a real worker over the session's pipeline home."""

import csv
import io
import json

import pandas as pd
import pytest

from app.data.generator import generate
from tests.test_cli import run_cli

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("celery_worker")]


@pytest.fixture(scope="module")
def web_url(pipeline_home, tmp_path_factory):
    """The web server over the worker's home, which has at least one model."""
    from app.lifecycle.home import Home
    from app.runner import web_server
    from tests.web.conftest import save, trained

    registry = Home(str(pipeline_home)).registry
    if registry.latest_version() is None:
        save(registry, trained(), batch_id="cli-tests")
    with web_server(pipeline_home, tmp_path_factory.mktemp("web") / "gunicorn.log") as url:
        yield url


def cli(url, *args, **kwargs):
    return run_cli("--url", url, *args, **kwargs)


def sample_csv(path, n, seed=21, bad=()):
    frame = generate(n, seed=seed)
    frame["timestamp"] = frame["timestamp"].map(lambda t: t.isoformat())
    frame = frame.astype({"idade": object})
    for row in bad:
        frame.loc[row, "idade"] = "velho"
    frame.to_csv(path, index=False)
    return frame


def test_ingest_a_csv_prints_each_batch_with_its_counts(web_url, tmp_path, session_home):
    path = tmp_path / "people.csv"
    sample_csv(path, 250, bad=(3, 140))
    result = cli(web_url, "ingest", str(path), "--batch-size", "100")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("batch ")]
    assert len(lines) == 3
    assert "100 rows, 99 clean, 1 quarantined (idade is not a number: 1)" in lines[0]
    assert "100 rows, 99 clean, 1 quarantined" in lines[1]
    assert "50 rows, 50 clean, 0 quarantined" in lines[2]
    assert "250 records sent in 3 batches" in result.stdout
    batch_id = lines[0].split()[1].rstrip(":")
    batch = session_home.ledger.get(batch_id)
    assert batch["source"] == "ingest" and batch["quarantined"] == 1

    listed = cli(web_url, "batches", "--limit", "3")
    assert listed.returncode == 0 and batch_id in listed.stdout
    status = cli(web_url, "status")
    assert status.returncode == 0, status.stderr
    assert "batches:" in status.stdout and "quarantined" in status.stdout
    answer = json.loads(cli(web_url, "status", "--json").stdout)
    assert answer["records"] >= 250 and answer["quarantined"] >= 2


@pytest.mark.parametrize("kind", ["jsonl", "parquet", "stdin"])
def test_ingest_reads_json_lines_parquet_and_csv_on_stdin(web_url, tmp_path, kind):
    frame = generate(30, seed=22).drop(columns=["geracao_id"])
    if kind == "jsonl":
        path = tmp_path / "people.jsonl"
        frame.to_json(path, orient="records", lines=True, date_format="iso")
        result = cli(web_url, "ingest", str(path))
    elif kind == "parquet":
        path = tmp_path / "people.parquet"
        frame.to_parquet(path)
        result = cli(web_url, "ingest", str(path))
    else:
        result = run_cli("--url", web_url, "ingest", "-", input_text=frame.to_csv(index=False))
    assert result.returncode == 0, result.stderr
    assert "30 rows, 30 clean, 0 quarantined" in result.stdout


@pytest.mark.parametrize("name, content, error", [
    ("people.xlsx", "idade\n1\n", "unknown extension '.xlsx'"),
    ("people.csv", "", "cannot read it as csv"),
    ("people.csv", "nome,cidade\nAna,Recife\n", "the header has no idade, cargo, salario"),
    ("people.jsonl", "[1, 2]\n", "line 1 is not a JSON object"),
    ("people.parquet", "not parquet", "cannot read it as parquet"),
])
def test_a_file_that_cannot_be_read_is_one_line_and_status_2(tmp_path, name, content, error):
    path = tmp_path / name
    path.write_text(content)
    result = run_cli("--url", "http://127.0.0.1:9", "ingest", str(path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and error in result.stderr, result.stderr


def test_ingest_failing_midway_keeps_the_batches_before_whole(web_url, tmp_path, session_home):
    path = tmp_path / "broken.jsonl"
    sample_csv(tmp_path / "sample.csv", 120)
    lines = pd.read_csv(tmp_path / "sample.csv").to_json(orient="records", lines=True).splitlines()
    lines.insert(110, '{"idade": 30, "cidade": ')  # a line that is not JSON, in the third batch
    path.write_text("\n".join(lines) + "\n")
    before = session_home.ledger.count()
    result = cli(web_url, "ingest", str(path), "--batch-size", "50")
    assert result.returncode == 1
    assert "line 111 is not JSON" in result.stderr
    assert "the 2 batch(es) before it (100 records" in result.stderr
    sent = [line.split()[1].rstrip(":") for line in result.stdout.splitlines()
            if line.startswith("batch ")]
    assert len(sent) == 2
    assert session_home.ledger.count() == before + 2
    for batch_id in sent:
        batch = session_home.ledger.get(batch_id)
        assert batch["rows"] == 50 and len(session_home.lake.read_records("raw", batch_id)) == 50


def test_a_malformed_csv_line_is_reported_and_the_rest_ingested(web_url, tmp_path):
    """A line without the header's number of fields cannot be a record: it is skipped and
    shown, and every other record is sent."""
    path = tmp_path / "broken.csv"
    sample_csv(path, 120)
    with open(path, "a") as handle:
        handle.write('Ana,30,1000.0,Recife,Vendedor,2025-01-01T00:00:00Z,x,"extra",9\n')
    result = cli(web_url, "ingest", str(path), "--batch-size", "50")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("batch ")]
    assert len(lines) == 3 and "20 rows, 20 clean, 0 quarantined" in lines[2]
    assert "120 records sent" in result.stdout
    assert ("1 malformed line(s) skipped, not sent: 9 fields where the header has 7: "
            "Ana,30,1000.0") in result.stderr


def test_forget_through_the_cli(web_url, tmp_path, session_home):
    path = tmp_path / "one.csv"
    sample_csv(path, 40, seed=23)
    ingested = cli(web_url, "ingest", str(path))
    batch_id = ingested.stdout.split()[1].rstrip(":")
    from tests.support import wait_for
    wait_for(lambda: session_home.ledger.get(batch_id)["status"] == "trained", what="training")
    result = cli(web_url, "forget", batch_id, "--reason", "a test")
    assert result.returncode == 0, result.stderr
    assert "version" in result.stdout and "is the model without it" in result.stdout
    assert session_home.ledger.get(batch_id)["status"] == "forgotten"
    missing = cli(web_url, "forget", "no-such-batch", "--reason", "x")
    assert missing.returncode == 1 and "batch no-such-batch is not in the ledger" in missing.stderr


@pytest.mark.parametrize("out", ["scored.csv", "scored.parquet", "scored.jsonl"])
def test_predict_writes_the_file_back_with_predictions(web_url, tmp_path, out, session_home):
    path = tmp_path / "people.csv"
    frame = sample_csv(path, 25, seed=24)
    result = cli(web_url, "predict", str(path), "-o", str(tmp_path / out), "--chunk", "10")
    assert result.returncode == 0, result.stderr
    target = tmp_path / out
    scored = (pd.read_csv(target) if out.endswith("csv") else pd.read_parquet(target)
              if out.endswith("parquet") else pd.read_json(target, lines=True))
    assert len(scored) == 25 and list(scored["nome"]) == list(frame["nome"])
    assert scored["salario_previsto"].gt(0).all()
    assert scored["model_version"].between(1, session_home.registry.latest_version()).all()


def test_predict_to_stdout_leaves_refused_records_empty_and_names_them(web_url, tmp_path):
    path = tmp_path / "people.csv"
    sample_csv(path, 25, seed=25, bad=(12, 21))
    result = cli(web_url, "predict", str(path), "--chunk", "10")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 25 and "salario_previsto" in rows[0]
    empty = [index for index, row in enumerate(rows) if not row["salario_previsto"]]
    assert empty == [12, 21] and rows[12]["model_version"] == ""
    assert all(float(row["salario_previsto"]) > 0 for index, row in enumerate(rows)
               if index not in empty)
    assert "23 records scored" in result.stderr
    assert ("2 records could not be scored, left empty: record 13, idade: must be a whole "
            "number, got text; record 22, idade") in result.stderr


@pytest.mark.parametrize("environment, way, size", [
    ({}, "writing batches to the system's store at", "150,000"),
    ({"PIPELINE_HOME": "/tmp/not-the-systems-home"}, "sending batches to http", "10,000"),
])
def test_ingest_goes_straight_to_the_store_when_it_reaches_the_systems_own(
        web_url, tmp_path, session_home, environment, way, size):
    """On the system's machine (the same PIPELINE_HOME and REDIS_URL as the web app reports)
    batches are written to the lake directly, as large as asked; elsewhere they go through
    /ingest, 10,000 records at most a request. Either way the records are learnt."""
    path = tmp_path / "people.csv"
    sample_csv(path, 300, seed=31)
    result = cli(web_url, "ingest", str(path), "--batch-size", "150000",
                 env={**environment, "PIPELINE_TEST_CONFIGURED": "1"})
    assert result.returncode == 0, result.stderr
    assert way in result.stderr and f"{size} records each" in result.stderr
    batch_id = next(line.split()[1].rstrip(":") for line in result.stdout.splitlines()
                    if line.startswith("batch "))
    from tests.support import wait_for
    wait_for(lambda: session_home.ledger.get(batch_id)["status"] == "trained", what="training")


def test_a_batch_line_names_a_column_without_a_name():
    """R's write.csv heads its row names with an empty name: listed as such, not as ', '."""
    from app.cli.batches import describe

    line = describe({"batch_id": "b1", "rows": 3, "clean": 3, "quarantined": 0,
                     "unknown_fields": ["", "Day"], "status": "normalized"})
    assert line.endswith("unknown fields ignored: (a column with no name), Day")
