"""``kubelite images pull|ls|rm|import|build-busybox``: the node's image store from the shell.

Like ``crictl pull/images/rmi`` and ``ctr images import``, working on the same store the node
agent uses (``<data-dir>/images``), so images imported here are used by pods with
``imagePullPolicy: IfNotPresent`` or ``Never`` without any registry (air-gapped nodes, the
offline demo).  Pulls show a progress bar on a terminal and plain lines otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import TextIO

from kubelite.agent.runtime.base import ImagePullError, RegistryAuth


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} GB"


class ProgressBar:
    """One line for all layers of a pull: a bar on a TTY, a line per finished layer otherwise."""

    def __init__(self, ref: str, out: TextIO) -> None:
        self.ref = ref
        self.out = out
        self.tty = out.isatty()
        self.layers: dict[str, tuple[int, int]] = {}
        self.last = 0.0

    def __call__(self, digest: str, done: int, total: int) -> None:
        self.layers[digest] = (done, total)
        if not self.tty:
            if total >= 0 and done >= total:
                self.out.write(f"{self.ref}: downloaded {digest[:19]} ({_human(total)})\n")
            return
        now = time.monotonic()
        if now - self.last < 0.05 and done < total:
            return
        self.last = now
        got = sum(d for d, _ in self.layers.values())
        want = sum(max(t, d) for d, t in self.layers.values()) or 1
        width = 30
        fill = int(width * got / want)
        self.out.write(
            f"\r{self.ref} [{'#' * fill}{'.' * (width - fill)}] {_human(got)}/{_human(want)} "
            f"({len(self.layers)} layers)"
        )
        self.out.flush()

    def finish(self) -> None:
        if self.tty and self.layers:
            self.out.write("\n")


def _store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="kubelite's data directory; images live in DATA_DIR/images (default as for `kubelite up`)",
    )


def add_images_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``images`` and its subcommands to the top-level ``kubelite`` parser."""
    images = sub.add_parser(
        "images", help="pull, list, remove and import node images", description=__doc__.split("\n\n")[0]
    )
    images.add_argument("--log-level", default=os.environ.get("KUBELITE_LOG_LEVEL", "warning"))
    isub = images.add_subparsers(dest="images_command", metavar="SUBCOMMAND", required=True)
    pull = isub.add_parser("pull", help="pull an image from a registry")
    pull.add_argument("ref", help="image reference (busybox, registry:5000/repo:tag, repo@sha256:...)")
    pull.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="talk plain HTTP to this registry (loopback registries always are)",
    )
    pull.add_argument("--creds", default="", metavar="USER:PASSWORD", help="registry credentials")
    pull.add_argument("--always", action="store_true", help="re-resolve the tag even if the image is present")
    ls = isub.add_parser("ls", help="list the images in the store")
    ls.add_argument("-q", "--quiet", action="store_true", help="only print references")
    rm = isub.add_parser("rm", help="remove images (and layers no other image uses)")
    rm.add_argument("refs", nargs="+")
    imp = isub.add_parser("import", help="import an OCI layout (dir or tar) or a `docker save` tarball")
    imp.add_argument("path", type=Path)
    imp.add_argument("--name", default=None, help="reference to import the image as")
    bb = isub.add_parser("build-busybox", help="build a busybox-static image and import it")
    bb.add_argument("ref", nargs="?", default="kubelite.local/busybox:1")
    for p in (pull, ls, rm, imp, bb):
        _store_args(p)


def _data_dir(args: argparse.Namespace) -> Path:
    """The node agent's directory of ``kubelite up --data-dir D``: images live in ``D/agent/images``."""
    from kubelite.cli import default_data_dir

    return Path(args.data_dir or default_data_dir()).resolve() / "agent"


async def _pull(args: argparse.Namespace, out: TextIO) -> int:
    from kubelite.agent.images.reference import parse
    from kubelite.agent.images.service import LocalImageService

    svc = LocalImageService(_data_dir(args), insecure_registries=args.insecure_registry)
    auth: dict[str, RegistryAuth] = {}
    if args.creds:
        user, _, password = args.creds.partition(":")
        auth[parse(args.ref).domain] = RegistryAuth(user, password)
    bar = ProgressBar(args.ref, out)
    start = time.monotonic()
    try:
        image = await svc.pull(args.ref, auth, "Always" if args.always else "IfNotPresent", progress=bar)
    finally:
        bar.finish()
    out.write(f"{image.ref}@{image.digest} ({_human(image.size)}) in {time.monotonic() - start:.2f}s\n")
    return 0


def _ls(args: argparse.Namespace, out: TextIO) -> int:
    from kubelite.agent.images.store import ImageStore

    store = ImageStore(_data_dir(args) / "images")
    records = sorted(store.list_images(), key=lambda r: r.ref)
    if args.quiet:
        out.writelines(f"{r.ref}\n" for r in records)
        return 0
    rows = [("REFERENCE", "DIGEST", "SIZE", "LAYERS")]
    rows += [(r.ref, r.digest[:19], _human(r.size), str(len(r.layers))) for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
    return 0


def _rm(args: argparse.Namespace, out: TextIO) -> int:
    from kubelite.agent.images.reference import normalize
    from kubelite.agent.images.store import ImageStore

    store = ImageStore(_data_dir(args) / "images")
    rc = 0
    for ref in args.refs:
        if store.remove_image(normalize(ref)):
            out.write(f"removed {normalize(ref)}\n")
        else:
            sys.stderr.write(f"kubelite images rm: no image {ref}\n")
            rc = 1
    return rc


def _import(args: argparse.Namespace, out: TextIO) -> int:
    from kubelite.agent.images.importer import import_images
    from kubelite.agent.images.store import ImageStore

    store = ImageStore(_data_dir(args) / "images")
    for rec in import_images(store, args.path, args.name):
        out.write(f"imported {rec.ref}@{rec.digest}\n")
    return 0


def _build_busybox(args: argparse.Namespace, out: TextIO) -> int:
    from kubelite.agent.images import builder
    from kubelite.agent.images.importer import import_image_object
    from kubelite.agent.images.store import ImageStore

    store = ImageStore(_data_dir(args) / "images")
    rec = import_image_object(store, builder.busybox_image(), args.ref)
    out.write(f"built and imported {rec.ref}@{rec.digest}\n")
    return 0


def run_images(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Entry point of ``kubelite images``; errors are one line on stderr and exit code 1."""
    out = out or sys.stdout
    try:
        if args.images_command == "pull":
            return asyncio.run(_pull(args, out))
        handler = {"ls": _ls, "rm": _rm, "import": _import, "build-busybox": _build_busybox}
        return handler[args.images_command](args, out)
    except (ImagePullError, FileNotFoundError, PermissionError) as e:
        sys.stderr.write(f"kubelite images {args.images_command}: {e}\n")
        return 1
