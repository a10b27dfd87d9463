"""Where image bytes come from: local paths, or object storage (``s3://``, ``gs://``, ``http(s)://``).

Object storage goes through fsspec (s3fs, gcsfs, fsspec's HTTP file system: the ``[s3]``,
``[gcs]``, ``[http]`` extras) with each library's standard credential chain (environment,
config files, instance metadata / workload identity); S3-compatible servers (MinIO, Ceph, a
test server) are reached through the standard ``AWS_ENDPOINT_URL`` variable. Every request
has a bounded timeout and failed requests are retried here (the libraries' own retries are
switched off, so one setting bounds them all). A failure becomes the same kind of skip
reason a local file gets (``missing``, ``unreadable``, ``too large``, ``empty file``) or
``network error`` after the last attempt; it never stops the run.

Locations: a local root is a path; a remote root is its URL without the trailing slash; a
candidate's path is relative to the root, or an absolute URL (CSV rows listing URLs).
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from featurebench.data.decode import SkipImage, read_image_bytes
from featurebench.errors import FeaturebenchError

#: URL scheme -> fsspec protocol.
PROTOCOLS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "http": "http", "https": "http"}
#: fsspec protocol -> (the module it needs, the featurebench extra that installs it).
_PACKAGES = {"s3": ("s3fs", "s3"), "gcs": ("gcsfs", "gcs"), "http": ("aiohttp", "http")}
#: Protocols that can be listed (HTTP has no listing: give a CSV of URLs).
LISTABLE = frozenset({"s3", "gcs"})


#: Environment variables that say *where* object storage is (never credentials): passed from the
#: driver to its Ray workers so they read the same server; each node keeps its own credentials.
LOCATION_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION",
                      "STORAGE_EMULATOR_HOST")


def storage_settings() -> dict[str, str]:
    """The :data:`LOCATION_VARIABLES` set in this process."""
    return {name: os.environ[name] for name in LOCATION_VARIABLES if os.environ.get(name)}


@dataclass(frozen=True)
class RemoteAccess:
    """How object storage is read: seconds per request at most, attempts per object, first back-off."""

    timeout: float = 30.0
    attempts: int = 3
    backoff: float = 0.5


def is_remote(location: object) -> bool:
    """True for an object-storage URL (``s3://``, ``gs://``, ``http(s)://``)."""
    if not isinstance(location, str) or "://" not in location:
        return False
    return location.split("://", 1)[0].lower() in PROTOCOLS


def protocol_of(url: str) -> str:
    """The fsspec protocol of an object-storage URL (``s3``, ``gcs``, ``http``)."""
    return PROTOCOLS[url.split("://", 1)[0].lower()]


def url_name(url: str) -> str:
    """The last path component of a URL, without its query (``.../cat.jpg?X=1`` -> ``cat.jpg``)."""
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]


def normalize_root(location: str | os.PathLike) -> str | Path:
    """A remote root as its URL without trailing slashes; a local one as an absolute path."""
    if is_remote(location):
        return str(location).rstrip("/")
    return Path(location).expanduser().resolve()


def location_of(root: str | os.PathLike, path: str) -> str | Path:
    """Where candidate ``path`` (relative to ``root``, or an absolute URL) is."""
    if is_remote(path):
        return path
    if is_remote(root):
        return f"{str(root).rstrip('/')}/{path}"
    return Path(root) / path


def read_bytes(location: str | Path, max_bytes: int, access: RemoteAccess = RemoteAccess()) -> bytes:
    """The bytes of a local file or a remote object, or :class:`SkipImage` saying why not."""
    if is_remote(location):
        return read_object(str(location), max_bytes, access)
    return read_image_bytes(Path(location), max_bytes)


def _missing_package(protocol: str) -> FeaturebenchError:
    module, extra = _PACKAGES[protocol]
    return FeaturebenchError(f"Reading {protocol}:// sources needs {module}, which is not installed; "
                             f"pip install 'featurebench[{extra}]'.")


@functools.lru_cache(maxsize=None)
def filesystem(protocol: str, timeout: float):
    """The fsspec file system of ``protocol`` with ``timeout`` seconds per request and no retries
    of its own (one per process and setting; fsspec file systems are thread-safe)."""
    try:
        for module in ("fsspec", _PACKAGES[protocol][0]):
            __import__(module)
    except ImportError:
        raise _missing_package(protocol) from None
    if protocol == "s3":
        kwargs = {"config_kwargs": {"connect_timeout": timeout, "read_timeout": timeout,
                                    "retries": {"max_attempts": 1, "mode": "standard"}}}
    elif protocol == "gcs":
        # retry_timeout bounds gcsfs's lookup of each bucket's layout (zonal / hierarchical), a
        # Storage Control API call over gRPC that gcsfs otherwise retries for 60 s.
        kwargs = {"timeout": timeout, "retry_timeout": timeout}
    else:
        import aiohttp

        kwargs = {"client_kwargs": {"timeout": aiohttp.ClientTimeout(total=timeout)}}
    fs = _filesystem_class(protocol)(skip_instance_cache=True, **kwargs)
    if hasattr(fs, "retries"):  # s3fs and gcsfs retry on their own; the attempts here replace that
        fs.retries = 1
    return fs


def _filesystem_class(protocol: str):
    """fsspec's class for ``protocol``; for a GCS emulator (``STORAGE_EMULATOR_HOST``) gcsfs's
    JSON-API class. Emulators serve the JSON API only, while gcsfs's default class first asks
    the gRPC Storage Control API for the bucket's layout, again for every object while that
    fails: with an anonymous token each ask is retried (60 s by default) against the emulator's
    plain-HTTP port, otherwise it prints a warning per object."""
    import fsspec

    if protocol == "gcs" and os.environ.get("STORAGE_EMULATOR_HOST"):
        from gcsfs.core import GCSFileSystem

        return GCSFileSystem
    return fsspec.get_filesystem_class(protocol)


def _fs(url: str, access: RemoteAccess):
    return filesystem(protocol_of(url), float(access.timeout))


def _retried(action, url: str, access: RemoteAccess):
    """``action()`` with ``access.attempts`` attempts and doubling back-off. Missing objects,
    refused permissions and folders are answered at once (retrying cannot change them)."""
    for attempt in range(max(1, access.attempts)):
        try:
            return action()
        except (FileNotFoundError, PermissionError, IsADirectoryError, SkipImage, FeaturebenchError):
            raise
        except Exception as exc:  # noqa: BLE001 - timeouts, resets, 5xx: each library has its own types
            if _range_not_satisfiable(exc):
                raise _EmptyObject() from None
            last = exc
            if attempt + 1 < access.attempts:
                time.sleep(access.backoff * 2 ** attempt)
    detail = str(last).strip().splitlines()[0][:200] if str(last).strip() else ""
    raise _NetworkError(f"{type(last).__name__}{': ' + detail if detail else ''} "
                        f"({max(1, access.attempts)} attempt(s), {access.timeout:g} s timeout each)")


class _NetworkError(Exception):
    """The last attempt at a remote request failed."""


class _EmptyObject(Exception):
    """A ranged read of a 0-byte object (S3 and HTTP servers answer 416)."""


def _range_not_satisfiable(exc: Exception) -> bool:
    return getattr(exc, "status", None) == 416 or "range is not satisfiable" in str(exc).lower() \
        or "range not satisfiable" in str(exc).lower()


def _first_bytes(fs, url: str, count: int) -> bytes:
    """The first ``count`` bytes of an object: one ranged GET; over HTTP a streamed GET read no
    further than ``count`` (a server may ignore the range and send the whole body)."""
    if protocol_of(url) == "http":
        with fs.open(url, "rb", block_size=0) as handle:
            return handle.read(count)
    return fs.cat_file(url, start=0, end=count)


def read_object(url: str, max_bytes: int, access: RemoteAccess = RemoteAccess()) -> bytes:
    """At most ``max_bytes`` + 1 bytes of a remote object (one ranged GET), or :class:`SkipImage`."""
    fs = _fs(url, access)
    try:
        data = _retried(lambda: _first_bytes(fs, url, max_bytes + 1), url, access)
    except FileNotFoundError:
        raise SkipImage("missing", "file not found")  # the words a local file gets from None
    except PermissionError:
        raise SkipImage("unreadable", "access denied (check the credentials)") from None
    except IsADirectoryError:
        raise SkipImage("unreadable", "is a directory") from None
    except _NetworkError as exc:
        raise SkipImage("network error", str(exc)) from None
    except _EmptyObject:
        raise SkipImage("empty file", "0 bytes") from None
    except ValueError as exc:  # e.g. an HTTP server that refuses the range request
        raise SkipImage("unreadable", str(exc)[:200]) from None
    if not data:
        raise SkipImage("empty file", "0 bytes")
    if len(data) > max_bytes:
        raise SkipImage("too large", f"the object has more than {max_bytes:,} bytes, over the limit "
                        "(raise --max-file-mb to allow)")
    return bytes(data)


def _listing_error(url: str, exc: BaseException) -> FeaturebenchError:
    if isinstance(exc, FileNotFoundError):
        return FeaturebenchError(f"{url} does not exist (no such bucket, prefix or object); check the URL")
    if isinstance(exc, PermissionError):
        return FeaturebenchError(
            f"{url}: access denied ({str(exc).strip()[:200] or 'credentials refused'}). Set the credentials "
            "the standard way (S3: AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, an instance role; "
            "GCS: GOOGLE_APPLICATION_CREDENTIALS or workload identity); for an S3-compatible server set "
            "AWS_ENDPOINT_URL.")
    return FeaturebenchError(f"Could not reach {url}: {exc}")


def list_objects(url: str, access: RemoteAccess = RemoteAccess()) -> list[str]:
    """Every object below the prefix ``url``, as paths relative to it (folder markers left out)."""
    protocol = protocol_of(url)
    if protocol not in LISTABLE:
        raise FeaturebenchError(f"{url}: {protocol}:// locations cannot be listed; give a CSV/TSV of "
                                "url,label rows instead (the CSV may itself be a URL)")
    fs = _fs(url, access)
    base = fs._strip_protocol(url).rstrip("/")
    try:
        keys = _retried(lambda: fs.find(base, withdirs=False), url, access)
    except (OSError, _NetworkError) as exc:
        raise _listing_error(url, exc) from None
    relative = (key[len(base) + 1:] for key in keys if key.startswith(base + "/"))
    return [key for key in relative if key and not key.endswith("/")]


def read_text(url: str, access: RemoteAccess = RemoteAccess(), max_bytes: int = 1 << 30) -> str:
    """A remote text file (a CSV/TSV listing), UTF-8 with or without a byte-order mark."""
    fs = _fs(url, access)
    try:
        data = _retried(lambda: _first_bytes(fs, url, max_bytes + 1), url, access)
    except _EmptyObject:
        data = b""
    except (OSError, _NetworkError) as exc:
        raise _listing_error(url, exc) from None
    if len(data) > max_bytes:
        raise FeaturebenchError(f"{url} is larger than {max_bytes:,} bytes; that is not a listing")
    try:
        return bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FeaturebenchError(f"{url} is not UTF-8 text ({exc}); a listing is a UTF-8 CSV/TSV") from None
