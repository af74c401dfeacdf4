"""The lab's arm64 machine (issue 16, ``./scripts/lab --arch arm64``): Debian Bookworm arm64, the
Raspberry Pi's architecture, under qemu-system-aarch64 (TCG: KVM runs only the host's own
architecture), for scenario 1 (blank card to first loan).

The host cannot run arm64 programs (no binfmt_misc, no qemu-user-static), so debootstrap makes the
base in two stages: the first on the host (``--foreign``: the packages fetched, the essential ones
unpacked), the second inside the guest. Debian's arm64 kernel has virtio and ext4 as modules, so that
first boot takes a small initramfs made here from the packages the first stage fetched: busybox-static
and those few modules. Its /init mounts the disk, runs ``debootstrap --second-stage`` there (which
installs the kernel, and initramfs-tools makes the kernel's own initrd) and writes the finished system
as a tar archive onto a second disk, then powers off; the host unpacks the archive into the cache,
where it is a base like amd64's, booted the same way from then on.

The wheelhouse holds aarch64 wheels for Bookworm's python3 (3.11) and evdev as its source, which the
installer builds in the guest as it does on a Pi (``scripts/install`` builds evdev when no wheel
comes with it): so the base carries gcc, libc6-dev and python3-dev, as a Pi's Raspberry Pi OS does.

Imported by lab/run.py (``--arch arm64``), whose shared pieces it uses (as the module ``run``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import run  # lab/run.py (the script itself: see its main)

ARCH = "arm64"
#: the amd64 recipe with the Pi's kernel, the compiler evdev is built with, and busybox-static (the
#: first boot's initramfs is made of it)
RECIPE = {**run.RECIPE, "arch": ARCH,
          "include": [package.replace("linux-image-amd64", "linux-image-arm64") for package in run.RECIPE["include"]]
          + ["gcc", "libc6-dev", "python3-dev", "busybox-static"]}
#: the modules the second stage's boot needs to mount its disk (their own dependencies are added)
MODULES = ("virtio_pci", "virtio_blk", "ext4", "crc32c_generic")
#: wheels for Bookworm's glibc (2.36) and python3 (3.11) on aarch64
PLATFORMS = ("manylinux_2_36_aarch64", "manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64")
#: the second stage's init (busybox sh); vda is the system, vdb takes the finished system as a tar
STAGE2_INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root LANG=C.UTF-8
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec >/dev/console 2>&1
for module in $(cat /modules); do insmod "/lib/modules/$module" || echo "LAB insmod-failed $module"; done
waited=0
while [ ! -b /dev/vdb ] && [ $waited -lt 120 ]; do sleep 1; waited=$((waited + 1)); done
if ! mount -t ext4 /dev/vda /root; then
    echo "LAB stage2-exit no-disk"; poweroff -f
fi
mount --bind /dev /root/dev
mount -t proc proc /root/proc
mount -t sysfs sysfs /root/sys
echo "LAB stage2-start"
chroot /root /debootstrap/debootstrap --second-stage
rc=$?
echo "LAB stage2-exit $rc"
if [ $rc = 0 ]; then
    chroot /root tar -C / --one-file-system --numeric-owner --xattrs --xattrs-include='*' -cf /dev/vdb .
    echo "LAB tar-exit $?"
else
    tail -n 60 /root/debootstrap/debootstrap.log
fi
umount /root/sys /root/proc /root/dev
umount /root
sync
poweroff -f
"""


class Arm64(run.Arch):
    """Debian arm64 on QEMU's ``virt`` board with a Cortex-A72 (a Pi 4's): the serial console is
    the PL011 (ttyAMA0), the screen a virtio GPU (tty1, QMP screendump) and the keyboard a virtio
    one (the board has neither built in)."""

    name = ARCH
    tag = "arm64-"
    console = "ttyAMA0"
    kvm = False
    #: TCG emulating aarch64 on x86 is several times slower than x86 on x86: the timeouts grow so
    slower = 4

    def qemu(self, accel: str) -> list[str]:
        return ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-accel", accel,
                "-device", "virtio-gpu-pci", "-device", "virtio-keyboard-pci"]

    def base_rootfs(self) -> tuple[Path, float | None]:
        return base_rootfs()

    def wheelhouse(self) -> Path:
        return wheelhouse()


def module_order(folder: Path, wanted: tuple[str, ...]) -> list[Path]:
    """The kernel modules ``wanted`` (names as in ``depends=``) with the ones they depend on, each
    after its dependencies: the order to insmod them (read from each module's own modinfo)."""
    files = {path.name.split(".ko")[0].replace("-", "_"): path for path in folder.rglob("*.ko*")}
    ordered: list[Path] = []

    def add(name: str) -> None:
        path = files[name.replace("-", "_")]
        if path in ordered:
            return
        data = path.read_bytes()
        start = data.find(b"\0depends=") + len(b"\0depends=")
        depends = data[start:data.index(b"\0", start)].decode() if start >= len(b"\0depends=") else ""
        for dependency in filter(None, depends.split(",")):
            add(dependency)
        ordered.append(path)

    for name in wanted:
        add(name)
    return ordered


def newc(entries: list[tuple[str, int, bytes, int]]) -> bytes:
    """A cpio archive in the kernel's initramfs format (newc) from (name, mode, data, rdev)."""
    out = bytearray()
    for number, (name, mode, data, rdev) in enumerate([*entries, ("TRAILER!!!", 0, b"", 0)], 1):
        encoded = name.encode() + b"\0"
        fields = (number, mode, 0, 0, 1, 0, len(data), 0, 0, rdev >> 8, rdev & 0xFF, len(encoded), 0)
        out += b"070701" + b"".join(b"%08X" % field for field in fields) + encoded
        out += b"\0" * (-len(out) % 4) + data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)


def stage2_initramfs(kernel_tree: Path, busybox: Path) -> bytes:
    modules = module_order(kernel_tree / "lib" / "modules", MODULES)
    directory, executable, plain, char = 0o040755, 0o100755, 0o100644, 0o020600
    entries: list[tuple[str, int, bytes, int]] = [
        (name, directory, b"", 0) for name in ("bin", "dev", "lib", "lib/modules", "proc", "root", "sys")]
    entries += [("dev/console", char, b"", (5 << 8) | 1),
                ("bin/busybox", executable, busybox.read_bytes(), 0),
                ("init", executable, STAGE2_INIT.encode(), 0),
                ("modules", plain, "".join(path.name + "\n" for path in modules).encode(), 0)]
    entries += [(f"lib/modules/{path.name}", plain, path.read_bytes(), 0) for path in modules]
    return newc(entries)


def base_rootfs() -> tuple[Path, float | None]:
    """Debian arm64 debootstrapped in two stages (the host's, then the guest's), once per recipe;
    the seconds it took (None: cached)."""
    name = "rootfs-" + RECIPE["arch"] + "-" + run.digest(json.dumps(RECIPE, sort_keys=True).encode(),
                                                         STAGE2_INIT.encode())
    rootfs = run.CACHE / name
    if (rootfs / ".lab-complete").exists():
        return rootfs, None
    for old in run.CACHE.glob("rootfs-arm64-*"):
        shutil.rmtree(old)
    started = time.monotonic()
    scratch = run.CACHE / (name + ".build")
    first = scratch / "stage1"
    scratch.mkdir(parents=True)
    run.log(f"debootstrap --foreign of Debian {RECIPE['suite']} arm64 (the first stage, on this host)")
    subprocess.run(["debootstrap", "--foreign", f"--variant={RECIPE['variant']}", f"--arch={ARCH}",
                    "--include=" + ",".join(RECIPE["include"]), str(RECIPE["suite"]), str(first),
                    str(RECIPE["mirror"])], check=True, stdout=subprocess.DEVNULL)
    first_s = time.monotonic() - started
    debs = first / "var" / "cache" / "apt" / "archives"
    kernel_tree, busybox_tree = scratch / "kernel", scratch / "busybox"
    kernel_deb = next(deb for deb in debs.glob("linux-image-*-arm64_*.deb") if "unsigned" not in deb.name)
    subprocess.run(["dpkg-deb", "-x", str(kernel_deb), str(kernel_tree)], check=True)
    subprocess.run(["dpkg-deb", "-x", str(next(debs.glob("busybox-static_*.deb"))), str(busybox_tree)], check=True)
    kernel = next((kernel_tree / "boot").glob("vmlinuz-*"))
    initramfs = scratch / "stage2.cpio"
    initramfs.write_bytes(stage2_initramfs(kernel_tree, busybox_tree / "bin" / "busybox"))
    system, archive = scratch / "system.img", scratch / "archive.img"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "stage2", "-d", str(first), str(system), "4G"], check=True)
    with archive.open("wb") as handle:
        handle.truncate(3 << 30)
    serial = scratch / "serial.log"
    run.log("the second stage, in the arm64 guest (TCG: slow, once)")
    command = ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-accel", "tcg", "-smp", "2",
               "-m", "2048", "-nic", "none", "-display", "none", "-no-reboot",
               "-kernel", str(kernel), "-initrd", str(initramfs),
               "-append", "console=ttyAMA0 rdinit=/init panic=5",
               # unsafe: a builder's disks (a crash builds them again) and the guest's flushes are many
               "-drive", f"file={system},format=raw,if=virtio,cache=unsafe",
               "-drive", f"file={archive},format=raw,if=virtio,cache=unsafe",
               "-serial", f"file:{serial}"]
    second_started = time.monotonic()
    try:
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=3 * 3600)
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"the arm64 second stage did not finish in 3 hours (see {serial})") from error
    second_s = time.monotonic() - second_started
    said = serial.read_text(errors="replace")
    if "LAB stage2-exit 0" not in said or "LAB tar-exit 0" not in said:
        raise RuntimeError(f"the arm64 second stage failed (see {serial})")
    partial = run.CACHE / (name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    # (the archive ends at its end-of-archive blocks: the zeros after them are never read)
    subprocess.run(["tar", "-xpf", str(archive), "--numeric-owner", "--xattrs", "--xattrs-include=*",
                    "-C", str(partial)], check=True)
    for mount_point in ("dev", "proc", "sys"):
        (partial / mount_point).mkdir(exist_ok=True)
    (partial / ".lab-build.json").write_text(json.dumps(
        {"first_stage_s": round(first_s, 1), "second_stage_s": round(second_s, 1)}))
    partial.rename(rootfs)
    run.log(f"the arm64 base: the first stage {first_s:.0f} s (on the host), the second {second_s:.0f} s (in the guest)")
    shutil.rmtree(scratch)
    (rootfs / ".lab-complete").touch()
    return rootfs, round(time.monotonic() - started, 1)


def wheelhouse() -> Path:
    """The pinned dependencies for the arm64 guest (no network): aarch64 wheels for Bookworm's
    python3, and the source of those that ship none (evdev), built by the installer in the guest."""
    locks = run.locks()
    folder = run.CACHE / ("wheelhouse-arm64-" + run.digest(*(lock.read_bytes() for lock in locks)))
    if folder.is_dir():
        return folder
    partial = run.CACHE / (folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    platforms = [word for platform in PLATFORMS for word in ("--platform", platform)]
    run.log("downloading the pinned dependencies for aarch64 into a wheelhouse")
    # (--no-deps lets pip take a source where a package has no wheel: evdev)
    subprocess.run([*run.tools_pip(), "download", "--no-deps", *platforms, "--python-version", "3.11",
                    "--implementation", "cp", "--abi", "cp311", *run.lock_arguments(locks), "-d", str(partial)],
                   check=True)
    partial.rename(folder)
    return folder
