"""What every trial of a sweep shares: pinned config, tracking target, provenance, data cache.

This is how values cross from the driver into the Ray workers: handed to the trainable through
``tune.with_parameters`` (stored once in the object store, not copied into every trial's
config), never through environment variables. It is written to ``<sweep folder>/sweep.json``
so that ``--resume`` rebuilds exactly the same trainable. The sweep folder lives in Ray Tune's
storage, a local folder or a URI (``StoragePath``), so it is read and written through
``pyarrow.fs``.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from fer_core import atomic
from fer_core.cli import UserError
from fer_core.config import ExperimentConfig
from tuner.spec.settings import SweepSettings
from tuner.tracking import passwords
from tuner.tracking.redact import REDACTED, redact
from tuner.tracking.target import TrackingTarget

if TYPE_CHECKING:
    import pyarrow.fs as pafs

SWEEP_FILE = "sweep.json"


def is_uri(text: str) -> bool:
    """``scheme://...`` (``s3://b/p``, ``gs://b/p``, ``file:///abs``) rather than a path."""
    return "://" in text and bool(urlsplit(text).scheme)


@functools.lru_cache(maxsize=128)
def _filesystem(location: str) -> tuple[pafs.FileSystem, str]:
    import pyarrow.fs as pafs  # ~0.5 s: only where a file is touched

    # Cached: for object stores, resolving a URI can cost a request (e.g. the S3 bucket's
    # region), and the sweep rewrites the same few files at every trial event.
    if is_uri(location):
        return pafs.FileSystem.from_uri(location)  # what Ray does with a storage URI
    return pafs.LocalFileSystem(), location  # a plain path is never parsed as a URI


@dataclass(frozen=True)
class StoragePath:
    """A file or folder in Ray Tune's storage: an absolute local path or a URI Ray accepts.

    ``str()`` is what Tune gets (``RunConfig(storage_path=...)``, ``Tuner.restore``) and what
    people see; a URI is kept as given (``s3://bucket/prefix?region=...``), and ``/`` joins
    names before its query. File access goes through ``pyarrow.fs``, as Ray's own does, so the
    sweep's files sit next to Tune's on any storage Ray can use.
    """

    location: str

    @classmethod
    def parse(cls, value: str | os.PathLike[str] | StoragePath) -> StoragePath:
        """A URI unchanged; a local path made absolute (``~`` expanded, symlinks resolved)."""
        if isinstance(value, StoragePath):
            return value
        text = os.fspath(value)
        return cls(text if is_uri(text) else str(Path(text).expanduser().resolve()))

    @property
    def is_uri(self) -> bool:
        return is_uri(self.location)

    @property
    def name(self) -> str:
        path = urlsplit(self.location).path if self.is_uri else self.location
        return path.rstrip("/").rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return self.location

    def __truediv__(self, name: str) -> StoragePath:
        if not self.is_uri:
            return StoragePath(str(Path(self.location) / name))
        parts = urlsplit(self.location)
        return StoragePath(urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{name}")))

    def info(self) -> pafs.FileInfo:
        fs, path = _filesystem(self.location)
        return fs.get_file_info(path)

    def exists(self) -> bool:
        import pyarrow.fs as pafs  # ~0.5 s: only where a file is touched

        return self.info().type != pafs.FileType.NotFound

    def is_file(self) -> bool:
        import pyarrow.fs as pafs  # ~0.5 s: only where a file is touched

        return self.info().type == pafs.FileType.File

    def children(self) -> list[pafs.FileInfo]:
        """What this folder holds, one level (nothing when it does not exist)."""
        import pyarrow.fs as pafs

        fs, path = _filesystem(self.location)
        return fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))

    def read_bytes(self) -> bytes:
        fs, path = _filesystem(self.location)
        with fs.open_input_stream(path) as stream:
            return stream.readall()

    def read_text(self) -> str:
        return self.read_bytes().decode()

    def write_bytes(self, data: bytes) -> None:
        """Write the whole file; a reader never sees half of it, a crash or a full disk
        leaves the last good copy (``fer_core.atomic``)."""
        import pyarrow.fs as pafs

        fs, path = _filesystem(self.location)
        if isinstance(fs, pafs.LocalFileSystem):
            atomic.write_bytes(path, data)
            return
        # An object store publishes an object whole when its stream closes (a rename there
        # would be a copy and a delete).
        parent = path.rstrip("/").rsplit("/", 1)[0]
        if parent:
            fs.create_dir(parent, recursive=True)
        with fs.open_output_stream(path) as stream:
            stream.write(data)

    def write_text(self, text: str) -> None:
        """Write the whole file (``write_bytes``)."""
        self.write_bytes(text.encode())

    def move_to(self, location: str) -> None:
        """Rename this file to ``location`` (same storage)."""
        fs, path = _filesystem(self.location)
        fs.move(path, _filesystem(location)[1])


@dataclass(frozen=True)
class SweepContext:
    """Sweep-level constants; every path in here is absolute (trials run in their own cwd)."""

    base: Mapping[str, Any]
    """Pinned flat config fields: the space's overrides, then the user's ``--set`` values."""
    target: TrackingTarget
    git_commit: str = "unknown"
    data_fingerprint: str = "unknown"
    cache_dir: str | None = None
    """The data cache folder every trial reads (the driver filled it before the first trial)."""
    settings: SweepSettings | None = None
    """The sweep's own settings (space, metric, seeds, ...), for the record and for resume;
    None only in a context built outside a sweep (tests, tools)."""

    def trial_config(self, config: Mapping[str, Any]) -> ExperimentConfig:
        """A trial's validated config: the sweep's pinned fields, then the trial's own ones.

        Shared by the driver (the launch gate hashes it to find a trial already done) and the
        worker (which trains it); it needs no torch.
        """
        return ExperimentConfig.from_flat({**self.base, **config}, strict=False)

    def save(self, folder: str | os.PathLike[str] | StoragePath) -> StoragePath:
        """Write ``<folder>/sweep.json`` (the folder is created, locally or in a bucket), its
        URIs' credentials redacted: the file is shared and copied with the results."""
        path = StoragePath.parse(folder) / SWEEP_FILE
        path.write_text(json.dumps(asdict(self.public()), indent=2, default=str))
        return path

    def _with_uris(self, convert: Callable[[str, str], str]) -> SweepContext:
        """This context with ``convert(uri, flag)`` applied to its tracking URI and its Optuna
        storage (the two URIs that may carry a password)."""
        settings = self.settings
        if settings is not None and settings.optuna_storage:
            settings = replace(settings, optuna_storage=convert(settings.optuna_storage,
                                                                "--optuna-storage"))
        target = replace(self.target, uri=convert(self.target.uri, "--mlflow-uri"))
        return replace(self, target=target, settings=settings)

    def public(self) -> SweepContext:
        """This context with the credentials of its tracking URI and Optuna storage redacted."""
        return self._with_uris(lambda uri, _flag: redact(uri))

    def at_rest(self) -> SweepContext:
        """This context as it may be pickled to disk: its URIs without passwords
        (``tuner.tracking.passwords``)."""
        return self._with_uris(lambda uri, _flag: passwords.at_rest(uri))

    def whole(self) -> SweepContext:
        """A context loaded from disk with the URIs this process was given for it."""
        return self._with_uris(lambda uri, _flag: passwords.whole(uri))

    def with_secrets(self, mlflow_uri: str | None, optuna_storage: str | None) -> SweepContext:
        """A loaded context made whole again by the URIs the ``--resume`` command was given:
        each saved URI whose credentials were redacted takes the given URI that redacts to it.
        Raises ``ValueError`` naming the flag to pass when one is missing."""
        given = {"--mlflow-uri": mlflow_uri, "--optuna-storage": optuna_storage}

        def whole(saved: str, flag: str) -> str:
            if REDACTED not in saved:  # nothing was redacted (or a file from before)
                return saved
            if given[flag] and redact(given[flag]) == saved:
                passwords.remember(given[flag])  # for the pickles Tune loads next
                return given[flag]
            raise UserError(f"sweep.json keeps no passwords: pass {flag} {saved} with the "
                             "password in place of *** again with --resume")

        return self._with_uris(whole)

    @classmethod
    def load(cls, folder: str | os.PathLike[str] | StoragePath) -> SweepContext:
        """The context saved in ``<folder>/sweep.json``."""
        data = json.loads((StoragePath.parse(folder) / SWEEP_FILE).read_text())
        data["target"] = TrackingTarget(**data["target"])
        settings = data.get("settings")
        data["settings"] = SweepSettings.from_dict(settings) if settings else None
        return cls(**data)
