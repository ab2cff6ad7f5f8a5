"""A batch's arrival and check as the tasks run them: whole or absent, reasons counted,
totals that follow the ledger."""

import json

import pandas as pd
import pytest

from app.data.batches import normalize_batch, receive_records
from app.data.generator import generate
from app.data.lake import BatchNotFound
from app.data.ledger import UnknownBatch


def records(n=30, seed=3):
    frame = generate(n, seed=seed)
    frame["timestamp"] = frame["timestamp"].map(lambda t: t.isoformat())
    return json.loads(frame.drop(columns=["geracao_id"]).to_json(orient="records"))


def test_ingested_records_keep_their_json_types_until_checked(home):
    sent = records(6)
    sent[0]["idade"] = "35"          # text, even if it reads as a number
    sent[1]["salario"] = None
    sent[2]["cargo"] = {"nested": True}
    sent[3]["bonus"] = 10            # a field the schema does not know
    del sent[4]["timestamp"]         # optional: the batch's arrival time stands in
    sent[5]["geracao_id"] = "elsewhere"  # replaced by this batch's id
    batch = receive_records(home.lake, home.ledger, "in1", sent)
    assert (batch["source"], batch["rows"], batch["status"]) == ("ingest", 6, "received")
    batch = normalize_batch(home.lake, home.ledger, "in1", home.dataset)
    assert (batch["status"], batch["clean"], batch["quarantined"]) == ("normalized", 3, 3)
    assert batch["reasons"] == {"idade is not a number": 1, "missing salario": 1,
                                "cargo is not text": 1}
    assert batch["unknown_fields"] == ["bonus"]
    quarantine = home.lake.read("quarantine", "in1")
    assert quarantine["row"].tolist() == [0, 1, 2] and quarantine.loc[0, "idade"] == "35"
    kept = pd.concat([home.lake.read("normalized", "in1"), home.lake.read("holdout", "in1")])
    assert (kept["geracao_id"] == "in1").all()
    assert pd.Timestamp(batch["created_at"]) in set(kept["timestamp"])


def test_a_batch_with_no_clean_row_is_empty_and_says_why(home):
    sent = [{"idade": 12, "salario": -1, "cidade": "Recife", "cargo": "Vendedor"}] * 3
    receive_records(home.lake, home.ledger, "bad", sent)
    batch = normalize_batch(home.lake, home.ledger, "bad", home.dataset)
    assert batch["status"] == "empty" and batch["clean"] == 0 and batch["quarantined"] == 3
    assert batch["failure"] == ("no row passed the checks: idade out of range 18-70 (3); "
                                "salario out of range 0.01-1,000,000 (3)")


class FailingAt:
    """Storage that fails the first write whose key contains ``marker`` (a crash midway)."""

    def __init__(self, storage, marker):
        self._storage, self.marker = storage, marker

    def __getattr__(self, name):
        attribute = getattr(self._storage, name)
        if name in ("write_bytes", "create", "write_json", "create_json"):
            def failing(key, *args, **kwargs):
                if self.marker in key:
                    raise OSError(f"disk failed writing {key}")
                return attribute(key, *args, **kwargs)
            return failing
        return attribute


@pytest.mark.parametrize("marker", ["data/raw/", "ledger/batches/"])
def test_an_arrival_that_fails_midway_leaves_nothing_behind(home, marker):
    """Whichever write fails, the batch is wholly absent: no rows in the lake, no ledger entry."""
    from app.data.lake import DataLake
    from app.data.ledger import Ledger

    storage = FailingAt(home.storage, marker)
    with pytest.raises(OSError, match="disk failed"):
        receive_records(DataLake(storage), Ledger(storage), "half", records(5))
    with pytest.raises(BatchNotFound):
        home.lake.read("raw", "half")
    with pytest.raises(UnknownBatch):
        home.ledger.get("half")
    assert home.ledger.totals()["batches"] == 0


def test_totals_count_settled_and_arriving_batches_once(home):
    ledger = home.ledger
    assert ledger.totals() == {"batches": 0, "rows": 0, "clean": 0, "quarantined": 0,
                               "last_batch_at": None}
    sent = records(10)
    sent[0]["idade"] = 99
    receive_records(home.lake, ledger, "t1", sent)
    assert ledger.totals()["rows"] == 10 and ledger.totals()["quarantined"] == 0
    normalize_batch(home.lake, ledger, "t1", home.dataset)
    receive_records(home.lake, ledger, "t2", records(5, seed=4))
    first = ledger.totals()
    assert (first["batches"], first["rows"], first["clean"], first["quarantined"]) == (2, 15, 9, 1)
    assert first["last_batch_at"] == ledger.get("t2")["created_at"]
    normalize_batch(home.lake, ledger, "t2", home.dataset)
    again = ledger.totals()
    assert (again["batches"], again["rows"], again["clean"], again["quarantined"]) == (2, 15, 14, 1)
    assert ledger.totals() == again  # read from the checkpoint: nothing counted twice
