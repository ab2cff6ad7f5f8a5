"""A task's failure is stored (result backend), shown (Flower's events) and logged without the
secrets its error quoted: a library's error may quote the URL it could not reach."""

import json
import secrets

import pytest
import redis

from app.tasks.pipeline import normalize

pytestmark = pytest.mark.usefixtures("celery_worker")


def test_a_failure_quoting_a_url_or_a_known_secret_is_stored_masked(monkeypatch, redis_url):
    password, token = (f"{kind}-SECRET-{secrets.token_hex(6)}" for kind in ("pw", "token"))
    # The worker runs in this process: it knows the token as the web app would know its own.
    monkeypatch.setenv("API_TOKEN", f"ops:{token}")
    client = redis.Redis.from_url(redis_url)
    # Both arguments end up in the error's text: the first is not a batch id, the second is
    # one the ledger does not know.
    for argument, secret, masked in ((f"redis://:{password}@cache:6379/0", password,
                                      "redis://:***@cache:6379/0"),
                                     (token, token, "batch *** is not in the ledger")):
        result = normalize.delay(argument)
        with pytest.raises(Exception) as caught:
            result.get(timeout=30)
        assert masked in str(caught.value) and secret not in str(caught.value)
        assert secret not in result.traceback
        # As stored (the arguments are stored too, as given: the pipeline's are ids).
        stored = json.loads(client.get(f"celery-task-meta-{result.id}"))
        error = json.dumps([stored["result"], stored["traceback"]])
        assert masked in error and secret not in error
