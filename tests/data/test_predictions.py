"""The kept answers: written a second at a time, found by id, swept after their days."""

import time
from datetime import datetime, timedelta, timezone

from app.data import predictions
from app.data.generator import generate
from app.data.predictions import PredictionLog, find, parse_id
from app.dataset import builtin

RECORD = {"idade": 35, "cidade": "Recife", "cargo": "Professor"}


def test_ids_are_unique_across_logs_and_find_their_records(home):
    logs = [PredictionLog(home.storage, builtin(), flush_every=3600) for _ in range(2)]
    ids = [i for log in logs for i in log.keep(7, [RECORD] * 5, [1000.0 + n for n in range(5)])]
    assert len(set(ids)) == 10
    for log in logs:
        assert log.flush() == 5
    found = find(home.storage, ids + ["f" * 28, "nonsense"]).set_index("id")
    assert set(found.index) == set(ids)
    assert found.loc[ids[3], "prediction"] == 1003.0 and found.loc[ids[3], "version"] == 7
    assert found.loc[ids[3], "cidade"] == "Recife"


def test_a_record_is_found_in_a_file_opened_the_minute_before(home, monkeypatch):
    """A file holds what its process kept during up to a second: one opened at 10:24:59.9
    holds records of 10:25:00, and lives in 10:24's folder."""
    log = PredictionLog(home.storage, builtin(), flush_every=3600)
    opened = (time.time_ns() // 60_000_000_000 + 1) * 60_000_000_000 - 100_000_000
    monkeypatch.setattr(predictions.time, "time_ns", lambda: opened)
    first = log.keep(1, [RECORD], [1.0])
    monkeypatch.setattr(predictions.time, "time_ns", lambda: opened + 150_000_000)
    later = log.keep(1, [RECORD], [2.0])  # the next minute, in the same file
    log.flush()
    assert parse_id(later[0])[0] // 60_000 == parse_id(first[0])[0] // 60_000 + 1
    assert set(find(home.storage, first + later)["id"]) == {*first, *later}


def test_kept_answers_are_swept_after_their_days(home):
    log = PredictionLog(home.storage, builtin(), flush_every=3600)
    ids = log.keep(1, [RECORD], [1.0])
    log.flush()
    now = datetime.now(timezone.utc)
    assert predictions.sweep(home.storage, keep_days=7, now=now) == 0
    assert predictions.sweep(home.storage, keep_days=7, now=now + timedelta(days=8)) == 1
    assert find(home.storage, ids).empty


def test_a_kept_answer_takes_under_fourteen_bytes_at_a_thousand_requests_a_second(home):
    """At 1,000 requests a second each of the two web processes writes a file of 500 answers
    a second: a day is 1.2 GB, within the 2 GB bar with room for a slower second's files,
    whose fixed part weighs more on each answer (pandas' metadata and the schema in every
    file made it 21.6 bytes)."""
    people = generate(500, seed=5)
    records = people[["idade", "cidade", "cargo"]].to_dict("records")
    log = PredictionLog(home.storage, builtin(), flush_every=3600)
    ids = [log.keep(3, [record], [float(salary)])[0]  # one record a request, as is usual
           for record, salary in zip(records, people["salario"])]
    assert log.flush() == 500
    folder = predictions._folder(parse_id(ids[0])[0])
    (name,) = home.storage.list(folder)
    per_record = len(home.storage.read_bytes(f"{folder}/{name}")) / 500
    assert per_record < 14, f"{per_record:.1f} bytes a record"
