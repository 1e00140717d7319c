"""Model-file integrity: the content digest (imsnn_lava.ir.digest) written by ir.write and
checked by every ir.read, and the fixed-point consistency check (imsnn_lava.ir.consistency):
a fixed-point file's integer tables must be its real weights quantized at its own scale.

The single-bit-flip test uses a real exported model (conftest: a tiny IMSNN trained by
`imsnn train`, exported by `imsnn export --fixed-point`); bench/bitflip.py is its long form.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import h5py
import lava_helpers as H  # tests/lava_helpers.py; conftest.py puts tests/ on sys.path
import numpy as np
import pytest

from imsnn_lava import ir
from imsnn_lava.errors import ModelFileError
from imsnn_lava.ir import digest
from imsnn_lava.ir.quantize import quantize_model

REPO = Path(__file__).resolve().parents[1]
# the short form of bench/bitflip.py: every dataset and attribute, one element each (the
# first), its lowest, highest and 4 random bits
FLIP_ELEMENTS = 1
FLIP_BITS = 6


def _load_bitflip():
    spec = importlib.util.spec_from_file_location("imsnn_bench_bitflip",
                                                  REPO / "bench" / "bitflip.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _helper_models() -> dict[str, ir.ModelFile]:
    base = H.mnist_model(num_steps=6)
    return {"float": base, "fixed": H.quantize(base),
            "fixed-netx": quantize_model(base)}  # the exporter's own pass (netx-compatible)


def _refused(path: Path) -> str:
    with pytest.raises(ModelFileError) as info:
        ir.read(path)
    assert str(path) in str(info.value)
    return str(info.value)


def _edit(path: Path, fn) -> None:
    with h5py.File(path, "r+") as f:
        fn(f)


def _set_digest(path: Path, model: ir.ModelFile) -> None:
    """Store the digest of `model` in the file (what someone rewriting it would do)."""
    def fn(f):
        del f[digest.DIGEST_FIELD]
        f.create_dataset(digest.DIGEST_FIELD, data=np.bytes_(digest.encode(model).encode()))
    _edit(path, fn)


@pytest.mark.parametrize("which", ["float", "fixed", "fixed-netx"])
def test_written_files_carry_a_digest_that_reads_back(tmp_path, which):
    model = _helper_models()[which]
    path = tmp_path / "m.h5"
    ir.write(model, path)
    back = ir.read(path)
    total, fields = digest.compute(model)
    assert back.digest == total and len(total) == 64
    with h5py.File(path, "r") as f:
        record = json.loads(f[digest.DIGEST_FIELD][()].decode())
        stored = set()
        f.visititems(lambda name, obj: stored.add(name) if isinstance(obj, h5py.Dataset)
                     else None)
    assert record["total"] == total and [tuple(x) for x in record["fields"]] == fields
    # every dataset of the file (but the record itself) has a digest of its own
    names = {name for name, _ in fields}
    assert stored - {digest.DIGEST_FIELD} <= names
    # the digest depends on the content only: written again (other temp file, same IR) it
    # is the same, and the IR read back hashes the same
    ir.write(back, tmp_path / "again.h5")
    assert ir.read(tmp_path / "again.h5").digest == total
    # and it changes with any value
    other = model.replace(metrics_json='{"changed": 1}')
    assert digest.compute(other)[0] != total


def test_file_without_digest_loads_with_a_one_line_warning(tmp_path):
    path = tmp_path / "old.h5"
    ir.write(_helper_models()["fixed"], path)
    _edit(path, lambda f: f.__delitem__(digest.DIGEST_FIELD))
    code = ("import sys\nfrom imsnn_lava import ir\nm = ir.read(sys.argv[1])\n"
            "print(m.digest, len(m.layers))")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["None", "3"]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "no content digest" in lines[0]


def test_a_changed_value_is_refused_naming_the_first_field_that_differs(tmp_path):
    path = tmp_path / "m.h5"
    ir.write(_helper_models()["float"], path)

    def nudge(name):
        def fn(f):
            data = f[name][()]
            data.reshape(-1)[0] = np.nextafter(data.reshape(-1)[0], np.inf)
            f[name][...] = data
        return fn

    _edit(path, nudge("layer/3/weight"))  # a valid value: only the digest sees it
    msg = _refused(path)
    assert "field 'layer/3/weight': content digest mismatch" in msg
    _edit(path, nudge("layer/2/mu"))  # earlier in the canonical order: named first
    assert "field 'layer/2/mu': content digest mismatch" in _refused(path)
    _edit(path, lambda f: f["encoding"].attrs.__setitem__("seed", 8))
    assert "field 'encoding@seed': content digest mismatch" in _refused(path)


def _bad_total(model) -> str:
    return json.dumps({"algorithm": "sha256", "total": "00",
                       "fields": digest.compute(model)[1]})


@pytest.mark.parametrize("record, needle", [
    (lambda m: "not json", "not valid JSON"),
    (lambda m: "[" * 100_000, "not valid JSON"),
    (lambda m: '{"algorithm": "md5", "total": "", "fields": []}', "algorithm 'md5'"),
    (lambda m: '{"algorithm": "sha256", "total": "", "fields": [1]}', "fields: expected a list"),
    (_bad_total, "total: expected a sha256"),
])
def test_a_malformed_digest_record_is_refused(tmp_path, record, needle):
    path = tmp_path / "m.h5"
    model = _helper_models()["fixed"]
    ir.write(model, path)

    def fn(f):
        del f[digest.DIGEST_FIELD]
        f.create_dataset(digest.DIGEST_FIELD, data=np.bytes_(record(model).encode()))
    _edit(path, fn)
    msg = _refused(path)
    assert f"field '{digest.DIGEST_FIELD}'" in msg and needle in msg


def test_a_digest_record_that_lists_other_fields_is_refused(tmp_path):
    path = tmp_path / "m.h5"
    model = _helper_models()["fixed"]
    ir.write(model, path)
    total, fields = digest.compute(model)
    for changed, needle in (
            (fields[:-1], f"field '{fields[-1][0]}': has no digest"),
            (fields + [("layer/9/weight", "0" * 64)], "lists 'layer/9/weight'"),
            (fields, "total digest mismatch")):
        text = json.dumps({"algorithm": "sha256", "fields": changed,
                           "total": total if changed is not fields else "f" * 64})

        def fn(f, text=text):
            del f[digest.DIGEST_FIELD]
            f.create_dataset(digest.DIGEST_FIELD, data=np.bytes_(text.encode()))
        _edit(path, fn)
        assert needle in _refused(path)


@pytest.mark.timeout(240)
def test_every_single_bit_flip_in_an_exported_model_is_refused(exported_fixed_model):
    """One bit flipped in one stored value of every dataset and attribute of a real export:
    each flipped file is refused, by the reader's field checks or by the digest."""
    bitflip = _load_bitflip()
    result = bitflip.run(exported_fixed_model, FLIP_ELEMENTS, FLIP_BITS, seed=0,
                         log=lambda *_: None)
    assert result["accepted"] == 0, result["escapes"][:5]
    assert result["refused"] == result["flipped"] > 0
    # both defences are needed: many flips give valid values only the digest catches
    assert result["digest"] > 0 and result["checks"] > 0
    names = {row["field"] for row in result["per_site"]}
    for field in ("layer/1/table_mant", "layer/1/weight", "layer/2/mu", "layer/1/scale",
                  "reference/spikes", "config", "digest", "@precision", "encoding@seed",
                  "layer/2@name"):
        assert field in names
    for row in result["per_site"]:  # every site was really flipped
        assert row["unchanged"] == 0 and sum(row[k] for k in bitflip.OUTCOMES) > 0, row


def test_a_halved_float_weight_is_refused_by_consistency(exported_fixed_model, tmp_path):
    path = tmp_path / "tampered.h5"
    path.write_bytes(exported_fixed_model.read_bytes())
    model = ir.read(path)
    layer = model.layers[0]
    assert model.fixed and layer.isi and layer.name == "layer1"
    weight = np.array(layer.weight)
    idx = np.unravel_index(np.argmax(np.abs(weight)), weight.shape)
    weight[idx] /= 2
    tampered = model.replace(layers=[layer.replace(weight=weight), *model.layers[1:]])

    def fn(f):
        f["layer/1/weight"][...] = weight
    _edit(path, fn)
    assert "field 'layer/1/weight': content digest mismatch" in _refused(path)
    _set_digest(path, tampered)
    with h5py.File(path, "r") as f:  # the digest now matches the tampered content
        text = f[digest.DIGEST_FIELD][()].decode()
    assert digest.check(tampered, text, str(path)) == digest.compute(tampered)[0]
    msg = _refused(path)
    assert "layer layer1 (layer/1)" in msg and "integer tables do not match" in msg
    assert f"scale {layer.fixed.scale}" in msg


def test_real_exports_pass_the_consistency_check(exported_fixed_model, tmp_path):
    model = ir.read(exported_fixed_model)
    assert model.digest and model.fixed and all(layer.isi for layer in model.layers)
    for which, m in _helper_models().items():
        ir.write(m, tmp_path / f"{which}.h5")
        assert ir.read(tmp_path / f"{which}.h5").digest == digest.compute(m)[0]


@pytest.mark.lava
@pytest.mark.timeout(120)
def test_verify_prints_the_checked_digest(exported_fixed_model):
    proc = subprocess.run([sys.executable, "-m", "imsnn_train.cli", "verify",
                           str(exported_fixed_model)], capture_output=True, text=True,
                          timeout=110)
    assert proc.returncode == 0, proc.stderr[-3000:]
    want = ir.read(exported_fixed_model).digest
    assert proc.stdout.splitlines()[0] == (f"{exported_fixed_model}: content digest "
                                           f"sha256:{want} (verified)")
    assert "4/4 reference samples reproduced exactly" in proc.stdout
