"""The model file: round trips, and every kind of bad file gives ModelFileError naming the field."""

from __future__ import annotations

from pathlib import Path

import h5py
import lava_helpers as H  # tests/lava_helpers.py; conftest.py puts tests/ on sys.path
import numpy as np
import pytest

from imsnn_lava import ir as fmt
from imsnn_lava.errors import ModelFileError
from imsnn_lava.ir import writer as ir_write
from imsnn_lava.numerics import reference


def _with_reference(model: fmt.ModelFile, n: int = 3) -> fmt.ModelFile:
    rng = np.random.default_rng(5)
    spikes = H.random_spikes(rng, n, model.num_steps, int(np.prod(model.input_shape)))
    res = reference.simulate(model, spikes.transpose(1, 0, 2),
                             fixed=model.precision == "fixed")
    return model.replace(reference=fmt.ReferenceData(
        sample_ids=np.arange(n), labels=np.arange(n) % 10, spikes=spikes,
        layer_counts=res.layer_counts(), output_counts=res.output_counts()))


@pytest.fixture(params=["float", "fixed"])
def model(request):
    m = H.mnist_model(seed=3)
    if request.param == "fixed":
        m = H.quantize(m)
    return _with_reference(m)


def test_round_trip_preserves_every_field(model, tmp_path):
    path = tmp_path / "m.h5"
    fmt.write(model, path)
    back = fmt.read(path)
    assert back.precision == model.precision
    assert back.input_shape == model.input_shape and back.encoding == model.encoding
    for a, b in zip(model.layers, back.layers):
        assert (a.kind, a.synapse, a.in_shape, a.out_shape) == (b.kind, b.synapse, b.in_shape,
                                                                b.out_shape)
        assert (a.stride, a.padding, a.phi_max, a.c0) == (b.stride, b.padding, b.phi_max, b.c0)
        if model.precision == "fixed":
            np.testing.assert_array_equal(a.fixed.table.mant, b.fixed.table.mant)
            np.testing.assert_array_equal(a.fixed.table.exp, b.fixed.table.exp)
            assert (a.fixed.scale, a.fixed.vth, a.fixed.du, a.fixed.dv) == (
                b.fixed.scale, b.fixed.vth, b.fixed.du, b.fixed.dv)
        else:
            np.testing.assert_array_equal(a.weight, b.weight)
            assert (a.du, a.dv, a.vth) == (b.du, b.dv, b.vth)
        if a.synapse == "isi":
            np.testing.assert_array_equal(a.mu, b.mu)
            np.testing.assert_array_equal(a.sigma, b.sigma)
    np.testing.assert_array_equal(back.reference.spikes, model.reference.spikes)
    np.testing.assert_array_equal(back.reference.layer_counts, model.reference.layer_counts)
    # the file computes what the in-memory model computes
    x = model.reference.spikes.transpose(1, 0, 2)
    fixed = model.precision == "fixed"
    np.testing.assert_array_equal(reference.simulate(back, x, fixed=fixed).layer_counts(),
                                  model.reference.layer_counts)


def _mutate(path: Path, fn) -> None:
    with h5py.File(path, "r+") as f:
        fn(f)


def _replace(f, name, data):
    del f[name]
    f.create_dataset(name, data=data)


BAD_EDITS = {
    "format": (lambda f: f.attrs.__setitem__("format", "something-else"), "@format"),
    "future version": (lambda f: f.attrs.__setitem__("version", 99), "newer"),
    "precision": (lambda f: f.attrs.__setitem__("precision", "double"), "@precision"),
    "unknown top field": (lambda f: f.create_dataset("surprise", data=1), "surprise"),
    "unknown layer field": (lambda f: f.create_dataset("layer/1/surprise", data=1),
                            "layer/1/surprise"),
    "missing weight": (lambda f: f.__delitem__("layer/2/weight"), "layer/2/weight"),
    "layer type": (lambda f: _replace(f, "layer/2/type", np.bytes_(b"lstm")), "layer/2/type"),
    "weight shape": (lambda f: _replace(f, "layer/3/weight", np.zeros((3, 3))), "layer/3/weight"),
    "nan mu": (lambda f: _replace(f, "layer/2/mu", np.full(f["layer/2/mu"].shape, np.nan)),
               "layer/2/mu"),
    "negative sigma": (lambda f: _replace(f, "layer/2/sigma", -np.ones(f["layer/2/sigma"].shape)),
                       "layer/2/sigma"),
    "phi_max range": (lambda f: _replace(f, "layer/2/phi_max", np.int64(0)), "layer/2/phi_max"),
    "conv geometry": (lambda f: _replace(f, "layer/1/stride", np.array([5, 5])), "layer/1/shape"),
    "shape chain": (lambda f: _replace(f, "layer/2/shape", np.array([7])), "layer/2/"),
    "steps": (lambda f: f["encoding"].attrs.__setitem__("num_steps", 0), "encoding@num_steps"),
    "text type": (lambda f: _replace(f, "config", np.arange(3)), "config"),
    "bad json": (lambda f: _replace(f, "config", np.bytes_(b"{not json")), "config"),
    "memory bomb": (lambda f: (f.__delitem__("layer/3/weight"),
                               f.create_dataset("layer/3/weight", shape=(1 << 27,),
                                                dtype="f8")), "layer/3/weight"),
    "reference spikes": (lambda f: _replace(f, "reference/spikes",
                                            np.full(f["reference/spikes"].shape, 2, np.uint8)),
                         "reference/spikes"),
}


@pytest.mark.parametrize("edit", sorted(BAD_EDITS))
def test_bad_fields_name_the_field(edit, tmp_path):
    path = tmp_path / "m.h5"
    fmt.write(_with_reference(H.mnist_model(seed=3)), path)
    fn, field_name = BAD_EDITS[edit]
    _mutate(path, fn)
    with pytest.raises(ModelFileError) as info:
        fmt.read(path)
    assert str(path) in str(info.value)
    assert field_name in str(info.value), str(info.value)


FIXED_EDITS = {
    "odd mantissa": (lambda f: _replace(f, "layer/2/table_mant",
                                        np.ones(f["layer/2/table_mant"].shape, np.int16)),
                     "layer/2/table_mant"),
    "mantissa range": (lambda f: _replace(f, "layer/2/table_mant",
                                          np.full(f["layer/2/table_mant"].shape, 300, np.int16)),
                       "layer/2/table_mant"),
    "exponent range": (lambda f: _replace(f, "layer/2/table_exp",
                                          np.full(f["layer/2/table_exp"].shape, 9, np.int8)),
                       "layer/2/table_exp"),
    "vth range": (lambda f: _replace(f, "layer/1/neuron/vThMant", np.int64(1 << 20)),
                  "layer/1/neuron/vThMant"),
    "decay range": (lambda f: _replace(f, "layer/1/neuron/vDecay", np.int64(5000)),
                    "layer/1/neuron/vDecay"),
    "netx weight mismatch": (lambda f: _replace(f, "layer/3/weight",
                                                f["layer/3/weight"][()] + 2), "layer/3/weight"),
}


@pytest.mark.parametrize("edit", sorted(FIXED_EDITS))
def test_bad_fixed_point_fields(edit, tmp_path):
    path = tmp_path / "m.h5"
    fmt.write(H.quantize(H.mnist_model(seed=3)), path)
    fn, field_name = FIXED_EDITS[edit]
    _mutate(path, fn)
    with pytest.raises(ModelFileError) as info:
        fmt.read(path)
    assert field_name in str(info.value), str(info.value)


def test_truncated_and_garbage_files(tmp_path):
    good = tmp_path / "good.h5"
    fmt.write(H.mnist_model(seed=3), good)
    data = good.read_bytes()
    for name, content in (("truncated.h5", data[: len(data) // 2]), ("garbage.h5", b"\0" * 999),
                          ("empty.h5", b"")):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ModelFileError, match=name):
            fmt.read(path)
    with pytest.raises(ModelFileError, match="no such model file"):
        fmt.read(tmp_path / "missing.h5")


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.h5"
    model = H.mnist_model(seed=3)
    fmt.write(model, path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ir_write, "_write", boom)
    with pytest.raises(OSError):
        fmt.write(model, path)
    assert path.read_bytes() == before  # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["m.h5"]  # no temp file left
