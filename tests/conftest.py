"""Shared test setup: a Redis of the tests' own and a pipeline home in a temporary folder.

Both are settled in ``pytest_configure``, before any test module imports ``worker`` (whose
configuration reads the environment), so nothing a user runs is touched: a Redis already
answering on the default port is used through a database number of the tests' own
(``TEST_REDIS_DB``, 15 unless set), and when none answers a private ``redis-server`` is started
on a free port for the session.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
import redis

from app import redis_server
from app.lifecycle.home import Home
from tests import support

_session = contextlib.ExitStack()


def _test_redis_url() -> str:
    db = os.environ.get("TEST_REDIS_DB", "15")
    if redis_server.answers(redis_server.DEFAULT_URL):
        return redis_server.DEFAULT_URL.rsplit("/", 1)[0] + f"/{db}"
    return _session.enter_context(redis_server.private_redis())


def pytest_configure(config):
    if os.environ.get("PIPELINE_TEST_CONFIGURED"):
        return  # a subprocess of a test: the parent already chose
    home = Path(tempfile.mkdtemp(prefix="pipeline-test-"))
    _session.callback(shutil.rmtree, home, ignore_errors=True)
    url = _test_redis_url()
    redis.Redis.from_url(url).flushdb()
    os.environ.update(REDIS_URL=url, PIPELINE_HOME=str(home), PIPELINE_TEST_CONFIGURED="1")


def pytest_unconfigure(config):
    _session.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ["REDIS_URL"]


@pytest.fixture(scope="session")
def pipeline_home() -> Path:
    return Path(os.environ["PIPELINE_HOME"])


@pytest.fixture(scope="session")
def celery_app():
    from worker import app

    app.loader.import_default_modules()
    return app


@pytest.fixture(scope="session")
def celery_worker(celery_app):
    """A real worker in this process (threads, so tests run tasks concurrently with it)."""
    from celery.contrib.testing.worker import start_worker

    with start_worker(celery_app, pool="threads", concurrency=2, perform_ping_check=False,
                      loglevel="WARNING", shutdown_timeout=30):
        yield


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's S3 server for the session, with the AWS variables pointing at it."""
    with support.moto_server() as endpoint:
        support.use_s3(endpoint)
        support.create_bucket(endpoint, "pipeline-tests")
        yield endpoint


@pytest.fixture(params=["local", "s3"])
def home(request, tmp_path):
    """An empty pipeline home of the test's own, in a local folder and again in S3 (moto).

    Tests of the storage-backed parts (lake, ledger, registry, lifecycle) run on both, so
    ``PIPELINE_HOME=s3://...`` is tested by every one of them.
    """
    if request.param == "local":
        return Home(str(tmp_path / "home"))
    request.getfixturevalue("s3_endpoint")
    return Home(f"s3://pipeline-tests/{request.node.name[:60]}-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def local_home(tmp_path):
    """An empty pipeline home in a local folder, for tests about local files themselves."""
    return Home(str(tmp_path / "home"))


@pytest.fixture
def lake(home):
    return home.lake


@pytest.fixture
def registry(home):
    return home.registry


@pytest.fixture
def session_home(pipeline_home):
    """The pipeline home the session's worker writes to."""
    return Home(str(pipeline_home))


@pytest.fixture
def home_lake(session_home):
    return session_home.lake


@pytest.fixture
def home_registry(session_home):
    return session_home.registry
