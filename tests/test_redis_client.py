"""The one module that makes Redis clients: a plain URL gives a plain client, a Sentinel list
a client of whichever server the sentinels name, and a refusal names the sentinels, masked."""

import pytest
import redis
from redis.sentinel import SentinelConnectionPool

from app import redis_client, redis_server
from app.redis_server import free_port


def test_a_plain_url_gives_a_plain_client(redis_url):
    client = redis_client.client(redis_url, socket_timeout=1)
    assert client.ping() and not isinstance(client.connection_pool, SentinelConnectionPool)


def test_a_sentinel_url_gives_a_client_of_the_named_primary(monkeypatch):
    monkeypatch.setenv("REDIS_SENTINEL_MASTER", "pipeline-primary")
    client = redis_client.client("sentinel://:pw@h1:26379;sentinel://h2/3", socket_timeout=1)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "pipeline-primary"
    assert pool.connection_kwargs["db"] == 3 and pool.connection_kwargs["password"] == "pw"
    assert [(c.connection_pool.connection_kwargs["host"], c.connection_pool.connection_kwargs[
        "port"]) for c in pool.sentinel_manager.sentinels] == [("h1", 26379), ("h2", 26379)]


@pytest.mark.parametrize("url", ["sentinel://", "sentinel://h1:26379;redis://h2:6379/0"])
def test_a_malformed_sentinel_list_is_refused_as_not_a_redis_url(url):
    assert "is not a Redis URL" in redis_server.refusal(url)


def test_sentinels_that_do_not_answer_are_named_and_the_password_masked():
    url = f"sentinel://:s3cret-pw@127.0.0.1:{free_port()};sentinel://127.0.0.1:{free_port()}/0"
    refusal = redis_server.refusal(url, timeout=0.5)
    assert refusal.startswith("Redis Sentinel at sentinel://:***@127.0.0.1:")
    assert "no sentinel answered with a primary named 'mymaster'" in refusal
    assert "s3cret" not in refusal
    with pytest.raises(RuntimeError, match="no sentinel answered"):
        with redis_server.ensure_redis(url):
            pass  # never: a Sentinel URL that does not answer starts no private Redis


def test_a_live_redis_error_class_is_what_clients_catch():
    assert issubclass(redis.sentinel.MasterNotFoundError, redis.ConnectionError)
