"""Every metric of the pipeline, defined here and nowhere else; ``GET /metrics`` exports them.

Three sources end up in the one ``/metrics`` a Prometheus scrapes on the web app:

- **Each web process** counts its requests and predictions in prometheus-client's
  multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` is set before Python starts (by ``make run``
  in app/runner.py, else by gunicorn.conf.py) and emptied at start, so the figures of every
  gunicorn worker add up, and ``child_exit`` in gunicorn.conf.py marks a dead worker's files.
  Without that variable (a test's Flask client) the same counters live in this process.
- **The worker** keeps a few counters in Redis (:class:`Tally`: batches by outcome,
  drift events, refused promotions). Workers may run on other hosts, so a
  shared folder of metric files could not reach them; Redis does, and no second port is needed.
- **The pipeline home and Redis**, read at scrape time (:class:`PipelineCollector`): the
  served and newest versions, the newest prequential scores, the ledger's totals (batches,
  records, quarantined rows, the last batch's age) and the queues' lengths. Reading them when asked means they cannot go stale.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone

import redis
from loguru import logger
from prometheus_client import Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from app import settings
from app.models.versions import VersionInfo
from app.observe.multiproc import MULTIPROC_VARIABLE

# Unknown paths (404s) share one label value, so a scan of random URLs cannot grow the series.
UNMATCHED_ROUTE = "<unmatched>"
# /predict answers in about a millisecond: the buckets start well below prometheus-client's.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                   5.0, 10.0)
# How far back from the newest version to look for one with prequential scores (the first
# version and a forget step's have none).
PREQUENTIAL_LOOKBACK = 20
# kombu's Redis transport keeps a queue's messages of priority p > 0 in "<queue>\x06\x16<p>".
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)

# A ``_created`` series per counter would double the answer, and multiprocess mode has none.
disable_created_metrics()

HTTP_REQUESTS = Counter(
    "pipeline_http_requests", "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"])
HTTP_LATENCY = Histogram(
    "pipeline_http_request_duration_seconds",
    "Seconds from reading a request to its answer, by route template and status.",
    ["route", "status"], buckets=LATENCY_BUCKETS)
PREDICTIONS = Counter("pipeline_predictions", "Predictions made (one per record answered).")

# The worker's counters: Redis hash field -> (metric, help, labels of that field).
TALLY_FAMILIES = {
    "pipeline_batches": "Batches that reached an outcome: trained, refused (the gate left it "
                        "out of the model) or empty (no row passed the checks).",
    "pipeline_drift_events": "Times the relation between the features and the target changed "
                             "(the drift detector fired, and the features had not moved, or "
                             "the relation moved with them): the model starts again.",
    "pipeline_population_shifts": "Times the drift detector fired on a shifted population (the "
                                  "features moved, the relation held): the model learns on.",
    "pipeline_refused_promotions": "Versions the promotion gate refused to serve.",
}
OUTCOMES = ("trained", "refused", "empty")


def tally_key(home_url: str) -> str:
    """The Redis hash of one pipeline home's counters (two homes sharing a Redis stay apart)."""
    return f"pipeline:metrics:{settings.fingerprint(home_url)}"


class Tally:
    """The worker's counters, kept in Redis for every web process's ``/metrics``.

    Counters only ever go up (a flushed Redis starts them again at zero, which Prometheus
    reads as a counter reset, as it does a restarted process).
    """

    def __init__(self, client: redis.Redis, home_url: str):
        self.client = client
        self.key = tally_key(home_url)

    def add(self, **amounts: int) -> None:
        """``add(batches_trained=2, quarantined_rows=5)``: zero amounts are skipped."""
        amounts = {field: amount for field, amount in amounts.items() if amount}
        if not amounts:
            return
        pipe = self.client.pipeline(transaction=False)
        for field, amount in amounts.items():
            pipe.hincrby(self.key, field, int(amount))
        pipe.execute()

    def read(self) -> dict[str, int]:
        return {field.decode(): int(value) for field, value in self.client.hgetall(self.key).items()}


class LiveError:
    """The error of the answers already given, as their labels come back (``POST /feedback``):
    for each version, how many of its answers were labelled and the sum of their absolute
    errors, in a Redis hash of the home that every web process adds to and reads.

    Like the tally's, these figures start again from nothing if Redis loses its data.
    """

    def __init__(self, client: redis.Redis, home_url: str):
        self.client = client
        self.key = f"pipeline:live:{settings.fingerprint(home_url)}"

    def add(self, live: dict[int, tuple[int, float]]) -> None:
        """``{version: (labels, sum of absolute errors)}`` of answers just labelled."""
        if not live:
            return
        pipe = self.client.pipeline(transaction=False)
        for version, (count, total) in live.items():
            pipe.hincrby(self.key, f"n:{version}", count)
            pipe.hincrbyfloat(self.key, f"abs:{version}", repr(total))
        pipe.execute()

    def read(self) -> dict:
        """``{"labelled": N, "mae": x, "by_version": {V: {"labelled": N, "mae": x}}}``."""
        fields = {field.decode(): value for field, value in self.client.hgetall(self.key).items()}
        by_version, labelled, total = {}, 0, 0.0
        for field, value in fields.items():
            if field.startswith("n:"):
                version = int(field[2:])
                count, errors = int(value), float(fields.get(f"abs:{version}", 0.0))
                by_version[version] = {"labelled": count, "mae": errors / count if count else None}
                labelled, total = labelled + count, total + errors
        return {"labelled": labelled, "mae": total / labelled if labelled else None,
                "by_version": dict(sorted(by_version.items()))}


def count_trained(tally: Tally, info: VersionInfo) -> None:
    """Count what a published version did: its batches' outcome, drift, a refused promotion."""
    tally.add(**{f"batches_{info.batch_status}": len(info.batch_ids),
                 "drift_events": int(info.drift),
                 "population_shifts": int(info.population_shift),
                 "refused_promotions": int(not info.gate_passed)})


def count_normalized(tally: Tally, batch: dict) -> None:
    """Count what normalizing a batch did: an empty batch's outcome (rows are in the ledger)."""
    tally.add(batches_empty=int(batch.get("status") == "empty"))


def _tally_families(counts: dict[str, int]) -> Iterator:
    batches = CounterMetricFamily("pipeline_batches", TALLY_FAMILIES["pipeline_batches"],
                                  labels=["outcome"])
    for outcome in OUTCOMES:
        batches.add_metric([outcome], counts.get(f"batches_{outcome}", 0))
    yield batches
    for name in ("pipeline_drift_events", "pipeline_population_shifts",
                 "pipeline_refused_promotions"):
        field = name.removeprefix("pipeline_")
        yield CounterMetricFamily(name, TALLY_FAMILIES[name], value=counts.get(field, 0))


def _seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


class PipelineCollector:
    """The figures read from the pipeline home and Redis each time ``/metrics`` is scraped.

    ``served``: the version this web process serves (None while there is none). A part that
    cannot be read (Redis down, storage unreachable) is left out of the answer and logged;
    the rest is still exported.
    """

    def __init__(self, home, client: redis.Redis, queues: Iterable[str],
                 served: Callable[[], int | None]):
        self.home = home
        self.client = client
        self.queues = list(queues)
        self.served = served
        self.tally = Tally(client, home.url)

    def collect(self) -> Iterator:
        for part in (self._versions, self._ledger, self._redis):
            try:
                yield from part()
            except (OSError, ValueError, KeyError, redis.RedisError) as error:
                logger.warning("/metrics left out {}: {}", part.__name__.strip("_"), error)

    def _versions(self) -> Iterator:
        served = self.served()
        yield GaugeMetricFamily("pipeline_model_version",
                                "The model version this web process serves (0 while none).",
                                value=served or 0)
        registry = self.home.registry
        newest = registry.latest_version() or 0
        yield GaugeMetricFamily("pipeline_newest_version",
                                "The newest model version in the registry (0 while none).",
                                value=newest)
        pinned = self.home.serving.pinned_version()
        yield GaugeMetricFamily("pipeline_serving_pinned",
                                "1 when an operator pinned the served version, 0 when it "
                                "follows the newest the gate let through.",
                                value=int(pinned is not None))
        version, scores = newest_prequential(registry, newest)
        if scores is None:
            return
        for figure in ("mse", "mae", "r2"):
            if scores.get(figure) is None:
                continue  # R² of a one-row batch: undefined
            yield GaugeMetricFamily(
                f"pipeline_prequential_{figure}",
                f"Prequential {figure.upper()} of the newest version that has one: the version "
                "before it, scored on its batch before learning it.", value=scores[figure])
        yield GaugeMetricFamily("pipeline_prequential_version",
                                "The version whose prequential scores are exported.",
                                value=version)

    def _ledger(self) -> Iterator:
        """The ledger's running totals: the same figures as ``GET /status``."""
        totals = self.home.ledger.totals()
        yield CounterMetricFamily("pipeline_batches_received", "Batches that arrived "
                                  "(generated or ingested).", value=totals["batches"])
        yield CounterMetricFamily("pipeline_records", "Rows that arrived in batches.",
                                  value=totals["rows"])
        yield CounterMetricFamily("pipeline_quarantined_rows", "Rows the checks sent to "
                                  "quarantine instead of training.", value=totals["quarantined"])
        if self.home.dataset.generated:
            # What "no batch lately" is measured against; absent when a declared dataset is
            # fed from outside, whenever its senders send (the no-batch alert needs it).
            yield GaugeMetricFamily("pipeline_generator_period_seconds",
                                    "Seconds between the generator's batches (GENERATE_EVERY).",
                                    value=settings.load().generate_every)
        if totals["last_batch_at"] is None:
            return
        at = _seconds(totals["last_batch_at"])
        yield GaugeMetricFamily("pipeline_last_batch_timestamp_seconds",
                                "When the newest batch arrived (Unix time).", value=at)
        yield GaugeMetricFamily("pipeline_seconds_since_last_batch",
                                "Seconds since the newest batch arrived.",
                                value=max(0.0, datetime.now(timezone.utc).timestamp() - at))

    def _redis(self) -> Iterator:
        yield from _tally_families(self.tally.read())
        yield from self._live()
        lengths = GaugeMetricFamily("pipeline_queue_length",
                                    "Messages waiting in each Celery queue.", labels=["queue"])
        for queue, length in queue_lengths(self.client, self.queues).items():
            lengths.add_metric([queue], length)
        yield lengths


    def _live(self) -> Iterator:
        """The live error of each version whose answers were labelled, and of the served one
        beside what its metadata expects (its MAE on held-out rows, else its prequential MAE):
        the alert compares the two."""
        live = LiveError(self.client, self.home.url).read()
        yield CounterMetricFamily("pipeline_live_labelled", "Answers whose label came back "
                                  "(POST /feedback), each counted once.", value=live["labelled"])
        mae = GaugeMetricFamily("pipeline_live_mae", "Mean absolute error of a version's "
                                "answers whose labels came back.", labels=["version"])
        labelled = GaugeMetricFamily("pipeline_live_labelled_answers", "A version's answers "
                                     "whose labels came back.", labels=["version"])
        for version, figures in live["by_version"].items():
            mae.add_metric([str(version)], figures["mae"])
            labelled.add_metric([str(version)], figures["labelled"])
        yield mae
        yield labelled
        served = self.served()
        figures = live["by_version"].get(served) if served else None
        if figures is None:
            return
        yield GaugeMetricFamily("pipeline_live_mae_served", "Live MAE of the served version.",
                                value=figures["mae"])
        yield GaugeMetricFamily("pipeline_live_labelled_served", "Labelled answers of the "
                                "served version.", value=figures["labelled"])
        metrics = self.home.registry.metadata(served).metrics
        expected = (metrics.get("holdout") or metrics.get("prequential") or {}).get("mae")
        if expected is not None:
            yield GaugeMetricFamily("pipeline_expected_mae_served", "What the served version's "
                                    "metadata expects of its error: its MAE on held-out rows "
                                    "(else its prequential MAE).", value=expected)


def queue_lengths(client: redis.Redis, queues: Iterable[str]) -> dict[str, int]:
    """Messages waiting in each of ``queues``, at every priority (one round trip)."""
    queues = list(queues)
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        for priority in PRIORITY_STEPS:
            pipe.llen(queue if not priority else f"{queue}{PRIORITY_SEPARATOR}{priority}")
    counts = pipe.execute()
    steps = len(PRIORITY_STEPS)
    return {queue: sum(counts[index * steps:(index + 1) * steps])
            for index, queue in enumerate(queues)}


def newest_prequential(registry, newest: int) -> tuple[int, dict | None]:
    """``(version, scores)`` of the newest version at or below ``newest`` that was scored."""
    for info in registry.down(newest, max(newest - PREQUENTIAL_LOOKBACK, 0)):
        if info.prequential:
            return info.version, info.prequential
    return 0, None


def multiprocess() -> bool:
    """Whether this process writes its metrics to files shared by every web process."""
    return bool(os.environ.get(MULTIPROC_VARIABLE))
