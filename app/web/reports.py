"""``GET /reports/<id>`` and ``GET /reports/latest``: the HTML evaluation reports.

``pipeline.evaluate`` writes them (app/observe/report.py) under ``reports/`` of the pipeline
home; its result names one as ``report_url``. Each page is self-contained (plots inlined).
"""

from __future__ import annotations

from flask import Blueprint, Response
from werkzeug.exceptions import NotFound

from app.observe.report import read_report
from app.web.openapi import documented
from app.web.holder import get_home

bp = Blueprint("reports", __name__)


@bp.get("/reports/<report_id>")
@documented(responses={200: "the report, an HTML page with its plots inlined"})
def report(report_id: str):
    """One evaluation report (``latest``: the newest); 404 when there is none by that id."""
    try:
        page = read_report(get_home().storage, report_id)
    except FileNotFoundError:
        if report_id == "latest":
            raise NotFound("no evaluation has been run yet: POST /evaluate makes a report") from None
        raise NotFound(f"there is no report {report_id}") from None
    return Response(page, mimetype="text/html")
