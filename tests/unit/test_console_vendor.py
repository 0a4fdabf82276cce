"""The console serves its chart library itself: gzipped, cached for a year under a URL that
names its content. No APIs are needed: the login page and the script are the console's own."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from services.console import vendor
from services.console.config import Settings
from services.console.main import create_app

SCRIPT = re.compile(r'<script src="(/vendor/[^"]+)" defer>')
BODY = b"window.echarts = {};\n" + b"// padding\n" * 2000


async def _console(script: Path | None) -> httpx.AsyncClient:
    app = create_app(Settings())
    app.state.charts = vendor.load(script) if script else None
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console")


@pytest.fixture
def library(tmp_path: Path) -> Path:
    path = tmp_path / "echarts.common.min.js"
    path.write_bytes(BODY)
    return path


async def test_pages_load_the_chart_library_gzipped_and_cached_for_a_year(library: Path) -> None:
    async with await _console(library) as client:
        page = await client.get("/login")
        url = SCRIPT.search(page.text)
        assert url, "the page loads the chart library"
        response = await client.get(url[1], headers={"Accept-Encoding": "gzip, deflate, br"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "no-store" not in response.headers.get_list("cache-control")
    assert response.headers["vary"] == "accept-encoding"
    assert response.headers["content-type"].startswith("text/javascript")
    assert int(response.headers["content-length"]) < len(BODY) / 10
    assert response.content == BODY  # httpx undoes the gzip


async def test_the_library_url_changes_with_its_content_and_an_old_one_is_gone(
    library: Path, tmp_path: Path
) -> None:
    upgraded = tmp_path / "upgraded" / library.name
    upgraded.parent.mkdir()
    upgraded.write_text("window.echarts = {version: 2};\n")
    old, new = vendor.load(library), vendor.load(upgraded)
    assert old and new and old.url != new.url
    async with await _console(upgraded) as client:
        assert (await client.get(new.url)).status_code == 200
        assert (await client.get(old.url)).status_code == 404


async def test_a_client_refusing_gzip_gets_the_script_as_is(library: Path) -> None:
    script = vendor.load(library)
    assert script
    async with await _console(library) as client:
        response = await client.get(script.url, headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in response.headers
    assert response.content == BODY


async def test_without_the_library_installed_pages_load_no_chart_script() -> None:
    async with await _console(None) as client:
        page = await client.get("/login")
        assert not SCRIPT.search(page.text)
        assert (await client.get("/vendor/echarts.common.min.js")).status_code == 404


@pytest.mark.parametrize(
    ("header", "gzip_ok"),
    [
        ("gzip", True),
        ("gzip, deflate, br, zstd", True),
        ("br;q=1.0, gzip;q=0.8", True),
        ("*", True),
        ("gzip;q=0", False),
        ("GZIP;Q=0.0", False),
        ("identity", False),
        ("", False),
        (None, False),
    ],
)
def test_accept_encoding_allows_gzip_unless_refused(header: str | None, gzip_ok: bool) -> None:
    assert vendor.accepts_gzip(header) is gzip_ok
