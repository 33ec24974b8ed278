"""Public data files fetched on first use into a cache, each pinned to its source and its SHA-256.

Some supernets use files that others published (an accuracy predictor, latency look-up tables,
measured tables): nastools never ships them. A family declares them in its ``DATASETS``
(``{name: Dataset}``, discovered like its ``SUPERNETS``); :func:`fetch_file` and :func:`fetch`
download what the cache lacks from the public URL (or a mirror), check the SHA-256 and only then
rename the file into place, so that a file under its final name is always complete and verified.

The cache is laid out by each file's relative path (``CompOFA/acc_predictor.pth``, ...), so a
folder laid out the same way can stand in for it (``data_dir=...`` or ``$NASTOOLS_DATA``).

- ``$NASTOOLS_DATA``: the cache folder (default ``$XDG_CACHE_HOME/nastools``, else
  ``~/.cache/nastools``).
- ``$NASTOOLS_DATA_MIRROR``: a base URL that holds the files at ``<mirror>/<relative path>``
  (``file://`` works too), used instead of the public URLs.
- ``$NASTOOLS_OFFLINE=1``: never download; a file the cache lacks is an error saying what to fetch.

The command line ``nastools data list`` shows the datasets and what the cache holds;
``nastools data fetch [DATASET ...]`` fetches ahead of time (by default what the built-in supernets use).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import re
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nastools._outputs import _umask

__all__ = [
    "DATA_ENV",
    "MIRROR_ENV",
    "OFFLINE_ENV",
    "DataFile",
    "Dataset",
    "FetchError",
    "data_home",
    "datasets",
    "downloads_allowed",
    "fetch",
    "fetch_file",
    "file_status",
    "github_raw_url",
    "main",
]

#: Environment variable naming the cache folder.
DATA_ENV = "NASTOOLS_DATA"
#: Environment variable naming a mirror: files at ``<mirror>/<relative path>``.
MIRROR_ENV = "NASTOOLS_DATA_MIRROR"
#: Environment variable that turns downloads off (``1``, ``true`` or ``yes``).
OFFLINE_ENV = "NASTOOLS_OFFLINE"
#: Seconds a connection or a read may stall before a download fails.
TIMEOUT_S = 30.0

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 16


class FetchError(FileNotFoundError):
    """A data file is not in place and cannot be fetched (offline, unreachable, or wrong content).

    The message is one line: what to fetch (the URL), where to put it (the cache path) and the
    alternatives.
    """


@dataclass(frozen=True)
class DataFile:
    """One public file: where it lies in the cache, where it comes from, and its SHA-256.

    Attributes:
        path: Relative POSIX path inside the cache (``CompOFA/acc_predictor.pth``).
        url: The public URL it is downloaded from.
        sha256: Its SHA-256 (64 lower-case hex digits); a download with another is refused.

    Example:
        >>> DataFile("a/b.yaml", "https://example.org/b.yaml", "0" * 64).path
        'a/b.yaml'
    """

    path: str
    url: str
    sha256: str

    def __post_init__(self) -> None:
        parts = self.path.split("/")
        if not self.path or self.path.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"data file path {self.path!r} must be relative, '/'-separated, without '..'")
        if not _SHA256_RE.fullmatch(self.sha256):
            raise ValueError(f"data file {self.path!r}: sha256 must be 64 lower-case hex digits")


@dataclass(frozen=True)
class Dataset:
    """A named group of public files that a feature needs together.

    Attributes:
        name: What ``nastools data fetch NAME`` takes (lower-case, ``-`` separated).
        description: One line: what the files are and what uses them.
        files: The files (a tuple).
        source: Repository, commit and license, for ``nastools data list``.
        default: Fetched by ``nastools data fetch`` without names (what the built-in supernets use).

    Example:
        >>> file = DataFile("t/x.csv", "https://example.org/x.csv", "0" * 64)
        >>> Dataset("toy", "a toy table", (file,)).files[0].path
        't/x.csv'
    """

    name: str
    description: str
    files: tuple[DataFile, ...]
    source: str = ""
    default: bool = True

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]*", self.name):
            raise ValueError(f"dataset name {self.name!r}: use lower-case letters, digits, '.' and '-'")
        if not isinstance(self.files, tuple) or not self.files:
            raise ValueError(f"dataset {self.name!r}: files must be a non-empty tuple of DataFile")


def github_raw_url(repository: str, commit: str, path: str) -> str:
    """The raw download URL of ``path`` in a GitHub repository at a pinned commit (path quoted).

    Example:
        >>> github_raw_url("owner/repo", "0123abc", "tables/latency@note10/160.yaml")
        'https://raw.githubusercontent.com/owner/repo/0123abc/tables/latency%40note10/160.yaml'
    """
    return f"https://raw.githubusercontent.com/{repository}/{commit}/{urllib.parse.quote(path)}"


def data_home(home: str | Path | None = None) -> Path:
    """The cache folder (it need not exist yet).

    ``home`` when given, else ``$NASTOOLS_DATA`` (a relative one taken from the current folder, made
    absolute here), else ``$XDG_CACHE_HOME/nastools``, else ``~/.cache/nastools``.

    Example:
        >>> str(data_home("/data/nastools"))
        '/data/nastools'
    """
    if home is not None:
        return Path(home).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "nastools"


def downloads_allowed() -> bool:
    """False when ``$NASTOOLS_OFFLINE`` is set to ``1``, ``true`` or ``yes``."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("1", "true", "yes")


def datasets() -> dict[str, Dataset]:
    """The datasets the built-in supernet families declare (their ``DATASETS``), by name.

    Raises:
        RuntimeError: Two families declare the same name.
    """
    from nastools.supernet import _families  # imports the families (and torch) only when asked

    found: dict[str, Dataset] = {}
    for family in _families():
        for name, dataset in getattr(family, "DATASETS", {}).items():
            if name in found or name != dataset.name:
                raise RuntimeError(f"dataset {name!r} of {family.__name__} is declared twice or misnamed")
            found[name] = dataset
    return found


def _dataset(name: str | Dataset) -> Dataset:
    if isinstance(name, Dataset):
        return name
    known = datasets()
    if name not in known:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(known)} (see `nastools data list`)")
    return known[name]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_status(file: DataFile, home: str | Path | None = None) -> str:
    """``"verified"`` (in the cache with its SHA-256), ``"missing"`` or ``"corrupt"`` (another SHA-256).

    Raises:
        FetchError: The cached file cannot be read (another user's private file): one line naming it.
    """
    target = data_home(home) / file.path
    if not target.is_file():
        return "missing"
    try:
        return "verified" if _sha256(target) == file.sha256 else "corrupt"
    except PermissionError as error:
        raise FetchError(
            f"cannot read the cached file {target} ({error.strerror}): ask its owner to make it readable "
            f"(chmod a+r), or set ${DATA_ENV} to a cache folder of your own"
        ) from None


def _source_url(file: DataFile, mirror: str | None) -> str:
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    if mirror is None:
        return file.url
    return f"{mirror.rstrip('/')}/{urllib.parse.quote(file.path)}"


def _urlopen(url: str, timeout: float):  # noqa: ANN202 - the response object of urllib
    """Open ``url`` (one place, so that the test suite can refuse anything but its local server)."""
    return urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 - http(s) or file URLs we build


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    detail = getattr(error, "reason", None) or str(error) or "no detail"
    return f"{type(error).__name__}: {str(detail).splitlines()[0][:200]}"


def _unavailable(file: DataFile, url: str, target: Path, why: str) -> FetchError:
    public = f" (public source: {file.url})" if url != file.url else ""
    return FetchError(
        f"{file.path} is not in the data cache and {why}: download {url}{public} and put it at "
        f"{target}, or pass data_dir=<a folder holding {file.path}> or set ${DATA_ENV}=<such a folder>"
    )


def _download(file: DataFile, url: str, target: Path) -> None:
    """Download ``url`` to a temporary name beside ``target``; rename it into place once verified."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as error:
        raise FetchError(
            f"cannot write {file.path} into the data cache {data_home()} ({_reason(error)}): "
            f"set ${DATA_ENV} to a writable folder"
        ) from None
    print(f"nastools: downloading {url} -> {target}", file=sys.stderr, flush=True)
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as out, _urlopen(url, TIMEOUT_S) as response:
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        got = digest.hexdigest()
        if got != file.sha256:
            raise FetchError(
                f"{file.path} downloaded from {url} has sha256 {got}, expected {file.sha256}: refused "
                "(a changed or corrupted source); nothing was kept"
            )
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp's 0600 would hide a shared cache from its users
        os.replace(temporary, target)
    except FetchError:
        raise
    except (OSError, ValueError, http.client.HTTPException) as error:  # URLError and timeouts are OSErrors
        raise _unavailable(file, url, target, f"could not be downloaded ({_reason(error)})") from None
    finally:
        Path(temporary).unlink(missing_ok=True)


def _ensure(file: DataFile, home: str | Path | None, mirror: str | None) -> tuple[Path, bool]:
    target = data_home(home) / file.path
    status = file_status(file, home)
    if status == "verified":
        return target, False
    url = _source_url(file, mirror)
    if not downloads_allowed():
        if status == "corrupt":  # not "missing": the file there is damaged or another one
            raise FetchError(
                f"the cached file {target} fails its sha256 check (expected {file.sha256}) and downloads are "
                f"off (${OFFLINE_ENV}): delete it and run `nastools data fetch` where downloads work, or "
                f"download {url} to {target}"
            )
        raise _unavailable(file, url, target, f"downloads are off (${OFFLINE_ENV})")
    _download(file, url, target)
    return target, True


def fetch_file(file: DataFile, *, home: str | Path | None = None, mirror: str | None = None) -> Path:
    """The path of ``file`` in the cache, downloaded and verified first if it is not there yet.

    Args:
        file: The file.
        home: The cache folder (default :func:`data_home`).
        mirror: Base URL holding the files at ``<mirror>/<relative path>`` (default
            ``$NASTOOLS_DATA_MIRROR``, else the public URL).

    Raises:
        FetchError: Downloads are off, the source cannot be reached, or its SHA-256 differs from
            the pinned one (the download is deleted); one line naming the URL and the cache path.

    Example:
        >>> from nastools.supernets.mobilenetv3 import DATASETS  # doctest: +SKIP
        >>> fetch_file(DATASETS["ofa-predictor"].files[0])  # doctest: +SKIP
        PosixPath('/home/me/.cache/nastools/CompOFA/acc_predictor.pth')
    """
    return _ensure(file, home, mirror)[0]


def fetch(*names: str | Dataset, home: str | Path | None = None, mirror: str | None = None) -> Path:
    """Fetch whole datasets (by default those marked ``default``) and return the cache folder.

    The folder is laid out like the public copies, so it is a ``data_dir`` itself.

    Args:
        *names: Dataset names (or :class:`Dataset` objects); none: the default datasets.
        home: The cache folder (default :func:`data_home`).
        mirror: See :func:`fetch_file`.

    Raises:
        ValueError: An unknown dataset name.
        FetchError: A file cannot be fetched (see :func:`fetch_file`).

    Example:
        >>> supernet = load_supernet("ofa-mbv3-w1.2", data_dir=fetch())  # doctest: +SKIP
    """
    chosen = [_dataset(n) for n in names] or [d for d in datasets().values() if d.default]
    for dataset in chosen:
        for file in dataset.files:
            _ensure(file, home, mirror)
    return data_home(home)


# --- command line -----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nastools data",
        description="Public data files some supernets use (OFA's accuracy predictor, latency tables, ...): "
        f"fetched from their public sources into the cache (${DATA_ENV}, default "
        f"$XDG_CACHE_HOME/nastools or ~/.cache/nastools), each checked against its pinned SHA-256.",
    )
    verbs = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    fetch_parser = verbs.add_parser("fetch", help="download what the cache lacks and verify it")
    fetch_parser.add_argument(
        "datasets",
        nargs="*",
        metavar="DATASET",
        help="names `nastools data list` shows (default: the defaults)",
    )
    fetch_parser.add_argument(
        "--mirror", help=f"base URL holding the files at <mirror>/<relative path> (default ${MIRROR_ENV})"
    )
    verbs.add_parser("list", help="the datasets, their files, and whether each is in the cache and verified")
    return parser


def _list() -> int:
    home = data_home()
    print(f"cache: {home}" + ("" if downloads_allowed() else f"  (downloads off: ${OFFLINE_ENV})"))
    for dataset in datasets().values():
        statuses = [file_status(file) for file in dataset.files]
        default = "default" if dataset.default else "optional"
        print(f"\n{dataset.name}  [{default}; {statuses.count('verified')}/{len(statuses)} verified]")
        print(f"  {dataset.description}")
        if dataset.source:
            print(f"  source: {dataset.source}")
        for file, status in zip(dataset.files, statuses, strict=True):
            print(f"  {status:<9} {file.path}")
    return 0


def _fetch(names: Sequence[str], mirror: str | None) -> int:
    chosen = [_dataset(n) for n in names] or [d for d in datasets().values() if d.default]
    for dataset in chosen:
        downloaded = sum(_ensure(file, None, mirror)[1] for file in dataset.files)
        print(f"{dataset.name}: {len(dataset.files)} file(s) verified, {downloaded} downloaded")
    print(f"cache: {data_home()}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``nastools data``: list and fetch public data files (one line on stderr for a failure).

    Example:
        >>> main(["fetch", "ofa-predictor", "--mirror", "https://mirror.example.org/ofa"])  # doctest: +SKIP
        ofa-predictor: 1 file(s) verified, 1 downloaded
        cache: /home/me/.cache/nastools
    """
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        return _list() if args.action == "list" else _fetch(args.datasets, args.mirror)
    except ValueError as error:
        print(f"nastools data {args.action}: error: {error}", file=sys.stderr)
        return 2
    except FetchError as error:
        print(f"nastools data {args.action}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
