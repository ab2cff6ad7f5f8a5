"""The web app says why Redis refused it without showing the password, and links to Flower
without one."""

import pytest

from tests.faults.conftest import RedisServer

PASSWORD = "redis-SECRET-5a0c7d"


@pytest.fixture(scope="module")
def locked_redis(tmp_path_factory):
    with RedisServer(tmp_path_factory.mktemp("locked-redis"), password=PASSWORD) as server:
        yield server


def test_status_says_redis_refused_the_login_without_the_password(make_app, locked_redis):
    url = locked_redis.url.replace(PASSWORD, f"wrong-{PASSWORD}")
    answer = make_app(REDIS_URL=url).test_client().get("/status")
    assert answer.status_code == 200
    assert answer.get_json()["queues"] == {"error": (
        f"Redis at redis://:***@127.0.0.1:{locked_redis.port}/0 refused the login of user "
        "default: wrong user or password")}
    assert PASSWORD not in answer.get_data(as_text=True)


def test_the_flower_link_on_the_page_holds_no_password(make_app):
    app = make_app(FLOWER_URL=f"http://ops:{PASSWORD}@flower.internal:5555/")
    page = app.test_client().get("/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'href="http://ops:***@flower.internal:5555/"' in text and PASSWORD not in text
