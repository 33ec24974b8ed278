"""Public data fetched on first use into a cache, pinned by SHA-256, served here by a local HTTP server.

No test reaches the internet: conftest turns downloads off and refuses any URL but a local one;
the tests below turn downloads on against a server on 127.0.0.1 that serves ../shared/data.
"""

import hashlib
import http.server
import re
import shutil
import socket
import subprocess
import sys
import threading
import urllib.parse
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from nastools import cli, datasets
from nastools.datasets import FetchError, data_home, fetch, fetch_file, file_status
from nastools.evaluation import Evaluator
from nastools.hardware import resolve_hardware
from nastools.store import ResultStore
from nastools.supernet import file_hash, load_supernet
from nastools.supernets.mobilenetv3 import DATASETS, read_dynast_measurements

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILES = [file for dataset in DATASETS.values() if dataset.default for file in dataset.files]
PREDICTOR = DATASETS["ofa-predictor"].files[0]


@contextmanager
def serve(folder: Path):
    """An HTTP server on 127.0.0.1 serving ``folder``; yields ``(base URL, list of requested paths)``."""
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def do_GET(self):
            requests.append(urllib.parse.unquote(self.path))
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder with downloads on (conftest turns them off)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(datasets.DATA_ENV, str(folder))
    monkeypatch.delenv(datasets.OFFLINE_ENV)
    return folder


@pytest.fixture
def mirror(shared_data):
    with serve(shared_data) as (url, requests):
        yield url, requests


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def leftovers(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file() and path.name.endswith(".part")]


def test_pins_are_the_files_at_the_commits_the_public_copies_name(shared_data):
    for dataset in DATASETS.values():
        for file in dataset.files:
            copy = shared_data / file.path
            assert hashlib.sha256(copy.read_bytes()).hexdigest() == file.sha256, file.path
            readme = (shared_data / file.path.split("/")[0] / "README.md").read_text()
            commit = re.search(r"Snapshot commit: ([0-9a-f]{40})", readme)[1]
            assert file.url.startswith("https://raw.githubusercontent.com/") and f"/{commit}/" in file.url
            assert "@" not in file.url and file.url.endswith(urllib.parse.quote(Path(file.path).name))
    # an existing store's rows carry surrogate-<file_hash of the predictor>: the pin gives the same
    assert PREDICTOR.sha256[:16] == file_hash(shared_data / PREDICTOR.path)


def test_fetch_lays_out_verified_files_and_fetches_each_once(cache, mirror, shared_data):
    url, requests = mirror
    assert [file_status(file) for file in DEFAULT_FILES] == ["missing"] * len(DEFAULT_FILES)
    assert fetch(mirror=url) == cache
    for file in DEFAULT_FILES:
        assert (cache / file.path).read_bytes() == (shared_data / file.path).read_bytes()
        assert file_status(file) == "verified"
    assert sorted(requests) == sorted(f"/{file.path}" for file in DEFAULT_FILES)
    assert not (cache / "DyNAS-T").exists() and not leftovers(cache)  # an optional dataset waits
    fetch(mirror=url)
    assert len(requests) == len(DEFAULT_FILES)  # all there and verified: nothing downloaded
    broken = cache / PREDICTOR.path
    broken.write_bytes(broken.read_bytes()[:-1])
    assert file_status(PREDICTOR) == "corrupt"
    assert fetch_file(PREDICTOR, mirror=url) == broken and file_status(PREDICTOR) == "verified"
    assert requests[len(DEFAULT_FILES) :] == [f"/{PREDICTOR.path}"]
    fetch("dynast-mbv3", mirror=url)
    assert len(read_dynast_measurements()) == len(read_dynast_measurements(shared_data / "DyNAS-T"))


def test_a_tampered_source_is_refused_and_nothing_is_kept(cache, shared_data, tmp_path):
    served = tmp_path / "served"
    shutil.copytree(shared_data / "nsganetv2", served / "nsganetv2")
    table = served / "nsganetv2" / "i7-8700K_lut.yaml"
    content = bytearray(table.read_bytes())
    content[100] ^= 1
    table.write_bytes(bytes(content))
    file = DATASETS["lut-i7-8700k"].files[0]
    with serve(served) as (url, _), pytest.raises(FetchError) as refused:
        fetch("lut-i7-8700k", mirror=url)
    message = str(refused.value)
    assert "\n" not in message and file.path in message
    assert f"expected {file.sha256}" in message and hashlib.sha256(content).hexdigest() in message
    assert not (cache / file.path).exists() and not leftovers(cache)


def test_an_unreachable_source_says_what_to_fetch_and_where_to_put_it(cache, monkeypatch):
    url = closed_port_url()
    with pytest.raises(FetchError) as unreachable:
        fetch_file(PREDICTOR, mirror=url)
    message = str(unreachable.value)
    assert "\n" not in message and f"{url}/CompOFA/acc_predictor.pth" in message
    assert str(cache / PREDICTOR.path) in message and "data_dir=" in message and PREDICTOR.url in message
    assert not (cache / PREDICTOR.path).exists() and not leftovers(cache)
    # with downloads off, the public URL and the path, and no connection tried
    monkeypatch.setenv(datasets.OFFLINE_ENV, "1")
    with serve(cache) as (served, requests), pytest.raises(FetchError, match="NASTOOLS_OFFLINE") as offline:
        fetch_file(PREDICTOR, mirror=served)
    assert requests == [] and str(cache / PREDICTOR.path) in str(offline.value)
    # without a mirror the source is the public URL (conftest refuses to open it)
    monkeypatch.delenv(datasets.OFFLINE_ENV)
    with pytest.raises(AssertionError, match=re.escape(PREDICTOR.url)):
        fetch_file(PREDICTOR)
    assert not leftovers(cache)


def test_ofa_supernet_from_the_filled_cache_equals_the_data_dir_one(cache, mirror, shared_data, monkeypatch):
    fetch(mirror=mirror[0])
    monkeypatch.setenv(datasets.OFFLINE_ENV, "1")  # all there: nothing to download
    reference = load_supernet("ofa-mbv3-w1.2", data_dir=shared_data)
    cached = load_supernet("ofa-mbv3-w1.2")
    assert cached.checkpoint_hash == reference.checkpoint_hash
    archs = cached.space.sample(20, rng=5)
    assert np.array_equal(cached.predict_top1(archs), reference.predict_top1(archs))
    assert (
        sorted(cached.lookup_tables()) == sorted(reference.lookup_tables()) == ["lut-i7-8700k", "lut-note10"]
    )
    for key in cached.lookup_tables():
        mine = resolve_hardware(key, cached).latencies(cached, archs, [None] * 20)
        theirs = resolve_hardware(key, reference).latencies(reference, archs, [None] * 20)
        assert mine == theirs


def test_ofa_supernet_loads_without_files_and_fetches_on_first_use(
    cache, mirror, shared_data, tmp_path, monkeypatch
):
    url, requests = mirror
    monkeypatch.setenv(datasets.MIRROR_ENV, url)
    reference = load_supernet("ofa-mbv3-w1.2", data_dir=shared_data)
    store = ResultStore(tmp_path / "r.sqlite")
    archs = reference.space.sample(6, rng=1)
    Evaluator(reference, store, progress=False).measure(archs, ["top1", "macs"])
    supernet = load_supernet("ofa-mbv3-w1.2")
    assert supernet.macs(archs[0]) == reference.macs(archs[0]) and requests == []
    # the pinned hash: rows stored with the data_dir copy are this supernet's rows
    assert supernet.checkpoint_hash == reference.checkpoint_hash
    supernet.check_metric("top1")  # the first use
    assert requests == [f"/{PREDICTOR.path}"]
    again = Evaluator(supernet, store, progress=False).measure(archs, ["top1", "macs"])
    assert again.reused.all() and len(requests) == 1
    assert supernet.evaluate(archs[0], "top1") == reference.evaluate(archs[0], "top1")
    hardware = resolve_hardware("lut-note10", supernet)
    hardware.validate()
    assert len(requests) == 1 + len(DATASETS["lut-note10"].files)
    assert hardware.latencies(supernet, archs, [None] * 6) == resolve_hardware(
        "lut-note10", reference
    ).latencies(reference, archs, [None] * 6)


def test_first_use_without_a_source_is_a_one_line_error(cache, tmp_path, monkeypatch):
    url = closed_port_url()
    monkeypatch.setenv(datasets.MIRROR_ENV, url)
    supernet = load_supernet("ofa-mbv3-w1.0")  # loading needs no file and no network
    assert supernet.checkpoint_hash == f"surrogate-{PREDICTOR.sha256[:16]}"
    assert supernet.macs(supernet.net.max_arch()) > 0
    store = ResultStore(tmp_path / "r.sqlite")
    with pytest.raises(FileNotFoundError) as failed:
        Evaluator(supernet, store, progress=False).measure(supernet.space.sample(2, rng=0), ["macs", "top1"])
    message = str(failed.value)
    assert "\n" not in message and f"{url}/CompOFA/acc_predictor.pth" in message
    assert str(cache / PREDICTOR.path) in message
    assert len(store.measurements()) == 0
    with pytest.raises(FetchError, match=re.escape(str(cache / "nsganetv2" / "i7-8700K_lut.yaml"))):
        resolve_hardware("lut-i7-8700k", supernet).validate()


def test_cli_lists_and_fetches(cache, mirror, capsys):
    url, requests = mirror
    assert cli.main(["data", "list"]) == 0
    listed = capsys.readouterr().out
    assert f"cache: {cache}" in listed and f"missing   {PREDICTOR.path}" in listed
    assert all(name in listed for name in DATASETS)
    assert cli.main(["data", "fetch", "ofa-predictor", "lut-i7-8700k", "--mirror", url]) == 0
    assert "ofa-predictor: 1 file(s) verified, 1 downloaded" in capsys.readouterr().out
    assert cli.main(["data", "fetch", "ofa-predictor", "--mirror", url]) == 0
    assert "ofa-predictor: 1 file(s) verified, 0 downloaded" in capsys.readouterr().out and len(requests) == 2
    assert cli.main(["data", "list"]) == 0
    listed = capsys.readouterr().out
    assert f"verified  {PREDICTOR.path}" in listed and "lut-note10  [default; 0/17 verified]" in listed
    assert cli.main(["data", "fetch", "bogus"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "unknown dataset 'bogus'; known: ofa-predictor" in error
    assert cli.main(["data", "fetch", "lut-note10", "--mirror", closed_port_url()]) == 1
    notice, error = capsys.readouterr().err.splitlines()  # "downloading ...", then one line
    assert notice.startswith("nastools: downloading") and error.startswith("nastools data fetch: error:")
    assert str(cache / DATASETS["lut-note10"].files[0].path) in error


@pytest.mark.parametrize(
    "args", [["data", "--help"], ["data", "fetch", "--help"], ["data", "list", "--help"]]
)
def test_data_help_answers_without_importing_torch(args):
    probe = "\n".join(
        [
            "import sys; from nastools.cli import main",
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass",
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')",
        ]
    )
    result = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, cwd=ROOT)
    assert "usage: nastools data" in result.stdout and result.stdout.strip().endswith("NO-TORCH"), (
        result.stdout
    )


def test_the_cache_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path / "mine"))
    assert data_home() == tmp_path / "mine"
    monkeypatch.delenv(datasets.DATA_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_home() == tmp_path / "xdg" / "nastools"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_home() == tmp_path / "home" / ".cache" / "nastools"
