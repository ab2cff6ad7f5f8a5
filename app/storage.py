"""The one place that touches files: a local folder or an S3-compatible bucket, same interface.

``PIPELINE_HOME`` is a URL: a path (``./var``) or ``s3://bucket/prefix``. :func:`open_storage`
asks fsspec which filesystem the URL names and returns a :class:`Storage` over its root. The
lake, the registry, the ledger, the audit and the reports all go through it, with keys such as
``models/versions/000000042.json``; nothing else knows where they live.

Two writes matter to every caller, and both are atomic on either backend:

- :meth:`Storage.write_bytes` replaces a key: a reader sees the old bytes or the new, never half.
  Locally that is a temporary file, fsync and rename; an object store's PUT is already atomic.
- :meth:`Storage.create` writes a key only if it does not exist yet, and raises
  :class:`FileExistsError` otherwise: two writers racing for one name cannot both win. Locally
  it is an exclusive hard link of a synced temporary file; on S3 a conditional PUT
  (``If-None-Match: *``).

Every failure of the storage itself is an :class:`OSError`: a local folder raises its own, and
an object store's client errors (botocore's, which are not ``OSError``: an endpoint that refuses,
a timeout) come out of :class:`ObjectStorage` as :class:`StorageUnavailable`. So a caller has one
type to catch for "the store cannot be used now", and the web app one handler (a 503).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import wraps
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import fsspec
from fsspec.implementations.local import LocalFileSystem

from app.refusals import CHECK_TIMEOUT, network_trouble
from app.settings import redact

# A name in a key: anything a file may be called (a user's file dropped in the inbox may have
# spaces or accents), but no separator, and no leading dot: that keeps ``..`` out, and hides
# the temporaries of atomic writes from listings.
_KEY_PART = re.compile(r"[^./\\\x00][^/\\\x00]*")


def check_key(key: str) -> str:
    """``key`` when it is a relative path of safe names; ``ValueError`` otherwise.

    >>> check_key("models/versions/000000001.json")
    'models/versions/000000001.json'
    >>> check_key("inbox/wages 2024.csv")
    'inbox/wages 2024.csv'
    >>> check_key("../etc/passwd")
    Traceback (most recent call last):
    ValueError: invalid storage key '../etc/passwd'
    """
    parts = key.split("/")
    if not key or not all(_KEY_PART.fullmatch(part) for part in parts):
        raise ValueError(f"invalid storage key {key!r}")
    return key


class StorageUnavailable(ConnectionError):
    """The store did not answer (a refused connection, a timeout, no keys): try again later."""


class Storage:
    """Keys (``/``-separated relative paths) to bytes, under one root URL."""

    url: str

    def read_bytes(self, key: str) -> bytes:
        """The bytes at ``key``; ``FileNotFoundError`` when there are none."""
        raise NotImplementedError

    def write_bytes(self, key: str, data: bytes) -> None:
        """Put ``data`` at ``key``, replacing what was there, atomically."""
        raise NotImplementedError

    def create(self, key: str, data: bytes) -> None:
        """Put ``data`` at ``key`` only if nothing is there; ``FileExistsError`` otherwise."""
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        """Remove ``key``; a key that is already gone is not an error."""
        raise NotImplementedError

    def list(self, prefix: str) -> list[str]:
        """Names of the keys directly under ``prefix`` (not sub-prefixes), sorted."""
        raise NotImplementedError

    def folders(self, prefix: str) -> list[str]:
        """Names of the sub-prefixes directly under ``prefix``, sorted."""
        raise NotImplementedError

    def delete_tree(self, prefix: str) -> int:
        """Remove every key under ``prefix``; how many there were."""
        raise NotImplementedError

    def info(self, key: str) -> tuple[int, float]:
        """``(size in bytes, last modified as a POSIX time)``; ``FileNotFoundError`` if absent."""
        raise NotImplementedError

    def open(self, key: str):
        """A binary file object to read ``key`` from, in pieces (a large file is never read
        whole); ``FileNotFoundError`` if absent."""
        raise NotImplementedError

    def move(self, key: str, new_key: str) -> None:
        """Rename ``key`` to ``new_key``, replacing what was there."""
        raise NotImplementedError

    def signature(self, key: str) -> Any:
        """Something that changes whenever ``key`` is rewritten (None when it is absent).

        One cheap call (a ``stat``, a ``HEAD``), for readers that poll a marker.
        """
        raise NotImplementedError

    def local_path(self, key: str) -> Path | None:
        """The file behind ``key`` when storage is a local folder, else None."""
        return None

    def sweep_temporaries(self, prefix: str, older_than: float = 60.0) -> int:
        """Delete what crashed writes left under ``prefix``, once ``older_than`` seconds old
        (younger ones may be writes under way); how many. Object stores leave none."""
        return 0

    # -- JSON, the format of every document the pipeline keeps ------------------------------

    def read_json(self, key: str) -> Any:
        return json.loads(self.read_bytes(key))

    def write_json(self, key: str, document: Any) -> None:
        self.write_bytes(key, _json_bytes(document))

    def create_json(self, key: str, document: Any) -> None:
        self.create(key, _json_bytes(document))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


def _json_bytes(document: Any) -> bytes:
    # allow_nan=False: a NaN would be written as a token no JSON parser but Python's accepts.
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode()


class LocalStorage(Storage):
    """A folder on this machine; writes are fsynced, then renamed into place."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.url = str(self.root)

    def local_path(self, key: str) -> Path:
        return self.root / check_key(key)

    def read_bytes(self, key: str) -> bytes:
        return self.local_path(key).read_bytes()

    @contextlib.contextmanager
    def _synced_temp(self, path: Path, data: bytes) -> Iterator[Path]:
        """``data`` in a synced temporary file beside ``path`` (one file system for the rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            yield Path(name)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self.local_path(key)
        with self._synced_temp(path, data) as temp:
            os.replace(temp, path)
        _fsync_dir(path.parent)

    def create(self, key: str, data: bytes) -> None:
        path = self.local_path(key)
        with self._synced_temp(path, data) as temp:
            # link() fails when the name is taken: an exclusive rename.
            os.link(temp, path)
        _fsync_dir(path.parent)

    def exists(self, key: str) -> bool:
        return self.local_path(key).exists()

    def delete(self, key: str) -> None:
        self.local_path(key).unlink(missing_ok=True)

    def list(self, prefix: str) -> list[str]:
        return self._entries(prefix, files=True)

    def folders(self, prefix: str) -> list[str]:
        return self._entries(prefix, files=False)

    def _entries(self, prefix: str, files: bool) -> list[str]:
        folder = self.local_path(prefix) if prefix else self.root
        try:
            entries = os.scandir(folder)
        except (FileNotFoundError, NotADirectoryError):
            return []
        with entries:
            return sorted(entry.name for entry in entries
                          if (entry.is_file() if files else entry.is_dir())
                          and not entry.name.startswith("."))

    def delete_tree(self, prefix: str) -> int:
        folder = self.local_path(prefix)
        removed = sum(1 for path in folder.rglob("*") if path.is_file())
        shutil.rmtree(folder, ignore_errors=True)
        return removed

    def signature(self, key: str) -> Any:
        try:
            stat = os.stat(self.local_path(key))
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def info(self, key: str) -> tuple[int, float]:
        stat = os.stat(self.local_path(key))
        return stat.st_size, stat.st_mtime

    def open(self, key: str):
        return open(self.local_path(key), "rb")

    def move(self, key: str, new_key: str) -> None:
        target = self.local_path(new_key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.local_path(key), target)
        _fsync_dir(target.parent)

    def sweep_temporaries(self, prefix: str, older_than: float = 60.0) -> int:
        removed = 0
        folder = self.local_path(prefix) if prefix else self.root
        cutoff = time.time() - older_than
        for path in folder.rglob(".*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime <= cutoff:
                    path.unlink()
                    removed += 1
        return removed


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _client_trouble(error: Exception) -> bool:
    """Whether ``error`` is botocore's own (not imported here unless S3 is in use)."""
    exceptions = sys.modules.get("botocore.exceptions")
    return exceptions is not None and isinstance(error, exceptions.BotoCoreError)


def _unavailable_as_oserror(method: Callable) -> Callable:
    """``method``, with the object store's client errors raised as :class:`StorageUnavailable`."""

    @wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception as error:
            if _client_trouble(error):
                raise StorageUnavailable(f"{redact(self.url)}: {redact(str(error))}") from error
            raise

    return call


def _client_errors_as_oserror(cls: type) -> type:
    """Wrap each method of the interface that ``cls`` defines in :func:`_unavailable_as_oserror`."""
    for name in ("read_bytes", "write_bytes", "create", "exists", "delete", "list", "folders",
                 "delete_tree", "signature", "info", "open", "move"):
        if name in vars(cls):
            setattr(cls, name, _unavailable_as_oserror(vars(cls)[name]))
    return cls


@_client_errors_as_oserror
class ObjectStorage(Storage):
    """Any fsspec filesystem whose single PUT is atomic: S3 and what speaks its protocol.

    Its client's errors are raised as :class:`StorageUnavailable` (see the module's note).
    """

    def __init__(self, fs: fsspec.AbstractFileSystem, root: str, url: str):
        self._fs, self._pid = fs, os.getpid()
        self.root = root.rstrip("/")
        self.url = url

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        """This process's filesystem. fsspec's async ones (s3fs) refuse to be used across a
        fork, and processes are forked after the storage is opened: gunicorn's workers from
        the preloaded app, Celery's pool from the worker."""
        if self._pid != os.getpid():
            self._fs, self._pid = _filesystem(self.url)[0], os.getpid()
        return self._fs

    def _path(self, key: str) -> str:
        return f"{self.root}/{check_key(key)}" if key else self.root

    def read_bytes(self, key: str) -> bytes:
        return self.fs.cat_file(self._path(key))

    def write_bytes(self, key: str, data: bytes) -> None:
        self.fs.pipe_file(self._path(key), data)

    def create(self, key: str, data: bytes) -> None:
        try:
            self.fs.pipe_file(self._path(key), data, mode="create")
        except OSError as error:
            # Some fsspec versions raise a plain OSError for the failed precondition (412).
            if isinstance(error, FileExistsError) or "412" in str(error) or "Precondition" in str(error):
                raise FileExistsError(key) from None
            raise

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._path(key)))

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._path(key))

    def list(self, prefix: str) -> list[str]:
        return self._entries(prefix, "file")

    def folders(self, prefix: str) -> list[str]:
        return self._entries(prefix, "directory")

    def _entries(self, prefix: str, kind: str) -> list[str]:
        try:
            entries = self.fs.ls(self._path(prefix), detail=True, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(PurePosixPath(entry["name"]).name for entry in entries
                      if entry.get("type") == kind)

    def delete_tree(self, prefix: str) -> int:
        keys = self.fs.find(self._path(prefix))
        # One by one: fsspec's rm of a list expands each path as a glob, and a key may hold
        # brackets.
        for key in keys:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(key)
        return len(keys)

    def signature(self, key: str) -> Any:
        try:
            info = self.fs.info(self._path(key), refresh=True)
        except FileNotFoundError:
            return None
        return info.get("ETag") or info.get("LastModified") or info.get("size")

    def info(self, key: str) -> tuple[int, float]:
        info = self.fs.info(self._path(key), refresh=True)
        modified = info.get("LastModified") or info.get("mtime")
        return int(info.get("size") or 0), (modified.timestamp() if modified else time.time())

    def open(self, key: str):
        return self.fs.open(self._path(key), "rb")

    def move(self, key: str, new_key: str) -> None:
        # An object store has no rename: a server-side copy, then the delete.
        self.fs.copy(self._path(key), self._path(new_key))
        self.fs.rm_file(self._path(key))


def open_storage(url: str | Path) -> Storage:
    """The storage ``url`` names: a local folder, or what fsspec knows (``s3://``...).

    Object stores get no listing cache: several hosts write the same prefixes.
    """
    text = str(url)
    if "://" not in text:
        return LocalStorage(text)
    fs, root = _filesystem(text)
    if isinstance(fs, LocalFileSystem):
        return LocalStorage(root)
    return ObjectStorage(fs, root, text)


def _filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    return fsspec.core.url_to_fs(url, use_listings_cache=False, skip_instance_cache=True)


def refusal(url: str, setting: str = "PIPELINE_HOME") -> str | None:
    """Why the storage ``url`` (given as ``setting``) cannot be used, in an operator's words;
    None when it can.

    A local folder is made if need be. An S3 prefix is listed once, without retries, with the
    endpoint and keys every process will use (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``): a wrong key, an unknown bucket or an endpoint that does not
    answer stops `make run` before it starts, instead of failing every task after.
    """
    where = f"{setting}={redact(url)}"
    if "://" not in url:
        try:
            Path(url).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            return f"{where}: cannot make the folder: {error.strerror}"
        return None if os.access(url, os.W_OK) else f"{where}: the folder is not writable"
    if not url.startswith("s3://"):
        return None
    # botocore takes a second to import, and only S3 needs it.
    from botocore import exceptions
    from botocore.config import Config
    from botocore.session import get_session

    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    session = get_session()
    client = session.create_client("s3", config=Config(
        connect_timeout=CHECK_TIMEOUT, read_timeout=CHECK_TIMEOUT,
        retries={"total_max_attempts": 1}))
    server = f"S3 at {redact(client.meta.endpoint_url)}"
    credentials = session.get_credentials()
    key = credentials.access_key if credentials else None
    try:
        client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        return None
    except exceptions.NoCredentialsError:
        return f"{where}: no S3 keys: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    except exceptions.ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        words = {
            "InvalidAccessKeyId": f"{server} does not know the access key {key} "
                                  "(AWS_ACCESS_KEY_ID)",
            "SignatureDoesNotMatch": f"{server} refused the secret key of access key {key}: "
                                     "AWS_SECRET_ACCESS_KEY is wrong",
            "NoSuchBucket": f"{server} has no bucket {bucket}",
            "AccessDenied": f"{server} denies access key {key} the listing of bucket {bucket}",
        }.get(code)
        return f"{where}: {words or redact(f'{server} refused the listing: {error}')}"
    except exceptions.BotoCoreError as error:
        endpoint = urlsplit(client.meta.endpoint_url)
        ca_bundle = session.get_config_variable("ca_bundle")
        trusted = f"the CA file {ca_bundle}" if ca_bundle else "botocore's CA certificates"
        trouble = network_trouble(error, endpoint.hostname, endpoint.port or (
            443 if endpoint.scheme == "https" else 80), CHECK_TIMEOUT, trusted)
        return f"{where}: {server}: {trouble or redact(str(error))}"
    finally:
        client.close()
