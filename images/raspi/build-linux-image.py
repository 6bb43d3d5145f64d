#!/usr/bin/env python3
"""Builds a Linux guest image for the lab from Debian arm64 packages.

Run by `lab images build` (see an image.yaml next to this file), never by a
shell. It writes into OUT:

  Image             the kernel (Debian's arm64 vmlinuz is an uncompressed Image)
  dtbs/<vendor>/    device trees from the kernel package (--dtbs)
  initrd.cpio.gz    a newc initramfs: /init, the unpacked --package debs
                    (less docs and --exclude prefixes), --module kernel
                    modules in /lib/modules and --disk-module ones in
                    /lib/modules/disk (each with the modules they depend
                    on, in load order in modules.order), --file extras
  disk.img          with --disk FOLDER: an ext4 file system of --disk-size
                    bytes holding FOLDER's files (Debian's mke2fs -d)

Packages are pinned as NAME=VERSION (NAME:all=VERSION for an
architecture-independent package) and fetched for arm64 with
`apt-get download` from the machine's own apt sources (no host is named
here) into a download cache shared by every build, so a rebuild never
downloads again. Only the members needed are read from each .deb
(`dpkg-deb --fsys-tarfile`), so the 300 MB of kernel modules are never
written to disk. The initramfs is written by this script, with fixed owners
and times, and the disk by mke2fs with a fixed UUID, hash seed and times,
so the same inputs give the same bytes.
"""

import argparse
import gzip
import re
import io
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ARCH = "arm64"
# Never copied into an initramfs: documentation and the like.
SKIP_PREFIXES = ("usr/share/doc/", "usr/share/man/", "usr/share/lintian/", "usr/share/bug/")


def fail(message):
    print(f"build-linux-image: {message}", file=sys.stderr)
    sys.exit(1)


def split_pin(pin):
    """NAME[:ARCH]=VERSION as (name, arch, version); ARCH is arm64 or all."""
    name, sep, version = pin.partition("=")
    name, _, arch = name.partition(":")
    if not sep or not name or not version:
        fail(f"`{pin}` is not NAME=VERSION: pin every package to an exact version")
    if arch not in ("", ARCH, "all"):
        fail(f"`{pin}`: the architecture is {ARCH} (the default) or all, not {arch}")
    return name, arch or ARCH, version


def fetch(pin, downloads):
    """The cached .deb for NAME[:all]=VERSION, downloading it once."""
    name, arch, version = split_pin(pin)
    debs = downloads / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    deb = debs / f"{name}_{version.replace(':', '%3a')}_{arch}.deb"
    if deb.is_file():
        print(f"cached {deb.name}")
        return deb
    # apt names an arch-all package without a qualifier.
    wanted = f"{name}={version}" if arch == "all" else f"{name}:{arch}={version}"
    with tempfile.TemporaryDirectory(dir=debs, prefix=".fetch-") as tmp:
        run = subprocess.run(
            ["apt-get", "download", wanted],
            cwd=tmp, capture_output=True, text=True)
        print(run.stdout + run.stderr, end="")
        got = list(Path(tmp).glob("*.deb"))
        if run.returncode != 0 or len(got) != 1:
            policy = subprocess.run(["apt-cache", "policy", wanted.partition("=")[0]],
                                    capture_output=True, text=True).stdout
            fail(f"cannot download {wanted}.\n"
                 f"Is the {ARCH} architecture enabled? Run scripts/install-deps.sh.\n"
                 f"If the version is gone from the archive, pin the current one "
                 f"in image.yaml; apt-cache policy says:\n{policy}")
        os.replace(got[0], deb)
    print(f"downloaded {deb.name} ({deb.stat().st_size} bytes)")
    return deb


def members(deb):
    """Yields (tarinfo, file object or None) for every member of a .deb's data."""
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
        for info in tar:
            info.name = info.name.removeprefix("./").rstrip("/")
            yield info, (tar.extractfile(info) if info.isreg() else None)
    if proc.wait() != 0:
        fail(f"dpkg-deb --fsys-tarfile {deb} failed")


class Cpio:
    """A newc ("070701") cpio archive with fixed owners, times and inodes."""

    def __init__(self):
        self.entries = {}  # path -> (mode, data, rdev)

    def dir(self, path):
        parts = Path(path).parts
        for i in range(1, len(parts) + 1):
            self.entries.setdefault("/".join(parts[:i]), (stat.S_IFDIR | 0o755, b"", (0, 0)))

    def add(self, path, mode, data=b"", rdev=(0, 0)):
        path = path.strip("/")
        if "/" in path:
            self.dir(path.rsplit("/", 1)[0])
        self.entries[path] = (mode, data, rdev)

    def file(self, path, data, executable):
        self.add(path, stat.S_IFREG | (0o755 if executable else 0o644), data)

    def bytes(self):
        out = io.BytesIO()

        def entry(ino, name, mode, data, rdev):
            name_bytes = name.encode() + b"\0"
            fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1],
                      len(name_bytes), 0]
            out.write(b"070701" + b"".join(b"%08X" % f for f in fields) + name_bytes)
            out.write(b"\0" * (-out.tell() % 4))
            out.write(data)
            out.write(b"\0" * (-out.tell() % 4))

        # Sorted paths put every folder before what it holds.
        for ino, name in enumerate(sorted(self.entries), start=1):
            entry(ino, name, *self.entries[name])
        entry(0, "TRAILER!!!", 0, b"", (0, 0))
        return out.getvalue()


def add_package(cpio, deb, exclude):
    skip = SKIP_PREFIXES + tuple(e.strip("/") + "/" for e in exclude)
    for info, f in members(deb):
        name = info.name
        if not name or name.startswith(skip):
            continue
        if info.isdir():
            cpio.dir(name)
        elif info.issym():
            cpio.add(name, stat.S_IFLNK | 0o777, info.linkname.encode())
        elif info.isreg():
            cpio.add(name, stat.S_IFREG | (info.mode & 0o7777), f.read())
        elif info.islnk():
            target = info.linkname.removeprefix("./")
            mode, data, _ = cpio.entries[target]
            cpio.add(name, mode, data)


def modinfo_depends(data):
    """The modules a .ko depends on (`depends=` in its .modinfo section)."""
    m = re.search(rb"(?:^|\0)depends=([^\0]*)\0", data)
    return [d for d in (m.group(1).decode().split(",") if m else []) if d]


def load_order(wanted, depends):
    """`wanted` module stems and what they depend on, each after its
    dependencies (stems as modinfo names them: `-` and `_` alike)."""
    order = []

    def visit(stem, path):
        if stem in order:
            return
        if stem in path:
            fail(f"modules depend on each other in a circle: {' -> '.join(path + [stem])}")
        if stem not in depends:
            fail(f"the kernel package has no module {stem}")
        for dep in depends[stem]:
            visit(dep.replace("-", "_"), path + [stem])
        order.append(stem)

    for stem in wanted:
        visit(stem.replace("-", "_"), [])
    return order


# e2fsprogs installs into /usr/sbin, which a user's PATH may leave out.
MKE2FS = shutil.which("mke2fs") or "/usr/sbin/mke2fs"
DEBUGFS = shutil.which("debugfs") or "/usr/sbin/debugfs"
# The disk's fixed identity: the same folder gives the same bytes.
DISK_UUID = "6c61622d-6469-736b-2d30-303030303031"
# 2026-01-01T00:00:00Z: the file system's and its files' times.
DISK_TIME = 1767225600


def parse_size(text):
    """`64M`, `1G`, `512K` or bytes."""
    m = re.fullmatch(r"(\d+)([KMG]?)", text)
    if not m:
        fail(f"--disk-size `{text}` is not a size like 64M")
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


def make_disk(folder, size, out):
    """An ext4 image of `size` bytes at `out` holding `folder`'s files, owned
    by root, every time fixed (mke2fs -d copies the host files' times, so a
    copy of the folder with fixed times is what it reads)."""
    if not folder.is_dir():
        fail(f"--disk {folder} is not a folder")
    with tempfile.TemporaryDirectory(prefix=".disk-", dir=out) as tmp:
        root = Path(tmp) / "root"
        shutil.copytree(folder, root, symlinks=True)
        for path in sorted(root.rglob("*"), reverse=True) + [root]:
            os.utime(path, (DISK_TIME, DISK_TIME), follow_symlinks=False)
        env = dict(os.environ, E2FSPROGS_FAKE_TIME=str(DISK_TIME))
        run = subprocess.run(
            [MKE2FS, "-q", "-F", "-t", "ext4", "-b", "4096", "-L", "lab-data",
             "-U", DISK_UUID, "-E", f"hash_seed={DISK_UUID},root_owner=0:0",
             "-d", str(root), str(out / "disk.img"), str(size // 1024) + "k"],
            env=env, capture_output=True, text=True)
        print(run.stdout + run.stderr, end="")
        if run.returncode != 0:
            fail(f"mke2fs failed for --disk {folder}")
        # mke2fs copies each file's ctime too, which only the clock sets:
        # debugfs writes the fixed time in its place.
        script = Path(tmp) / "ctimes"
        script.write_text("".join(
            f"set_inode_field \"/{p.relative_to(root)}\" ctime @{DISK_TIME}\n"
            for p in sorted(root.rglob("*"))) + f"set_inode_field / ctime @{DISK_TIME}\n")
        run = subprocess.run([DEBUGFS, "-w", "-f", str(script), str(out / "disk.img")],
                             env=env, capture_output=True, text=True)
        if run.returncode != 0 or "set_inode_field:" in run.stderr:
            fail(f"debugfs could not fix the disk's times:\n{run.stderr}")
    print(f"disk.img: {size} bytes, ext4, from {folder}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--downloads", type=Path, required=True, help="shared .deb cache")
    p.add_argument("--kernel", required=True, help="linux-image package, NAME=VERSION")
    p.add_argument("--dtbs", action="append", default=[], help="device tree folder to copy")
    p.add_argument("--module", action="append", default=[],
                   help="kernel module (file stem) that /init loads before power-off")
    p.add_argument("--disk-module", action="append", default=[],
                   help="kernel module (file stem) that /init loads when the lab attached a disk")
    p.add_argument("--disk", type=Path, help="folder to put on an ext4 disk.img")
    p.add_argument("--disk-size", default="64M",
                   help="the disk's size (a power of two: QEMU's SD cards must be)")
    p.add_argument("--package", action="append", default=[], help="deb unpacked into the initramfs")
    p.add_argument("--exclude", action="append", default=[],
                   help="folder left out of every --package (files the guest never opens)")
    p.add_argument("--file", action="append", default=[], help="SRC=DEST copied into the initramfs")
    p.add_argument("--init", type=Path, required=True, help="the initramfs's /init")
    args = p.parse_args()

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("Image", "initrd.cpio.gz", "dtbs", "disk.img"):
        path = out / stale
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()

    cpio = Cpio()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "lib/modules"):
        cpio.dir(d)
    # The kernel opens /dev/console for init before anything is mounted.
    cpio.add("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))

    kernel = fetch(args.kernel, args.downloads)
    # Every module's dependencies; the .ko bytes of those asked for by
    # name. Their dependencies are read in a second pass when needed.
    depends, ko = {}, {}
    named = {m.replace("-", "_") for m in args.module + args.disk_module}
    dtb_prefixes = tuple(f"/{d.strip('/')}/" for d in args.dtbs)
    image_found = False
    for info, f in members(kernel):
        name = info.name
        if not info.isreg():
            continue
        if name.startswith("boot/vmlinuz-"):
            with open(out / "Image", "wb") as dst:
                shutil.copyfileobj(f, dst)
            image_found = True
        elif name.startswith("usr/lib/linux-image-") and dtb_prefixes:
            rel = name.split("/", 3)[3] if name.count("/") >= 3 else ""
            if ("/" + rel).startswith(dtb_prefixes):
                dst = out / "dtbs" / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_bytes(f.read())
        elif name.startswith("lib/modules/") and name.endswith(".ko"):
            stem = Path(name).stem.replace("-", "_")
            data = f.read()
            depends[stem] = modinfo_depends(data)
            if stem in named:
                ko[stem] = data
    if not image_found:
        fail(f"{kernel.name} has no boot/vmlinuz-*")
    late = load_order(args.module, depends)
    early = load_order(args.disk_module, depends)
    if set(late + early) - set(ko):
        for info, f in members(kernel):
            stem = Path(info.name).stem.replace("-", "_")
            if info.isreg() and info.name.endswith(".ko") and stem in set(late + early):
                ko[stem] = f.read()
    for folder, order in (("lib/modules", late), ("lib/modules/disk", early)):
        for stem in order:
            cpio.file(f"{folder}/{stem}.ko", ko[stem], executable=False)
        if order:
            cpio.file(f"{folder}/modules.order", "".join(f"{s}.ko\n" for s in order).encode(),
                      executable=False)
        print(f"{folder}: {' '.join(order) or '(none)'}")
    for d in args.dtbs:
        if not (out / "dtbs" / d).is_dir():
            fail(f"{kernel.name} has no device tree folder {d}")

    for pin in args.package:
        add_package(cpio, fetch(pin, args.downloads), args.exclude)
    for spec in args.file:
        src, sep, dest = spec.partition("=")
        if not sep:
            fail(f"--file `{spec}` is not SRC=DEST")
        data = Path(src).read_bytes()
        cpio.file(dest, data, executable=os.access(src, os.X_OK))
    cpio.file("init", args.init.read_bytes(), executable=True)

    archive = cpio.bytes()
    with open(out / "initrd.cpio.gz", "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=6) as gz:
            gz.write(archive)
    print(f"initramfs: {len(cpio.entries)} entries, {len(archive)} bytes, "
          f"{(out / 'initrd.cpio.gz').stat().st_size} gzipped")
    if args.disk:
        make_disk(args.disk, parse_size(args.disk_size), out)


if __name__ == "__main__":
    main()
