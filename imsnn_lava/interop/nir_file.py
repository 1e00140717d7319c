"""Reading and writing NIR files safely (numpy, h5py and nir only).

`load_nir(path)` checks the HDF5 tree before the nir package reads any of it, so a malformed
or hostile file fails with one line naming the file and the node or field, instead of a
traceback from deep inside nir or h5py (or a hang or crash inside the HDF5 library):

- the file exists and is HDF5; no soft or external links; at most MAX_OBJECTS members, nested
  at most MAX_DEPTH deep;
- every dataset holds integers, reals, booleans or text (the HDF5 type class is checked before
  h5py converts anything), has a shape, at most MAX_ELEMENTS values, and all datasets together
  at most MAX_TOTAL_ELEMENTS: sizes come from the declared shapes, before any data is read;
- the graph is a NIRGraph with `nodes` and an (E, 2) text `edges` table; every node names a
  type this importer supports (a nested graph is refused here: it is how NIR writers store
  recurrent layers).

Then each node is built by nir itself (`nir.dict2NIRNode`), one at a time, so an error names
the node. The graph is assembled without nir's type inference (snnTorch writes 0-d neuron
parameters that the inference rejects); `imsnn_lava.interop.nir.from_nir` checks the shapes.
`save_nir` writes atomically (a temp file in the target folder, then os.replace).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from imsnn_lava import filekinds
from imsnn_lava import ir as fmt
from imsnn_lava.errors import ImsnnError
from imsnn_lava.ir.h5safe import H5_CLASS_NAMES, check_global_heaps
from imsnn_lava.outputs import atomic_path

MAX_ELEMENTS = fmt.MAX_ELEMENTS  # values in one dataset
MAX_TOTAL_ELEMENTS = fmt.MAX_ELEMENTS  # values in the whole file
MAX_OBJECTS = 100_000  # groups and datasets in the file
MAX_DEPTH = 8  # /node/nodes/<name>/metadata/<key> is depth 5
SUPPORTED_TYPES = ("Input", "Output", "Flatten", "Affine", "Linear", "Conv2d",
                   "LIF", "CubaLIF", "IF")
TEXT_FIELDS = ("type", "padding")  # the node fields that may hold text (Conv2d: 'same', 'valid')


class NIRFileError(ImsnnError):
    """A NIR file or graph cannot be imported or exported. The message names the file (or
    graph), the node and the field, and says why."""


def _where(path: str, h5name: str) -> str:
    """'node/nodes/lif1/tau' -> "node 'lif1': field 'tau'"; other paths as a field."""
    parts = h5name.strip("/").split("/")
    if len(parts) >= 3 and parts[:2] == ["node", "nodes"]:
        rest = "/".join(parts[3:])
        return f"{path}: node '{parts[2]}'" + (f": field '{rest}'" if rest else "")
    return f"{path}: field '{h5name.strip('/') or '/'}'"


def _fail(path: str, h5name: str, msg: str) -> NIRFileError:
    return NIRFileError(f"{_where(path, h5name)}: {msg}")


def _check_dataset(path: str, name: str, ds) -> int:
    from h5py import h5t

    try:
        type_id = ds.id.get_type()
        cls = type_id.get_class()
        if cls == h5t.ENUM:  # h5py's booleans
            cls = type_id.get_super().get_class()
    except Exception as exc:  # noqa: BLE001 - corrupt type information
        raise _fail(path, name, f"unreadable type ({type(exc).__name__}: {exc})") from None
    if cls not in (h5t.INTEGER, h5t.FLOAT, h5t.STRING):
        raise _fail(path, name, "expected numbers or text, found HDF5 "
                    f"{H5_CLASS_NAMES.get(cls, str(cls))} data")
    if ds.shape is None:
        raise _fail(path, name, "empty dataset (no shape)")
    size = math.prod(ds.shape)
    if size > MAX_ELEMENTS:
        raise _fail(path, name, f"shape {ds.shape}: {size} values exceed the limit of "
                    f"{MAX_ELEMENTS}")
    return size


def _walk(path: str, f) -> None:
    """Links, member counts, depth, dataset types and sizes of the whole tree."""
    import h5py

    objects = total = 0
    stack = [("", f, 0)]
    while stack:
        name, group, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _fail(path, name, f"nested deeper than {MAX_DEPTH} levels")
        try:
            keys = list(group.keys())
            links = [group.get(k, getlink=True) for k in keys]
        except Exception as exc:  # noqa: BLE001 - corrupt group index
            raise _fail(path, name, f"unreadable ({type(exc).__name__}: {exc})") from None
        for key, link in zip(keys, links):
            child = f"{name}/{key}" if name else key
            if not isinstance(link, h5py.HardLink):
                raise _fail(path, child, f"is a {type(link).__name__}; links are not allowed")
            objects += 1
            if objects > MAX_OBJECTS:
                raise _fail(path, "/", f"more than {MAX_OBJECTS} groups and datasets")
            try:
                obj = group[key]
            except Exception as exc:  # noqa: BLE001
                raise _fail(path, child, f"unreadable ({type(exc).__name__}: {exc})") from None
            if isinstance(obj, h5py.Group):
                stack.append((child, obj, depth + 1))
            elif isinstance(obj, h5py.Dataset):
                total += _check_dataset(path, child, obj)
                if total > MAX_TOTAL_ELEMENTS:
                    raise _fail(path, child, f"the file holds more than {MAX_TOTAL_ELEMENTS} "
                                "values")
            else:
                raise _fail(path, child, f"unsupported HDF5 object {type(obj).__name__}")


def _text(path: str, f, name: str) -> str:
    import h5py

    if name not in f:
        raise _fail(path, name, "missing")
    obj = f[name]
    if not isinstance(obj, h5py.Dataset) or obj.dtype.kind not in "SO" or obj.size != 1:
        raise _fail(path, name, "expected one text value")
    value = obj[()]
    value = value.reshape(-1)[0] if isinstance(value, np.ndarray) else value
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        raise _fail(path, name, f"expected text, found {type(value).__name__}")
    return value


def _check_graph(path: str, f) -> list[str]:
    """The NIRGraph skeleton; returns the node names."""
    import h5py

    if not isinstance(f.get("node"), h5py.Group):
        raise _fail(path, "node", "missing: not a NIR file (no /node graph)")
    if "version" in f:
        _text(path, f, "version")
    kind = _text(path, f, "node/type")
    if kind != "NIRGraph":
        raise _fail(path, "node/type", f"expected 'NIRGraph', found '{kind}'")
    nodes = f["node"].get("nodes")
    if not isinstance(nodes, h5py.Group):
        raise _fail(path, "node/nodes", "missing: the graph has no nodes")
    edges = f["node"].get("edges")
    if not isinstance(edges, h5py.Dataset) or edges.dtype.kind not in "SO" or (
            edges.size and (len(edges.shape) != 2 or edges.shape[1] != 2)):
        raise _fail(path, "node/edges", "expected an (E, 2) table of node names")
    names = list(nodes.keys())
    for name in names:
        if not isinstance(nodes[name], h5py.Group):
            raise _fail(path, f"node/nodes/{name}", "expected a group")
        kind = _text(path, f, f"node/nodes/{name}/type")
        if kind == "NIRGraph":
            raise _fail(path, f"node/nodes/{name}", "a nested graph (how NIR writers store "
                        "recurrent layers such as snnTorch's RLeaky) is not supported; only "
                        "feed-forward chains are")
        if kind not in SUPPORTED_TYPES:
            raise _fail(path, f"node/nodes/{name}", f"node type '{kind}' is not supported "
                        f"(supported: {', '.join(SUPPORTED_TYPES)})")
        for key, obj in nodes[name].items():
            if key in TEXT_FIELDS or not isinstance(obj, h5py.Dataset):
                continue  # metadata is a group; nir refuses other groups by name
            if obj.dtype.kind not in "biuf":
                raise _fail(path, f"node/nodes/{name}/{key}",
                            f"expected numbers, found {obj.dtype} data")
    return names


def _build(path: str, data: dict, names: list[str]):
    import nir
    from nir.ir.utils import ensure_str

    nodes = {}
    for name in names:
        spec = dict(data["nodes"][name])
        try:
            nodes[name] = nir.dict2NIRNode(spec)
        except Exception as exc:  # noqa: BLE001 - nir asserts, KeyError, TypeError, ...
            msg = str(exc).splitlines()[0] if str(exc) else ""
            raise NIRFileError(f"{path}: node '{name}' ({spec.get('type')}): nir cannot build "
                               f"it ({type(exc).__name__}{': ' + msg if msg else ''})") from None
    raw = np.asarray(data.get("edges", np.empty((0, 2), dtype=object)))
    edges = [(ensure_str(a), ensure_str(b)) for a, b in raw.reshape(-1, 2)]
    metadata = data.get("metadata", {})
    return nir.NIRGraph(nodes=nodes, edges=edges,
                        metadata=metadata if isinstance(metadata, dict) else {},
                        type_check=False)


def load_nir(path: str | Path):
    """Read and check a NIR file; returns the nir.NIRGraph. Raises NIRFileError."""
    import h5py
    from nir.serialization import hdf2dict

    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise NIRFileError(f"{where}: no such NIR file")
    filekinds.expect(path, filekinds.NIR, NIRFileError)  # a model file, a checkpoint, ...
    try:
        check_global_heaps(path)  # the HDF5 hang on corrupt global heaps (ir.h5safe)
    except ImsnnError as exc:
        raise NIRFileError(str(exc).replace("model file", "NIR file")) from None
    try:
        f = h5py.File(path, "r")
    except Exception as exc:  # noqa: BLE001 - not HDF5, truncated, ...
        raise NIRFileError(f"{where}: not a readable HDF5/NIR file ({exc})") from None
    with f:
        try:
            _walk(where, f)
            names = _check_graph(where, f)
            data = hdf2dict(f["node"])
        except NIRFileError:
            raise
        except Exception as exc:  # noqa: BLE001 - h5py errors on corrupt structure
            raise NIRFileError(f"{where}: not a readable NIR file "
                               f"({type(exc).__name__}: {exc})") from None
    return _build(where, data, names)


def save_nir(graph, path: str | Path) -> None:
    """nir.write, atomically (imsnn_lava.outputs.atomic_path)."""
    import nir

    with atomic_path(path) as tmp:
        nir.write(str(tmp), graph)
