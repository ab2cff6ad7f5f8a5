"""The model page and an evaluation report, opened in headless chromium: they render without
a console error, the chart and the served version are there, and the report's images load."""

import pytest

from app.observe.report import evaluate_and_report

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


# A plot is drawn on white: a bottom corner left transparent means the PNG broke off early
# (a truncated image still has its size, so naturalWidth alone cannot tell).
FULLY_DECODED = """
const image = arguments[0];
if (!image.complete || image.naturalWidth === 0) return false;
const canvas = document.createElement("canvas");
canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
const context = canvas.getContext("2d");
context.drawImage(image, 0, 0);
return context.getImageData(canvas.width - 2, canvas.height - 2, 1, 1).data[3] === 255;
"""


def fully_decoded(browser, image) -> bool:
    return browser.execute_script(FULLY_DECODED, image)


def console_errors(browser) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def test_the_model_page_shows_the_served_version_the_curve_and_the_batches(
        browser, site, history_home, screenshot):
    served = history_home.serving.state().version
    evaluate_and_report(history_home, served, 2000, baseline_version=served - 6)
    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(site + "/")
    assert console_errors(browser) == []
    assert browser.find_element("id", "served-version").text == str(served)
    assert browser.find_element("id", "serving-kind").text.lower() == "follow"
    chart = browser.find_element("id", "learning-curve")
    assert chart.tag_name == "svg" and chart.size["width"] > 600
    assert len(chart.find_elements("css selector", ".drift")) >= 1
    assert len(chart.find_elements("css selector", ".refused")) >= 1
    assert chart.find_element("css selector", ".served-label").text == f"served v{served}"
    rows = browser.find_elements("css selector", "#batches tbody tr")
    assert len(rows) == 10 and "history-0032" in rows[0].text
    quarantined = [row for row in rows if row.find_elements("css selector", "td.quarantined")]
    assert quarantined, "batches with quarantined rows are marked"
    assert browser.find_element("id", "flower-link").get_attribute("href").endswith(":5555/")
    screenshot("model-page.png")


def test_a_report_opened_from_the_page_loads_every_plot(browser, site, history_home, screenshot):
    served = history_home.serving.state().version
    evaluate_and_report(history_home, served, 2000)
    browser.get(site + "/")
    browser.get_log("browser")
    browser.find_element("css selector", "#reports a").click()
    assert "/reports/evaluation-v" in browser.current_url
    assert console_errors(browser) == []
    images = browser.find_elements("tag name", "img")
    assert len(images) == 4
    for image in images:
        assert fully_decoded(browser, image), f"{image.get_attribute('alt')} did not load"
    assert f"version {served}" in browser.find_element("tag name", "h1").text
    screenshot("report.png")
