"""Scenario 9: ``/predict`` driven hard while a new version is published every second.

The Procfile's gunicorn (2 workers x 4 threads) serves a registry that a publisher thread keeps
adding to; client threads on loopback send requests for a bounded time. Every answer must be a
200 whose predictions are exactly what the version named in its ``X-Model-Version`` header
predicts: a request never sees half a swap, nor a version it does not name.

The protection is the swap of one immutable ``ServedModel`` (model, version, metadata together) in
app/web/holder.py, read once per request. A swap made in two steps (the new model under the
old version, then a log line, then the new version) fails this test on every run; two reads of
the holder within one request mostly do not, as CPython seldom switches threads between two
reads a microsecond apart.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

import numpy as np
import pytest

from app.data.generator import generate
from app.lifecycle.home import Home
from app.models.regressor import IncrementalRidge
from app.runner import web_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

CLIENTS = 6
DURATION = 8.0          # seconds of load
MAX_REQUESTS = 20_000   # per client: the loop is bounded in count as well as in time
PUBLISH_EVERY = 1.0
# Big enough that predicting takes a few milliseconds: a swap often falls inside a request.
RECORDS = [{"idade": 35, "cidade": "São Paulo", "cargo": "Professor"},
           {"idade": 52, "cidade": "Atlantis", "cargo": "Astronauta"},
           *generate(398, seed=7)[["idade", "cidade", "cargo"]].to_dict("records")]


def models(count: int) -> list[IncrementalRidge]:
    """``count`` models, each predicting differently: each learnt one more batch."""
    model, made = IncrementalRidge(), []
    for seed in range(count):
        batch = generate(300, seed=seed)
        model.partial_fit(batch, batch["salario"])
        made.append(IncrementalRidge().set_stats(model.stats_))
    return made


def publish(home: Home, model: IncrementalRidge, version: int) -> None:
    home.registry.publish(model, version, batch_id=f"b{version}", batch_ids=[f"b{version}"],
                          n_batch=300, metrics={"prequential": None})


def client(url: str, stop: threading.Event, answers: list) -> None:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    body = json.dumps({"records": RECORDS})
    try:
        for _ in range(MAX_REQUESTS):
            if stop.is_set():
                break
            try:
                connection.request("POST", "/predict", body=body,
                                   headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as error:
                answers.append(("error", repr(error), None))
                connection.close()
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                continue
            answers.append((response.status, response.getheader("X-Model-Version"), payload))
    finally:
        connection.close()


def test_every_answer_comes_from_the_version_it_names(tmp_path):
    home = Home(str(tmp_path / "home"))
    versions = models(1 + int(DURATION / PUBLISH_EVERY) + 2)
    expected = {number: versions[number - 1].predict_records(RECORDS)
                for number in range(1, len(versions) + 1)}
    assert len({tuple(p) for p in expected.values()}) == len(expected), "models must differ"
    publish(home, versions[0], 1)

    with web_server(home.url, tmp_path / "gunicorn.log") as url:
        stop = threading.Event()
        answers: list = []
        clients = [threading.Thread(target=client, args=(url, stop, answers))
                   for _ in range(CLIENTS)]
        for thread in clients:
            thread.start()
        started = time.monotonic()
        published = 1
        while time.monotonic() - started < DURATION and published < len(versions):
            time.sleep(PUBLISH_EVERY)
            published += 1
            publish(home, versions[published - 1], published)
        stop.set()
        for thread in clients:
            thread.join(timeout=60)

    statuses = Counter(status for status, _, _ in answers)
    assert statuses and set(statuses) == {200}, statuses
    seen = Counter()
    for _, header, payload in answers:
        body = json.loads(payload)
        version = int(header)
        assert body["model_version"] == version
        np.testing.assert_allclose(body["predictions"], expected[version], rtol=1e-12)
        seen[version] += 1
    # The load really ran across publications: several versions answered.
    assert len(seen) >= 3, seen
    print(f"{sum(statuses.values())} answers, all 200, from versions {dict(sorted(seen.items()))}")
