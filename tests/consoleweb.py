"""Helpers of the console tests: a server with its console, the browser, the HTTP client."""

from __future__ import annotations

import http.cookiejar
import os
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser")
SHOTS_ENV = "RMQ_CONSOLE_SCREENSHOTS"
"""A directory to save the pages' screenshots to (docs/console/ when refreshing the docs)."""


def chromium() -> str:
    """Debian's chromium (``make chromium``); the browser tests are skipped, saying why, without it."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no chromium on PATH: `make chromium` installs Debian's package (needs root or sudo)")


def shots_dir(default: Path) -> Path:
    where = Path(os.environ.get(SHOTS_ENV) or default)
    where.mkdir(parents=True, exist_ok=True)
    return where


class Browserless:
    """An HTTP client with a cookie jar, that does not follow redirects (tests read them)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect())

    def request(self, path: str, data: dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(self.base + path, data=body, headers=headers or {})
        try:
            with self.opener.open(request, timeout=30) as answer:
                return answer.status, answer.read().decode(), dict(answer.headers)
        except urllib.error.HTTPError as failed:
            return failed.code, failed.read().decode(), dict(failed.headers)

    def csrf(self, path: str = "/topics") -> str:
        _, page, _ = self.request(path)
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        assert found is not None, page[:2000]
        return found.group(1)
