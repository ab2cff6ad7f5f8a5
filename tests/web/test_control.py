"""``/serving``, ``/serving/rollback`` and ``/audit`` on the real app: what operators change, who
may change it, and the trail it leaves."""

import hmac

import pytest

from app.lifecycle.learning import Learner
from tests.support import arrive
from tests.web.conftest import PROBE

SECRET = "s3cr3t-Do-Not-Log"


@pytest.fixture
def home(local_home):
    """The routes over a local home (the storage itself is tested on S3 in tests/lifecycle)."""
    return local_home


@pytest.fixture
def three(save_model, first_model, second_model):
    """Three versions, the newest served."""
    return [save_model(model, f"b{i}") for i, model in
            enumerate((first_model, second_model, first_model), start=1)]


def served_version(client):
    return client.post("/predict", json=PROBE).get_json()["model_version"]


def test_serving_follows_the_newest_version_by_default(client, three):
    state = client.get("/serving").get_json()
    assert (state["version"], state["mode"], state["by"]) == (3, "follow", None)
    assert state["forgotten_batches"] == []


def test_a_pin_holds_while_new_versions_arrive(client, three, save_model, second_model):
    answer = client.put("/serving", json={"version": 2, "reason": "incident 42"})
    assert answer.status_code == 200
    state = answer.get_json()
    assert (state["version"], state["mode"], state["reason"]) == (2, "pinned", "incident 42")
    assert state["by"] == "client 127.0.0.1" and state["since"]
    assert served_version(client) == 2
    save_model(second_model, "b4")
    save_model(second_model, "b5")
    assert client.get("/serving").get_json()["version"] == 2
    assert served_version(client) == 2


def test_rollback_goes_back_one_promoted_version_at_a_time_then_follow(client, three, save_model,
                                                                       first_model):
    back = client.post("/serving/rollback", json={"reason": "v3 is bad"}).get_json()
    assert (back["version"], back["mode"]) == (2, "pinned") and served_version(client) == 2
    assert client.post("/serving/rollback", json={"reason": "v2 too"}).get_json()["version"] == 1
    oldest = client.post("/serving/rollback", json={"reason": "further"})
    assert oldest.status_code == 409
    assert "oldest servable version" in oldest.get_json()["error"]
    to = client.post("/serving/rollback", json={"reason": "v3 was fine", "to": 3}).get_json()
    assert to["version"] == 3 and served_version(client) == 3
    save_model(first_model, "b4")
    follow = client.put("/serving", json={"version": "latest", "reason": "fixed"}).get_json()
    assert (follow["version"], follow["mode"]) == (4, "follow") and served_version(client) == 4


def test_the_version_a_change_answers_is_served_by_the_next_request(client, app, three):
    """Even while another thread of the process (the notice listener) holds the model lock,
    a pin's answer is the truth for the request after it: the change waits for the lock."""
    import threading
    import time

    from app.web.holder import get_model_holder

    assert served_version(client) == 3
    holder = get_model_holder(app)
    holder._lock.acquire()
    threading.Thread(target=lambda: (time.sleep(0.3), holder._lock.release())).start()
    assert client.put("/serving", json={"version": 1, "reason": "incident"}).get_json()[
        "version"] == 1
    assert served_version(client) == 1


def test_the_audit_lists_each_change_newest_first_with_who_and_why(client, three):
    client.put("/serving", json={"version": 2, "reason": "pin it"})
    client.post("/serving/rollback", json={"reason": "back"})
    client.put("/serving", json={"version": "latest", "reason": "follow again"})
    events = client.get("/audit").get_json()["events"]
    assert [(e["action"], e["from_version"], e["to_version"], e["reason"], e["by"])
            for e in events] == [("follow", 1, 3, "follow again", "client 127.0.0.1"),
                                 ("rollback", 2, 1, "back", "client 127.0.0.1"),
                                 ("pin", 3, 2, "pin it", "client 127.0.0.1")]
    assert all(e["at"].endswith("+00:00") for e in events)


def test_the_audit_is_paginated_and_filtered(client, three):
    for version in (1, 2, 3, 1, 2):
        client.put("/serving", json={"version": version, "reason": f"to {version}"})
    client.put("/serving", json={"version": "latest", "reason": "back"})
    first = client.get("/audit?limit=4").get_json()
    assert [e["id"] for e in first["events"]] == [6, 5, 4, 3] and first["total"] == 6
    rest = client.get(f"/audit?limit=4&before={first['next_before']}").get_json()
    assert [e["id"] for e in rest["events"]] == [2, 1] and rest["next_before"] is None
    pins = client.get("/audit?action=follow").get_json()["events"]
    assert [e["id"] for e in pins] == [6]


@pytest.mark.parametrize("query, field", [("limit=0", "limit"), ("limit=1001", "limit"),
                                          ("limit=x", "limit"), ("before=-1", "before"),
                                          ("action=delete", "action")])
def test_a_bad_audit_query_is_a_400_naming_the_field(client, query, field):
    answer = client.get(f"/audit?{query}")
    assert answer.status_code == 400 and answer.get_json()["errors"][0]["field"] == field


@pytest.mark.parametrize("body, field", [
    ({"version": 2}, "reason"),
    ({"version": 2, "reason": "   "}, "reason"),
    ({"reason": "why"}, "version"),
    ({"version": "2", "reason": "why"}, "version"),
    ({"version": 0, "reason": "why"}, "version"),
    ({"version": True, "reason": "why"}, "version"),
    ({"version": 2, "reason": "why", "by": "someone else"}, "by"),
])
def test_a_bad_serving_change_is_a_400_naming_the_field(client, three, body, field):
    answer = client.put("/serving", json=body)
    assert answer.status_code == 400, answer.get_json()
    assert answer.get_json()["errors"][0]["field"] == field
    assert client.get("/audit").get_json()["events"] == []


def test_a_missing_reason_says_it_is_for_the_audit(client, three):
    for answer in (client.put("/serving", json={"version": 1}),
                   client.post("/serving/rollback", json={})):
        assert answer.status_code == 400
        assert answer.get_json()["error"] == "reason: is required: say why, for the audit trail"


def test_pinning_an_unknown_version_is_a_404_and_changes_nothing(client, three):
    answer = client.put("/serving", json={"version": 99, "reason": "typo"})
    assert answer.status_code == 404 and "99" in answer.get_json()["error"]
    assert client.post("/serving/rollback", json={"reason": "r", "to": 99}).status_code == 404
    assert client.get("/serving").get_json()["mode"] == "follow"


def test_a_version_whose_artifact_was_pruned_cannot_be_pinned(client, three, registry):
    registry.prune_artifact(1)
    answer = client.put("/serving", json={"version": 1, "reason": "old one"})
    assert answer.status_code == 409 and "cannot be served" in answer.get_json()["error"]


# -- who may change it ----------------------------------------------------------------------

CHANGES = [("put", "/serving", {"version": 1, "reason": "r"}),
           ("post", "/serving/rollback", {"reason": "r"})]


@pytest.mark.parametrize("method, path, body", CHANGES)
def test_without_a_token_only_loopback_clients_may_change_what_is_served(client, three, method,
                                                                         path, body):
    remote = getattr(client, method)(path, json=body, environ_base={"REMOTE_ADDR": "10.2.3.4"})
    assert remote.status_code == 403 and "loopback" in remote.get_json()["error"]
    assert client.get("/serving").get_json()["mode"] == "follow"
    ipv6 = getattr(client, method)(path, json=body, environ_base={"REMOTE_ADDR": "::1"})
    assert ipv6.status_code == 200


def test_reading_needs_no_token(make_app, three):
    client = make_app(API_TOKEN=SECRET).test_client()
    remote = {"REMOTE_ADDR": "10.2.3.4"}
    assert client.get("/serving", environ_base=remote).status_code == 200
    assert client.get("/audit", environ_base=remote).status_code == 200


@pytest.mark.parametrize("method, path, body", CHANGES)
@pytest.mark.parametrize("header", [None, f"Bearer {SECRET}x", f"Basic {SECRET}", SECRET,
                                    f"Bearer {SECRET[:-1]}"])
def test_with_a_token_a_request_without_it_is_a_401_even_from_loopback(
        make_app, three, method, path, body, header):
    client = make_app(API_TOKEN=f"ops:{SECRET}").test_client()
    headers = {"Authorization": header} if header else {}
    answer = getattr(client, method)(path, json=body, headers=headers)
    assert answer.status_code == 401 and answer.is_json
    assert SECRET not in answer.get_data(as_text=True)
    assert client.get("/audit").get_json()["events"] == []


@pytest.mark.parametrize("token, who", [(f"ops:{SECRET}", "ops"), (SECRET, "token")])
def test_the_audit_names_the_token_holder_never_the_secret(make_app, three, log_lines, token,
                                                           who):
    client = make_app(API_TOKEN=token).test_client()
    answer = client.put("/serving", json={"version": 2, "reason": "night shift"},
                        headers={"Authorization": f"Bearer {token}"},
                        environ_base={"REMOTE_ADDR": "10.2.3.4"})
    assert answer.status_code == 200 and answer.get_json()["by"] == who
    assert client.get("/audit").get_json()["events"][0]["by"] == who
    client.put("/serving", json={"version": 2, "reason": "wrong"},
               headers={"Authorization": f"Bearer {token}!"})
    assert not any(SECRET in line for line in log_lines)


def test_the_token_is_compared_in_constant_time(make_app, three, monkeypatch):
    compared, real = [], hmac.compare_digest

    def compare_digest(given, expected):
        compared.append((given, expected))
        return real(given, expected)

    monkeypatch.setattr("app.web.access.hmac.compare_digest", compare_digest)
    client = make_app(API_TOKEN=SECRET).test_client()
    client.put("/serving", json={"version": 2, "reason": "r"},
               headers={"Authorization": f"Bearer {SECRET}"})
    assert compared == [(SECRET.encode(), SECRET.encode())]


# -- forgotten batches ----------------------------------------------------------------------

def test_versions_that_learnt_a_forgotten_batch_stay_listed_but_marked(client, home):
    learner = Learner(home)
    for i in range(1, 4):
        arrive(home, f"b{i}", seed=i)
        learner.train([f"b{i}"])
    client.put("/serving", json={"version": 3, "reason": "known good"})
    learner.forget("b2", reason="deletion request 7", by="dpo")

    models = {m["version"]: m["forgotten_batches"] for m in client.get("/models").get_json()["models"]}
    assert models == {4: [], 3: ["b2"], 2: ["b2"], 1: []}
    state = client.get("/serving").get_json()
    assert (state["version"], state["forgotten_batches"]) == (3, ["b2"])
    event = client.get("/audit?action=forget").get_json()["events"][0]
    assert (event["batch_id"], event["from_version"], event["to_version"]) == ("b2", 2, 4)
    assert event["served_learnt_it"] is True
    assert "the pinned version 3 learnt from it and is still served" in event["reason"]

    follow = client.put("/serving", json={"version": "latest", "reason": "clean model"}).get_json()
    assert (follow["version"], follow["forgotten_batches"]) == (4, [])


def test_a_refused_batch_forgotten_marks_only_the_version_that_learnt_it(client, home):
    from tests.support import salaries_times_100

    learner = Learner(home)
    for i in range(1, 4):
        arrive(home, f"b{i}", seed=i)
        learner.train([f"b{i}"])
    arrive(home, "x100", salaries_times_100("x100", 99))
    refused = learner.train(["x100"]).version
    arrive(home, "b4", seed=4)
    learner.train(["b4"])
    learner.forget("x100", reason="unit error", by="ops")
    marked = {m["version"]: m["forgotten_batches"] for m in client.get("/models").get_json()["models"]}
    assert marked == {5: [], refused: ["x100"], 3: [], 2: [], 1: []}
    event = client.get("/audit?action=forget").get_json()["events"][0]
    assert event["served_learnt_it"] is False and event["to_version"] is None
