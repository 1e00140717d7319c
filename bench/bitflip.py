"""Flip single bits in every stored value of a model file and check that the reader refuses
every flipped file (imsnn_lava.ir.read: its field checks, the content digest, the fixed-point
consistency check).

Every dataset and every attribute of the file is a site, the `/digest` record included. For
each site, `elements` elements are picked (the first, the last, then seeded random ones) and
`bits` bits of each (every bit of the element with --bits 0, else the lowest, the highest and
seeded random ones). One case = a copy of the file with that one bit flipped in the stored
value (same HDF5 type and shape, written with h5py), then `ir.read`. Outcomes:

    checks       ModelFileError from the reader's own field checks (type, range, shape, UTF-8)
    digest       ModelFileError: content digest mismatch (names the field)
    consistency  ModelFileError: the integer tables do not match the real weights
    accepted     read without an error: an undetected corruption (must be 0)
    unchanged    the flip did not change the stored bytes (h5py normalised it; not counted)

    python bench/bitflip.py MODEL.h5 [--elements 3] [--bits 0] [--seed 0] [--out JSON]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "bench" / "results" / "bitflip.json"
DEFAULT_ELEMENTS = 3
DEFAULT_BITS = 0  # 0: every bit of each picked element
OUTCOMES = ("checks", "digest", "consistency", "accepted", "unchanged")


def sites(path: Path) -> list[tuple[str, str | None, int, int]]:
    """(object name, attribute name or None, elements, bytes per element) of every stored
    value: each dataset and each attribute, in file order."""
    import h5py

    out = []
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out.append((name, None, *_size(_raw(obj[()]))))
            for key in obj.attrs:
                out.append((name, key, *_size(_raw(obj.attrs[key]))))

        for key in f.attrs:
            out.append(("", key, *_size(_raw(f.attrs[key]))))
        f.visititems(visit)
    return out


def _raw(value) -> np.ndarray:
    """A stored value as a writable numpy array (text as bytes)."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    if isinstance(value, bytes):
        return np.array(np.bytes_(value))
    return np.array(value)


def _size(arr: np.ndarray) -> tuple[int, int]:
    if arr.dtype.kind == "S":
        return arr.dtype.itemsize, 1  # text: each byte is an element
    return max(arr.size, 1), arr.dtype.itemsize


def flip(src: Path, dst: Path, obj: str, attr: str | None, element: int, bit: int) -> bool:
    """Copy src to dst with one bit of one stored value flipped; False if the stored bytes
    did not change."""
    import h5py

    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as f:
        node = f[obj] if obj else f
        old = _raw(node.attrs[attr] if attr is not None else node[()])
        new = old.copy()
        flat = new.reshape(-1).view(np.uint8)
        stride = 1 if old.dtype.kind == "S" else old.dtype.itemsize
        flat[element * stride + bit // 8] ^= np.uint8(1 << (bit % 8))
        if attr is not None:
            node.attrs[attr] = new[()] if new.ndim == 0 else new
            stored = _raw(node.attrs[attr])
        else:
            node[()] = new
            stored = _raw(node[()])
    return stored.tobytes() != old.tobytes() or stored.dtype != old.dtype


def classify(path: Path) -> str:
    from imsnn_lava import ir
    from imsnn_lava.errors import ModelFileError

    try:
        ir.read(path)
    except ModelFileError as exc:
        msg = str(exc)
        if "digest" in msg:
            return "digest"
        if "integer tables do not match" in msg:
            return "consistency"
        return "checks"
    return "accepted"


def run(model: Path, elements: int = DEFAULT_ELEMENTS, bits: int = DEFAULT_BITS,
        seed: int = 0, log=print) -> dict:
    """Flip bits at every site; returns the counts per outcome and every accepted flip."""
    import logging

    logging.getLogger("imsnn_lava.ir.reader").setLevel(logging.ERROR)
    rng = random.Random(seed)
    counts: Counter = Counter()
    per_site = []
    escapes = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "flipped.h5"
        for obj, attr, n, itemsize in sites(model):
            picks = sorted({0, n - 1, *(rng.randrange(n) for _ in range(max(elements - 2, 0)))})
            picks = picks[:elements] if elements < 2 else picks
            nbits = 8 * itemsize
            site = Counter()
            for e in picks:
                chosen = range(nbits) if bits == 0 or bits >= nbits else sorted(
                    {0, nbits - 1, *rng.sample(range(nbits), bits - 2 if bits > 2 else 0)})
                for b in chosen:
                    if not flip(model, work, obj, attr, e, b):
                        outcome = "unchanged"
                    else:
                        outcome = classify(work)
                    site[outcome] += 1
                    if outcome == "accepted":
                        escapes.append({"field": _name(obj, attr), "element": e, "bit": b})
            counts.update(site)
            per_site.append({"field": _name(obj, attr), **{k: site[k] for k in OUTCOMES}})
    flipped = sum(counts[k] for k in OUTCOMES if k != "unchanged")
    result = {"model": str(model), "sites": len(per_site), "elements_per_site": elements,
              "bits_per_element": bits or "all", "seed": seed, "flipped": flipped,
              "refused": flipped - counts["accepted"],
              **{k: counts[k] for k in OUTCOMES}, "escapes": escapes, "per_site": per_site,
              "seconds": round(time.perf_counter() - t0, 1)}
    log(f"{model}: {len(per_site)} sites, {flipped} single-bit flips, {result['refused']} "
        f"refused (checks {counts['checks']}, digest {counts['digest']}, consistency "
        f"{counts['consistency']}), accepted {counts['accepted']}, unchanged "
        f"{counts['unchanged']}; {result['seconds']} s")
    return result


def _name(obj: str, attr: str | None) -> str:
    return obj if attr is None else f"{obj}@{attr}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path)
    p.add_argument("--elements", type=int, default=DEFAULT_ELEMENTS,
                   help="elements per dataset or attribute (first, last, then random)")
    p.add_argument("--bits", type=int, default=DEFAULT_BITS,
                   help="bits flipped per element (0 = every bit)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    from imsnn_lava.outputs import write_json_atomic

    result = run(args.model, args.elements, args.bits, args.seed)
    write_json_atomic(args.out, result)
    print(f"result: {args.out}")
    return 0 if result["accepted"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
