"""Why an install failed, in one line: the index refused the login, was down, or lacks a version.

pip and uv print pages of output for these (retries, resolver explanations), and pip prints
nothing at all about a 401: it only says "from versions: none". The installer's output stays
in the verbose log; the error names the cause and the index host. When the output alone does
not tell (pip's "from versions: none"), one GET of the index's page for the package, with the
build's login, does: 401/403 is the login, 404 an index without the package.

Only causes that are certainly not "no wheel for the target" are named here; the rest is left
to the no-wheel hint, which points to a container build.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import urllib.error
import urllib.request
from collections.abc import Sequence
from urllib.parse import urlsplit

from ..errors import BuildError
from .foundation import Credentials

_URL_RE = re.compile(r"https?://[^\s,()'\"`]+")
_AUTH_RE = re.compile(r"\b(401|403)\b[ )]*(?:Client Error|Unauthorized|Forbidden)", re.IGNORECASE)
_DOWN_RE = re.compile(
    r"Connection refused|Failed to establish a new connection|tcp connect error|Name or service not known|"
    r"Temporary failure in name resolution|nodename nor servname|dns error|timed out|Network is unreachable",
    re.IGNORECASE,
)
_PIP_VERSIONS_RE = re.compile(r"satisfies the requirement ([A-Za-z0-9._-]+)==(\S+) \(from versions: ([^)]*)\)")
_UV_NO_VERSION_RE = re.compile(r"there is no version of ([A-Za-z0-9._-]+)==([^\s,]+)")
_UV_NOT_FOUND_RE = re.compile(r"Because ([A-Za-z0-9._-]+) was not found in the package registry")


class IndexFailure(BuildError):
    """The installer could not get the pins from the index: wrong login, index down, missing version."""


@dataclasses.dataclass(frozen=True)
class _Pin:
    name: str
    version: str
    index_url: str | None


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else url


def _without_login(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=_host(url)).geturl()


def _index_urls(output: str, pins: Sequence[_Pin], credentials: Credentials | None) -> list[str]:
    """Indexes the install used, best first: recorded with the pins, the login's, named in the output."""
    urls = [p.index_url for p in pins if p.index_url]
    if credentials is not None:
        urls.append(credentials.index_url)
    urls += [u for u in _URL_RE.findall(output) if "pypi.org" not in u and u.rstrip("/").endswith("/simple")]
    return [_without_login(u) for u in urls if u.startswith(("http://", "https://"))]


def _probe(index_url: str, name: str, credentials: Credentials | None) -> int | None:
    """HTTP status of the index's page for ``name`` (with the build's login for that index), ``None`` if unreachable."""
    url = index_url.rstrip("/") + f"/{name}/"
    headers = {}
    if credentials is not None and _host(credentials.index_url) == _host(index_url):
        token = f"{credentials.username}:{credentials.password}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except (OSError, ValueError):
        return None


def index_failure(output: str, pins: Sequence[_Pin], *, tool: str, credentials: Credentials | None = None) -> str:
    """One line naming why the index did not serve the pins, or ``""`` when the output shows no such cause."""
    urls = _index_urls(output, pins, credentials)
    named = [u for u in _URL_RE.findall(output) if "pypi.org" not in u]
    host = _host(named[0] if named else urls[0]) if (named or urls) else "the index"
    where = f"the index at {host}"
    auth = _AUTH_RE.search(output)
    if auth:
        return f"{tool} could not install the pins: {where} refused the login (HTTP {auth.group(1)}): check the credentials for {host}"
    if _DOWN_RE.search(output):
        return f"{tool} could not install the pins: {where} could not be reached (connection refused or timed out): is it down?"
    match = _PIP_VERSIONS_RE.search(output) or _UV_NO_VERSION_RE.search(output)
    offered = match.group(3).strip() if match and match.re is _PIP_VERSIONS_RE else ""
    if match and offered != "none":
        also = f" (it offers {offered})" if offered else ""
        return f"{tool} could not install the pins: {where} has no version {match.group(2)} of {match.group(1)}{also}"
    missing = match.group(1) if match else (_UV_NOT_FOUND_RE.search(output) or [None, None])[1]
    if missing is None or not urls:
        return ""
    status = _probe(urls[0], missing, credentials)
    if status in (401, 403):
        return f"{tool} could not install the pins: {where} refused the login (HTTP {status}): check the credentials for {host}"
    if status is None:
        return f"{tool} could not install the pins: {where} could not be reached: is it down?"
    if status == 404:
        return f"{tool} could not install the pins: {where} does not serve {missing} at all"
    return ""


def raise_index_failure(output: str, pins: Sequence[object], *, tool: str, credentials: Credentials | None) -> None:
    """Raise ``IndexFailure`` (one line) when the install failed because of the index."""
    plain = [
        _Pin(
            name=str(getattr(p, "name", "")),
            version=str(getattr(p, "version", "")),
            index_url=getattr(p, "index_url", None),
        )
        for p in pins
    ]
    line = index_failure(output, plain, tool=tool, credentials=credentials)
    if line:
        raise IndexFailure(f"{line} (the installer's output is in the verbose log)")
