"""The one way commands reach the running system: its HTTP API, as any client would.

The address is ``--url`` / ``PIPELINE_URL``, else ``http://WEB_HOST:WEB_PORT`` as ``make run``
binds it; the token ``--token`` / ``API_TOKEN``. Errors come back as :class:`ApiError` holding
the API's own sentence, or a sentence saying the system does not answer.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

TIMEOUT = 30.0


class ApiError(RuntimeError):
    """The request failed: ``status`` is the HTTP status (None when nothing answered)."""

    def __init__(self, message: str, status: int | None = None, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body


class ApiClient:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = TIMEOUT):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    @classmethod
    def from_environment(cls, url: str | None = None, token: str | None = None) -> ApiClient:
        if not url:
            host = os.environ.get("WEB_HOST") or "127.0.0.1"
            if host in ("0.0.0.0", "::"):
                host = "127.0.0.1"  # bound to every address: this machine's is one of them
            url = f"http://{host}:{os.environ.get('WEB_PORT') or '5000'}"
        return cls(url, token if token is not None else os.environ.get("API_TOKEN") or None)

    def request(self, method: str, path: str, body: Any = None,
                query: dict[str, Any] | None = None, raw: bytes | None = None) -> Any:
        """Send one request; the JSON answer, or :class:`ApiError`."""
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            payload = error.read()
            try:
                answer = json.loads(payload)
                message = answer.get("error") or f"HTTP {error.code}"
            except (ValueError, AttributeError):
                answer, message = None, f"HTTP {error.code} from {url}"
            raise ApiError(message, error.code, answer) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ApiError(f"the pipeline's web app does not answer at {self.base_url} "
                           f"({reason}); is `make run` running? (--url or PIPELINE_URL "
                           "names another)") from None
        return json.loads(payload) if payload else None
