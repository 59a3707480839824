"""Sources: files named by their sha256, fetched once into a content-addressed cache.

Each download goes into a `.unverified-` file beside its final place, is checked against its checksum
and only then renamed into `<cache>/sha256/<hex>`. Nothing unverified is ever found under a checksum,
so an item present in the cache is trusted and never fetched again. When another process stores the
same item first, its copy is kept and ours dropped: both hold the same bytes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import requests
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from imgfront.errors import ImgfrontError, UsageError
from imgfront.pipeline.model import Sources
from imgfront.util.files import cache_home

CHUNK = 1 << 20
TIMEOUT = (10, 60)  # seconds to connect, seconds between bytes


class _Transient(Exception):
    """A network failure that another attempt may not meet: refused, reset, timed out, 5xx or 429."""


def default_cache_dir() -> Path:
    return cache_home() / "imgfront" / "sources"


def cache_path(cache_dir: Path, checksum: str) -> Path:
    algorithm, _, digest = checksum.partition(":")
    if algorithm != "sha256" or len(digest) != 64:
        raise UsageError(f"unsupported checksum {checksum!r}", hint="write it as sha256:<64 hex digits>")
    return cache_dir / "sha256" / digest


def fetch(
    sources: Sources,
    needed: Iterable[str],
    cache_dir: Path | None = None,
    *,
    jobs: int = 4,
    attempts: int = 4,
    wait: float = 1.0,
) -> dict[str, Path]:
    """Make every needed checksum present in the cache, downloading the missing ones in parallel."""
    cache_dir = cache_dir or default_cache_dir()
    found: dict[str, Path] = {}
    missing: list[tuple[str, str]] = []
    for checksum in sorted(set(needed)):
        path = cache_path(cache_dir, checksum)
        if path.is_file():
            found[checksum] = path
            continue
        try:
            missing.append((checksum, sources.url(checksum)))
        except KeyError:
            raise UsageError(f"source {checksum} is needed but has no URL in sources") from None
    if not missing:
        return found
    (cache_dir / "sha256").mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(missing)))) as pool:
        futures = {c: pool.submit(_fetch_one, cache_path(cache_dir, c), c, url, attempts, wait) for c, url in missing}
    errors: list[ImgfrontError] = []
    for checksum, future in futures.items():
        try:
            found[checksum] = future.result()
        except ImgfrontError as e:
            errors.append(e)
    if errors:
        others = f"{len(errors) - 1} other source(s) failed too" if len(errors) > 1 else None
        raise ImgfrontError(errors[0].message, hint=others or errors[0].hint)
    return found


def _fetch_one(target: Path, checksum: str, url: str, attempts: int, wait: float) -> Path:
    fd, name = tempfile.mkstemp(prefix=".unverified-", dir=target.parent)
    os.close(fd)
    temp = Path(name)
    try:
        retrying = Retrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=wait, max=30),
            reraise=True,
        )
        try:
            digest = retrying(_download, url, temp)
        except _Transient as e:
            raise ImgfrontError(f"cannot fetch {url}: {e}", hint=f"gave up after {attempts} attempts") from e
        if f"sha256:{digest}" != checksum:
            raise ImgfrontError(f"source {checksum} from {url} does not match: what arrived is sha256:{digest}")
        os.chmod(temp, 0o644)
        if not target.exists():  # else a concurrent fetch won: its copy is the same bytes
            os.rename(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return target


def _download(url: str, temp: Path) -> str:
    """One attempt: write what `url` holds into `temp` (from its start) and return its sha256."""
    digest = hashlib.sha256()
    with open(temp, "wb") as out:
        for chunk in _chunks(url):
            out.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def _chunks(url: str) -> Iterable[bytes]:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        try:
            with open(url2pathname(parsed.path), "rb") as f:
                yield from iter(lambda: f.read(CHUNK), b"")
        except OSError as e:
            raise ImgfrontError(f"cannot read {url}: {e.strerror}") from e
        return
    if parsed.scheme not in ("http", "https"):
        raise UsageError(f"cannot fetch {url}: only http, https and file URLs are supported")
    try:
        with requests.get(url, stream=True, timeout=TIMEOUT, headers={"User-Agent": "imgfront"}) as response:
            if response.status_code >= 500 or response.status_code == 429:
                raise _Transient(f"HTTP {response.status_code} {response.reason}")
            if response.status_code >= 400:
                raise ImgfrontError(f"cannot fetch {url}: HTTP {response.status_code} {response.reason}")
            yield from response.iter_content(CHUNK)
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as e:
        raise _Transient(str(e)) from e
