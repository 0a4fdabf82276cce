"""The chart library the console serves itself (never from a CDN): ECharts' common build,
gzipped once per process, under a URL that names its content so browsers keep it for a year.

The common build (715 KB, 240 KB gzipped) has everything console.js asks for: line and bar
series, the grid with two value axes, the axis tooltip, the scrolling legend, aria and the
canvas renderer. The simple build (500 KB) has no legend and no tooltip, so a chart of six
lines could not say which is which; the full one (1.1 MB) adds maps, graphs and the like that
no page draws.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

# Built by `npm ci` in this folder (make install / dev / test); absent without node. The
# Dockerfile copies this one file: keep its COPY in step.
ECHARTS = (
    Path(__file__).resolve().parent
    / "node_modules"
    / "echarts"
    / "dist"
    / ("echarts.common.min.js")
)
# The URL changes with the content, so a cached copy never outlives an upgrade.
CACHE_FOREVER = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Script:
    name: str
    body: bytes
    gzipped: bytes

    @property
    def url(self) -> str:
        return f"/vendor/{self.name}"


@functools.cache
def load(path: Path = ECHARTS) -> Script | None:
    """The script at `path` named by its digest, or None when it is not installed."""
    if not path.exists():
        return None
    body = path.read_bytes()
    digest = hashlib.sha256(body).hexdigest()[:16]
    stem = path.name.removesuffix(".js")
    return Script(f"{stem}.{digest}.js", body, gzip.compress(body, compresslevel=9, mtime=0))


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an Accept-Encoding header allows gzip (`gzip;q=0` refuses it)."""
    for part in (accept_encoding or "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "*"):
            continue
        quality = params.strip().lower()
        if quality.startswith("q="):
            try:
                return float(quality[2:]) > 0
            except ValueError:
                return False
        return True
    return False
