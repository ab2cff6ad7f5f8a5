"""``GET /`` (the model page) and ``GET /reports/...`` through the Flask client; the browser
tests (tests/browser) open the same pages in chromium."""

import re
from pathlib import Path

import pytest

from app.observe.curve import learning_curve
from app.observe.report import evaluate_and_report
from tests.support import grow_history


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    from app.lifecycle.home import Home

    home = Home(str(tmp_path_factory.mktemp("page") / "home"))
    grow_history(home, batches=22)
    return home


@pytest.fixture
def grown_client(grown):
    from app.web import create_app

    return create_app({"TESTING": True, "CONFIGURE_LOGGING": False, "MODEL_NOTICES": False,
                       "PIPELINE_HOME": grown.url}).test_client()


def test_an_empty_home_has_a_page_that_says_so(client):
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert 'id="served-version">—<' in page
    assert "No version yet" in page and "No batch yet" in page


def test_the_page_names_what_the_model_predicts_from_what(make_app):
    from app.dataset import load

    wages = load(Path(__file__).resolve().parents[2] / "examples" / "cps1985.toml")
    page = make_app(DATASET=wages).test_client().get("/").get_data(as_text=True)
    assert ("predicts <code>wage</code> (USD/hour) from education, experience, age, ethnicity, "
            "region, gender, occupation, sector, union, married") in page


def test_the_page_shows_the_served_version_the_curve_with_drift_and_the_batches(grown_client,
                                                                                 grown):
    page = grown_client.get("/").get_data(as_text=True)
    served = grown.serving.state().version
    assert f'id="served-version">{served}<' in page
    # Follow mode: the newest version, unless the gate refused it (then the page says so).
    expected = "follow" if grown.registry.latest_version() == served else "gate"
    assert f'id="serving-kind">{expected}<' in page
    chart = re.search(r'<svg id="learning-curve".*?</svg>', page, re.S).group(0)
    drifts = [point.version for point in learning_curve(grown.registry) if point.drift]
    assert drifts and chart.count('class="drift"') == len(drifts)
    assert 'class="refused"' in chart and f"served v{served}" in chart
    assert page.count("<code>history-") == 10 and "history-0022" in page
    assert 'class="quarantined">3<' in page


def test_a_pinned_version_is_shown_as_pinned_with_its_reason(grown_client, grown):
    grown.serving.pin(5, reason="a steady version for the demo", by="test")
    try:
        page = grown_client.get("/").get_data(as_text=True)
        assert 'id="served-version">5<' in page and 'id="serving-kind">pinned<' in page
        assert "a steady version for the demo" in page
    finally:
        grown.serving.follow(reason="back to the newest", by="test")


def test_reports_are_served_by_id_and_as_latest(grown_client, grown):
    assert grown_client.get("/reports/latest").status_code in (200, 404)
    served = grown.serving.state().version
    result = evaluate_and_report(grown, served, 500, baseline_version=3)
    assert result["report_url"] == f"/reports/{result['report_id']}"
    assert result["baseline_version"] == 3 and set(result["baseline_scores"]) >= {"mae", "r2"}
    for path in (result["report_url"], "/reports/latest"):
        response = grown_client.get(path)
        assert response.status_code == 200 and response.mimetype == "text/html"
        page = response.get_data(as_text=True)
        assert page.count('src="data:image/png;base64,') == 4
        assert f"version {served} against version 3" in page
    assert result["report_id"] in grown_client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("report_id", ["no-such-report", "evaluation-v000001-20250101T000000000Z",
                                       "..%2F..%2Fetc%2Fpasswd"])
def test_an_unknown_report_is_a_json_404(grown_client, report_id):
    response = grown_client.get(f"/reports/{report_id}")
    assert response.status_code == 404 and "error" in response.json


def test_latest_before_any_evaluation_is_a_404_that_says_how_to_make_one(client):
    response = client.get("/reports/latest")
    assert response.status_code == 404 and "POST /evaluate" in response.json["error"]
