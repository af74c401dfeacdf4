"""The lab (issue 16): a Debian Bookworm machine built with debootstrap and booted under QEMU, with
bookcorner installed on it by its own installer, as a school would. Run through ./scripts/lab (as
root); the last line printed is one JSON object with each scenario's verdict and figures.

It lives at the top of the repository, beside the product and outside it: it is a tool of the people
working on bookcorner (like bench/), never installed on a Pi, and it needs nothing but the standard
library (it runs with the host's python3 before any venv exists).

The guest has no network: the pinned dependencies go in as a wheelhouse built on the host and the
program as a release copy of this checkout, both written into the image before ``mkfs.ext4 -d``.
A small agent in the guest (lab/guest_agent.py, a systemd unit) runs the installer on the first
boot and powers off; that installed card is kept in the cache, and each scenario boots a copy of it.
On every later boot the agent says on the serial console (lines starting with ``LAB``) when the
kiosk's idle screen shows on tty1, and runs the host's commands from the virtio-serial port lab.ctl;
the power-cut driver (lab/guest_driver.py) acknowledges events on lab.acks. Scenarios: 1 (the kiosk
and a first loan typed at it), 2 (kernel devices, lab/kernel_devices.py), 3 (power cuts, ``--soak N``),
4 (kills, a frozen kiosk, a full data partition), 5 (cage + foot showing Chinese, lab/screen.py) and 6 (an
upgrade in place from an older commit, lab/upgrade.py). docs/operations.md, "The lab", says what it proves and
what it cannot.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # the checkout's own bookcorner (this runs with the system's python3)
from bookcorner.ops.release import copy_release

CACHE = ROOT / ".lab-cache"
#: what the base image is made from: a change here builds it anew
RECIPE = {
    "suite": "bookworm",
    "mirror": "http://deb.debian.org/debian",
    "variant": "minbase",
    "arch": "amd64",
    "include": ["systemd", "systemd-sysv", "udev", "linux-image-amd64", "python3", "python3-venv",
                "e2fsprogs", "kbd",
                # scenario 5: the screen that shows Chinese (bookcorner.ops.screen.PACKAGES) and the
                # logind seat cage takes (libpam-systemd; dbus named, as debootstrap picks no provider)
                "cage", "foot", "fonts-noto-cjk", "libpam-systemd", "dbus"],
}
#: the host's tools and the Debian packages they come in
TOOLS = {"qemu-system-x86_64": "qemu-system-x86", "qemu-system-aarch64": "qemu-system-arm",
         "debootstrap": "debootstrap", "mkfs.ext4": "e2fsprogs", "dpkg-deb": "dpkg"}
UNITS = ("bookcorner-kiosk", "bookcorner-syncd", "bookcorner-central")
IDLE_WORDS = "Tap your card"
NOT_BUILT = "not built"
SCENARIOS = ("blank-card-to-first-loan", "kernel-devices", "power-cuts", "watchdog-and-restarts",
             "chinese-on-the-real-screen", "upgrade-in-place")

AGENT_UNIT = """[Unit]
Description=the lab's agent (installs bookcorner, then answers the host)
After=local-fs.target serial-getty@ttyS0.service

[Service]
Type=simple
ExecStart=/usr/bin/python3 /usr/local/sbin/lab-agent
# a boot's agent that dies is started again (it says why on the console first), and the kernel's
# OOM killer takes the product's processes before it: a guest that ran out of memory still answers
Restart=on-failure
RestartSec=1
OOMScoreAdjust=-900

[Install]
WantedBy=multi-user.target
"""
#: a card and a book of the demo school (the class teacher: no class slot, ten books)
DEMO_CARD, DEMO_BOOK = "0002560352", "30732000101214"
#: a child's card for the first loan at the kiosk (the README's)
CHILD_CARD = "0014431799"
KIOSK_TOML = "/etc/bookcorner/kiosk.toml"
BOOKCORNER = "/opt/bookcorner/venv/bin/bookcorner"
CENTRAL_DB = "/var/lib/bookcorner-central/central.db"


def log(message: str) -> None:
    print(f"lab: {message}", file=sys.stderr, flush=True)


def ensure_tools() -> None:
    missing = sorted({package for tool, package in TOOLS.items() if shutil.which(tool) is None})
    if missing:
        log(f"installing {', '.join(missing)} with apt-get")
        subprocess.run(["apt-get", "update"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *missing], check=True,
                       stdout=subprocess.DEVNULL)


def digest(*parts: bytes) -> str:
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]


def base_rootfs() -> tuple[Path, float | None]:
    """The debootstrapped Bookworm, built once per recipe; the seconds it took (None: cached)."""
    name = "rootfs-" + digest(json.dumps(RECIPE, sort_keys=True).encode())
    rootfs = CACHE / name
    if (rootfs / ".lab-complete").exists():
        return rootfs, None
    for old in CACHE.glob("rootfs-" + "?" * 16):  # (not another architecture's, rootfs-arm64-…)
        shutil.rmtree(old)
    partial = CACHE / (name + ".partial")
    log(f"building the Bookworm image with debootstrap into {rootfs} (a few minutes, once)")
    started = time.monotonic()
    subprocess.run(["debootstrap", f"--variant={RECIPE['variant']}", f"--arch={RECIPE['arch']}",
                    "--include=" + ",".join(RECIPE["include"]), str(RECIPE["suite"]), str(partial),
                    str(RECIPE["mirror"])],
                   check=True, stdout=subprocess.DEVNULL)
    partial.rename(rootfs)
    (rootfs / ".lab-complete").touch()
    return rootfs, round(time.monotonic() - started, 1)


def locks() -> list[Path]:
    return sorted((ROOT / "deploy").glob("requirements-*.txt"))


def lock_arguments(files: list[Path]) -> list[str]:
    """pip's arguments for what a machine installs from the locks (not the test layer)."""
    return [word for lock in files if lock.stem != "requirements-test" for word in ("-r", str(lock))]


def tools_pip() -> list[str]:
    """The host's pip, in a venv of the lab's own (for downloading the wheelhouse)."""
    tools = CACHE / "tools-venv"
    if not (tools / "bin" / "pip").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(tools)], check=True)
    return [str(tools / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--quiet"]


def wheelhouse() -> Path:
    """The pinned dependencies as wheels (the guest has no network), once per lock."""
    files = locks()
    folder = CACHE / ("wheelhouse-" + digest(*(lock.read_bytes() for lock in files)))
    if folder.is_dir():
        return folder
    pip = tools_pip()
    partial = CACHE / (folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    log("downloading the pinned dependencies into a wheelhouse")
    subprocess.run([*pip, "download", "--no-deps", *lock_arguments(files), "-d", str(partial)], check=True)
    for sdist in partial.glob("*.tar.gz"):  # evdev ships as source: built here, as on a Pi with a compiler
        subprocess.run([*pip, "wheel", "--no-deps", "-w", str(partial), str(sdist)], check=True)
        sdist.unlink()
    partial.rename(folder)
    return folder


def release_digest() -> str:
    """What the installed image is made from: this checkout's release (any change to the
    product installs anew), the lab's agent and its power-cut driver."""
    hashed = hashlib.sha256()
    with tempfile.TemporaryDirectory() as scratch:
        release = copy_release(ROOT, Path(scratch) / "release")
        for path in sorted(release.rglob("*")):
            if path.is_file() and not path.is_symlink():
                hashed.update(path.relative_to(release).as_posix().encode() + b"\0" + path.read_bytes())
    hashed.update((HERE / "guest_agent.py").read_bytes())
    hashed.update((HERE / "guest_driver.py").read_bytes())  # on the card too (/opt/lab/driver.py)
    hashed.update(AGENT_UNIT.encode())
    return hashed.hexdigest()[:16]


def prepare(rootfs: Path, wheels: Path, wait: int, console: str = "ttyS0", install_args: str = "") -> None:
    """The blank card: the base system, the release, the wheelhouse and the agent (nothing installed);
    ``install_args``: more arguments for scripts/install on the first boot."""
    lab = rootfs / "opt" / "lab"
    shutil.rmtree(lab, ignore_errors=True)
    shutil.rmtree(rootfs / "var" / "lib" / "lab", ignore_errors=True)
    lab.mkdir(parents=True)
    copy_release(ROOT, lab / "release")
    shutil.copytree(wheels, lab / "wheelhouse")
    shutil.copy2(HERE / "guest_driver.py", lab / "driver.py")
    if install_args:
        (lab / "install-args").write_text(install_args + "\n")
    (rootfs / "etc" / "fstab").write_text("/dev/vda / ext4 rw,errors=remount-ro 0 1\n")
    (rootfs / "etc" / "hostname").write_text("bookcorner-lab\n")
    agent = rootfs / "usr" / "local" / "sbin" / "lab-agent"
    agent.write_text((HERE / "guest_agent.py").read_text().replace("__WAIT__", str(wait))
                     .replace("__IDLE__", IDLE_WORDS).replace("__CONSOLE__", console))
    agent.chmod(0o755)
    unit = rootfs / "etc" / "systemd" / "system" / "lab-agent.service"
    unit.write_text(AGENT_UNIT.replace("ttyS0", console))
    wants = rootfs / "etc" / "systemd" / "system" / "multi-user.target.wants" / "lab-agent.service"
    wants.unlink(missing_ok=True)
    wants.symlink_to("/etc/systemd/system/lab-agent.service")


def make_disk(rootfs: Path, disk: Path) -> None:
    disk.unlink(missing_ok=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(rootfs), str(disk), "4G"], check=True)


def cache_mode(folder: Path) -> str:
    """How QEMU writes the disk image. ``none`` (O_DIRECT): the guest sees a disk with a write
    cache, so its fsync ends in a flush QEMU passes to the host, and no host page cache stands
    between the two. (A SIGKILLed QEMU loses, as a power cut does, the guest's own page cache
    and what it had not yet handed the host, in every mode; ``unsafe`` would drop the flushes
    themselves, which only a host crash shows, and says nothing true about the guest.) Where
    the host's file system takes no O_DIRECT (tmpfs), ``writeback``, which keeps the flushes."""
    probe = folder / ".direct-probe"
    try:
        handle = os.open(probe, os.O_CREAT | os.O_WRONLY | getattr(os, "O_DIRECT", 0), 0o600)
        os.close(handle)
        return "none"
    except OSError:
        return "writeback"
    finally:
        probe.unlink(missing_ok=True)


class Arch:
    """The machine the lab boots: amd64 here; lab/arm64.py makes the Pi's (``--arch arm64``)."""

    name = "amd64"
    #: in the cache's names (rootfs-…, installed-….img): none for amd64, whose names came first
    tag = ""
    #: the kernel's serial console: the login prompt and the agent's LAB lines
    console = "ttyS0"
    #: whether KVM may run it here (else TCG)
    kvm = True
    #: how many times slower than amd64's its boots are, for the timeouts
    slower = 1

    def qemu(self, accel: str) -> list[str]:
        return ["qemu-system-x86_64", "-accel", accel, "-vga", "std"]

    def base_rootfs(self) -> tuple[Path, float | None]:
        return base_rootfs()

    def wheelhouse(self) -> Path:
        return wheelhouse()


AMD64 = Arch()

#: the machines started, stopped when the lab ends however it ends
RUNNING: list[Machine] = []


class Machine:
    """One QEMU run: the serial console logged to a file (through a unix socket), a QMP socket,
    and two virtio-serial ports: lab.ctl (the agent's commands) and lab.acks (the driver's)."""

    def __init__(self, rootfs: Path, disk: Path, run: Path, accel: str, cache: str, name: str = "",
                 extra: tuple[str, ...] = (), arch: Arch = AMD64) -> None:
        self.run, self.accel = run, accel
        stamp = f"{name or 'boot'}-{int(time.time() * 1000)}"
        self.serial_log = run / f"serial-{stamp}.log"
        self.qmp_path = run / "qmp.sock"
        for sock in ("qmp.sock", "serial.sock", "ctl.sock", "acks.sock", "rfid.sock"):
            (run / sock).unlink(missing_ok=True)
        kernel = max((rootfs / "boot").glob("vmlinuz-*"))
        initrd = rootfs / "boot" / ("initrd.img-" + kernel.name.removeprefix("vmlinuz-"))
        self.command = [
            *arch.qemu(accel), "-m", "1024", "-smp", "2", "-nic", "none", "-display", "none", "-no-reboot",
            "-drive", f"file={disk},format=raw,if=virtio,cache={cache},aio=threads",
            "-kernel", str(kernel), "-initrd", str(initrd),
            # ro: the root file system is checked at boot (systemd-fsck-root), then remounted rw by fstab
            # quiet, as a Pi's cmdline.txt: kernel warnings would be printed over the kiosk on tty1
            "-append", f"root=/dev/vda ro quiet console=tty1 console={arch.console}",
            "-chardev", f"socket,id=console,path={run / 'serial.sock'},server=on,wait=off,logfile={self.serial_log}",
            "-serial", "chardev:console",
            "-device", "virtio-serial-pci",
            "-chardev", f"socket,id=ctl,path={run / 'ctl.sock'},server=on,wait=off",
            "-device", "virtserialport,chardev=ctl,name=lab.ctl",
            "-chardev", f"socket,id=acks,path={run / 'acks.sock'},server=on,wait=off",
            "-device", "virtserialport,chardev=acks,name=lab.acks",
            "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
            *extra,  # a scenario's own devices (scenario 2: a USB serial card reader)
        ]
        self.started = time.monotonic()
        RUNNING.append(self)
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.seen: dict[str, float] = {}
        self._ctl: socket.socket | None = None
        self._ctl_buffer = b""
        self._next_id = 0
        self.acks: list[tuple[float, str]] = []
        self._acks_thread: threading.Thread | None = None

    def text(self) -> str:
        return self.serial_log.read_text(errors="replace") if self.serial_log.exists() else ""

    def at(self) -> float:
        return round(time.monotonic() - self.started, 1)

    def wait_for(self, marks: dict[str, str], until: str, timeout: float) -> bool:
        """Note when each mark (a text) first shows on the serial console; True once ``until`` has."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            for name, mark in marks.items():
                if name not in self.seen and mark in text:
                    self.seen[name] = self.at()
            if until in self.seen:
                return True
            if self.process.poll() is not None:
                return until in self.seen
            time.sleep(0.2)
        return False

    def _connect(self, name: str) -> socket.socket:
        for _ in range(100):
            try:
                connection = socket.socket(socket.AF_UNIX)
                connection.connect(str(self.run / name))
                return connection
            except (FileNotFoundError, ConnectionRefusedError):
                connection.close()
                time.sleep(0.1)
        raise RuntimeError(f"QEMU's {name} never opened")

    def _line(self, timeout: float) -> bytes:
        assert self._ctl is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._ctl_buffer:
            left = deadline - time.monotonic()
            if left <= 0 or self.process.poll() is not None:
                raise TimeoutError("the guest's agent did not answer")
            self._ctl.settimeout(min(left, 1.0))
            try:
                chunk = self._ctl.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                raise TimeoutError("the guest's agent hung up")
            self._ctl_buffer += chunk
        line, self._ctl_buffer = self._ctl_buffer.split(b"\n", 1)
        return line

    def agent(self, timeout: float) -> None:
        """Connect to lab.ctl and lab.acks, and wait until the agent answers (what the host
        writes before the guest opens its port may be dropped: asked again every 2 s). Halfway
        without an answer, the host's connection is made anew (QEMU then tells the guest the
        port closed and opened again); at the end, the error says what the guest's side showed."""
        self._ctl = self._connect("ctl.sock")
        self.listen_acks()
        began = time.monotonic()
        reconnected = False
        while True:
            self._next_id += 1
            # (a newline first: it ends whatever part of an earlier hello the guest may have got)
            self._ctl.sendall(b"\n" + json.dumps({"id": self._next_id, "sh": "true", "timeout": 5}).encode() + b"\n")
            try:
                self._line(2)
                break
            except TimeoutError as error:
                waited = time.monotonic() - began
                if waited > timeout or self.process.poll() is not None:
                    raise TimeoutError(f"{error} in {waited:.0f} s ({self.ctl_state()})") from error
                if waited > timeout / 2 and not reconnected:
                    self._ctl.close()
                    self._ctl, self._ctl_buffer, reconnected = self._connect("ctl.sock"), b"", True
                    self.seen.setdefault("ctl_reconnected", self.at())
        self.seen.setdefault("agent", self.at())

    def ctl_state(self) -> str:
        """What the guest's side of lab.ctl shows, for a boot whose agent does not answer:
        whether the guest holds the port open (QMP query-chardev's frontend-open), and what the
        agent said on the serial console."""
        try:
            chardevs = {dev["label"]: dev for dev in self.qmp("query-chardev").get("return", [])}
            port = chardevs.get("ctl", {}).get("frontend-open")
            opened = {True: "the guest holds lab.ctl open", False: "the guest has not opened lab.ctl"}.get(
                port, "lab.ctl not in query-chardev")
        except (OSError, ValueError) as error:
            opened = f"QMP did not answer ({type(error).__name__}: {error})"
        said = [line for line in self.text().splitlines()
                if line.startswith(("LAB ", "LAB-LOG")) or "Out of memory" in line or "oom" in line.lower()]
        return f"{opened}; QEMU {'running' if self.process.poll() is None else 'ended'}; the console's last " \
               f"LAB lines: {' | '.join(said[-6:]) or 'none'}"

    def sh(self, command: str, timeout: float = 120, background: bool = False, log_file: str = "") -> tuple[int, str]:
        """Run ``command`` with bash in the guest, as root; its exit status and output."""
        assert self._ctl is not None
        self._next_id += 1
        request = {"id": self._next_id, "sh": command, "timeout": timeout, "background": background}
        if log_file:
            request["log"] = log_file
        self._ctl.sendall(json.dumps(request).encode() + b"\n")
        try:
            while (reply := json.loads(self._line(timeout + 30)))["id"] != request["id"]:
                pass  # the answer to an earlier hello
        except TimeoutError as error:  # (the agent answers even a command that hangs, at its timeout)
            raise TimeoutError(f"{error} to {command[:60]!r} ({self.ctl_state()})") from error
        return reply["rc"], reply["out"]

    def listen_acks(self) -> None:
        """Keep every line the driver sends on lab.acks, with the moment it came."""
        connection = self._connect("acks.sock")

        def read() -> None:
            pending = b""
            while True:
                try:
                    chunk = connection.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    self.acks.append((time.monotonic(), line.decode(errors="replace")))
        self._acks_thread = threading.Thread(target=read, daemon=True)
        self._acks_thread.start()

    def qmp(self, command: str, **arguments: object) -> dict:
        with QMP(self.qmp_path) as session:
            return session.execute(command, **arguments)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self._ctl is not None:
            self._ctl.close()

    def exited(self, timeout: float) -> bool:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True


class QMP:
    """One QMP session (typing a scan is many commands in a few milliseconds each)."""

    def __init__(self, path: Path) -> None:
        self.connection = socket.socket(socket.AF_UNIX)
        self.connection.connect(str(path))
        self.stream = self.connection.makefile("rw")
        self.stream.readline()  # the greeting
        self.execute("qmp_capabilities")

    def execute(self, command: str, **arguments: object) -> dict:
        self.stream.write(json.dumps({"execute": command, "arguments": arguments}) + "\n")
        self.stream.flush()
        while "return" not in (answer := json.loads(self.stream.readline())) and "error" not in answer:
            pass  # events
        return answer

    def type(self, text: str, gap_s: float = 0.012) -> None:
        """``text`` then Enter as a keyboard-wedge scanner types it: a key every few ms (one key
        a command: the PS/2 keyboard's queue holds 16 bytes)."""
        keys = [{"0": "0"}.get(char, char) if char.isdigit() else char.lower() for char in text] + ["ret"]
        for key in keys:
            events = [{"type": "key", "data": {"down": down, "key": {"type": "qcode", "data": key}}}
                      for down in (True, False)]
            self.execute("input-send-event", events=events)
            time.sleep(gap_s)

    def __enter__(self) -> QMP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.close()  # (the socket stays open while its file does: QEMU would take no other client)
        self.connection.close()


def boot(rootfs: Path, disk: Path, run: Path, cache: str, name: str = "", extra: tuple[str, ...] = (),
         arch: Arch = AMD64) -> Machine:
    """A machine started with KVM where it works here, else TCG (the choice is remembered)."""
    if not arch.kvm:
        return Machine(rootfs, disk, run, "tcg", cache, name, extra, arch)
    choice = CACHE / "accel"
    accel = choice.read_text().strip() if choice.exists() else "kvm"
    machine = Machine(rootfs, disk, run, accel, cache, name, extra, arch)
    if accel == "kvm" and not choice.exists():
        if not machine.wait_for({"kernel": "Linux version"}, "kernel", 20):
            log("KVM does not boot here: falling back to TCG")
            machine.stop()
            accel = "tcg"
            machine = Machine(rootfs, disk, run, accel, cache, name, extra, arch)
        choice.write_text(accel + "\n")
    return machine


def lab_lines(text: str, word: str) -> list[str]:
    return [line.split(None, 2)[2] if line.count(" ") >= 2 else "" for line in text.splitlines()
            if line.startswith(f"LAB {word}")]


def screen_text(vcsa: bytes) -> str:
    rows, cols = vcsa[0], vcsa[1]
    chars = vcsa[4::2]
    return "\n".join(chars[r * cols:(r + 1) * cols].decode("cp437").rstrip() for r in range(rows)).strip("\n")


def ppm_to_png(ppm: Path, png: Path) -> None:
    data = ppm.read_bytes()
    fields: list[bytes] = []
    position = 0
    while len(fields) < 4:  # P6, width, height, maxval (no comments in QEMU's)
        while data[position:position + 1].isspace():
            position += 1
        end = position
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[position:end])
        position = end
    width, height = int(fields[1]), int(fields[2])
    pixels = data[position + 1:]
    rows = b"".join(b"\0" + pixels[y * width * 3:(y + 1) * width * 3] for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                    + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def screenshot(machine: Machine, png: Path) -> str:
    ppm = png.with_suffix(".ppm")
    machine.qmp("screendump", filename=str(ppm))
    for _ in range(50):
        if ppm.exists() and ppm.stat().st_size:
            break
        time.sleep(0.1)
    time.sleep(0.5)
    ppm_to_png(ppm, png)
    ppm.unlink()
    return str(png)


def tty1(machine: Machine) -> str:
    _rc, out = machine.sh("base64 -w0 /dev/vcsa1")
    return screen_text(base64.b64decode(out.strip()))


def as_kiosk_user(*words: str) -> str:
    return f"runuser -u bookcorner -- {BOOKCORNER} --config {KIOSK_TOML} " + " ".join(words)


# -- the installed image ------------------------------------------------------------------------------


class Lab:
    def __init__(self, rootfs: Path, wheels: Path, run: Path, timeout: int, cache: str,
                 keep_install: bool = False, arch: Arch = AMD64) -> None:
        self.rootfs, self.wheels, self.run, self.cache = rootfs, wheels, run, cache
        self.keep_install, self.arch = keep_install, arch
        #: seconds a boot may take, and the waits in the guest, grown for a slower architecture
        self.timeout, self.slower = timeout * arch.slower, arch.slower
        #: once a run: the checkout may change while it runs (its scenarios share one install); and
        #: the base it is installed on (scenario 5's packages changed what the installer finds)
        self.digest = digest(release_digest().encode(), rootfs.name.encode())
        self.installed: Path | None = None

    def boot(self, disk: Path, name: str, extra: tuple[str, ...] = ()) -> Machine:
        return boot(self.rootfs, disk, self.run, self.cache, name, extra, self.arch)

    def installed_image(self) -> tuple[Path, dict]:
        """The blank card with bookcorner installed by its own installer (the README's steps),
        made once per release of this checkout and kept in the cache."""
        figures: dict = {}
        pattern = f"installed-{self.arch.tag}{'?' * 16}.img"  # (this architecture's alone)
        image = CACHE / f"installed-{self.arch.tag}{self.digest}.img"
        kept = sorted(CACHE.glob(pattern))
        if self.keep_install and kept and not image.exists():
            image = kept[-1]
            figures["install"] = f"kept ({image.name}: made from an older checkout)"
            return image, figures
        if image.exists():
            figures["install"] = "cached"
            return image, figures
        for old in CACHE.glob(pattern):
            old.unlink()
        # the bare console: the scenarios read the kiosk's words from tty1 (/dev/vcs1), which cage's
        # screen has none of (the base carries cage + foot for scenario 5, which switches to it)
        prepare(self.rootfs, self.wheels, self.timeout, self.arch.console, "--screen console")
        disk = self.run / "install.img"
        started = time.monotonic()
        make_disk(self.rootfs, disk)
        figures["mkfs_seconds"] = round(time.monotonic() - started, 1)
        log("first boot: the installer runs in the guest")
        machine = self.boot(disk, "install")
        figures["accel"] = machine.accel
        installed = machine.wait_for({"login": " login:", "installed": "LAB install-exit"}, "installed",
                                     self.timeout * 4)
        text = machine.text()
        figures["install_boot_seconds"] = machine.seen.get("installed")
        figures["install_exit"] = next(iter(lab_lines(text, "install-exit")), None)
        figures["central_demo_exit"] = next(iter(lab_lines(text, "central-demo-exit")), None)
        log_lines = [line[8:] for line in text.splitlines() if line.startswith("LAB-LOG")]
        (self.run / "install.log").write_text("\n".join(log_lines))
        figures["installer_said"] = [line for line in log_lines if "screen" in line or "kiosk" in line
                                     and ("server" in line or "credential" in line)]
        powered_off = installed and machine.exited(180)
        machine.stop()
        if not installed or figures["install_exit"] != "0" or not powered_off:
            raise LabFailure(f"the install did not finish (see {self.run / 'install.log'} and {machine.serial_log})",
                             figures)
        os.replace(disk, image)
        return image, figures

    def copy_of(self, image: Path, name: str) -> Path:
        disk = self.run / f"{name}.img"
        disk.unlink(missing_ok=True)
        subprocess.run(["cp", "--sparse=always", "--reflink=auto", str(image), str(disk)], check=True)
        return disk


class LabFailure(Exception):
    def __init__(self, why: str, figures: dict) -> None:
        super().__init__(why)
        self.figures = figures


def boot_figures(machine: Machine, timeout: float) -> dict:
    """Seconds from QEMU's start to the serial login prompt and to the kiosk's idle screen on
    tty1, in this boot, and their ratio (the goal: the kiosk within 1.5x the login prompt)."""
    machine.wait_for({"login": " login:", "kiosk": "LAB kiosk-idle", "no-kiosk": "LAB kiosk-not-idle",
                      "boot": "LAB boot"}, "kiosk", timeout)
    machine.wait_for({"login": " login:"}, "login", 30)
    login, kiosk = machine.seen.get("login"), machine.seen.get("kiosk")
    return {"login_prompt_s": login, "kiosk_ready_s": kiosk,
            "ratio": round(kiosk / login, 2) if login and kiosk else None}


# -- scenario 1 -------------------------------------------------------------------------------------


def first_loan(lab: Lab) -> dict:
    """Scenario 1: the installed card powered on; the kiosk on tty1, the services running; a
    child's card and a book typed into the kiosk as a keyboard-wedge scanner types them; the
    loan in the kiosk's journal and on the central server inside the guest."""
    image, figures = lab.installed_image()
    disk = lab.copy_of(image, "scenario1")
    log("scenario 1: the kiosk on tty1, then a first loan typed at it")
    machine = lab.boot(disk, "scenario1")
    figures.update(boot_figures(machine, lab.timeout))
    machine.agent(60 * lab.slower)
    figures["screen_text"] = tty1(machine)
    rc, units = machine.sh("systemctl is-active " + " ".join(UNITS))
    figures["units"] = dict(zip(UNITS, units.split(), strict=False))
    figures["screenshot_idle"] = screenshot(machine, lab.run / "kiosk-idle-tty1.png")
    _rc, figures["sync_settings"] = machine.sh(f"grep -E '^server_url' {KIOSK_TOML}; "
                                               "stat -c '%a %U' /var/lib/bookcorner/sync/credential")
    # the loan, typed at the kiosk (its terminal takes a keyboard wedge's bursts as scans and taps)
    typed_at = time.monotonic()
    with QMP(machine.qmp_path) as qmp:
        qmp.type(CHILD_CARD)
        time.sleep(3)
        qmp.type(DEMO_BOOK)
    figures["how"] = "typed at the kiosk on tty1 (QMP input-send-event, a key every 12 ms, Enter)"
    loan = None
    for _ in range(60 * lab.slower):
        rc, out = machine.sh(as_kiosk_user("circ", "status", CHILD_CARD, "--json", "--data-dir", "/var/lib/bookcorner"))
        if rc == 0 and any(held["item_id"] for held in json.loads(out.splitlines()[-1])["loans"]):
            loan = json.loads(out.splitlines()[-1])
            break
        time.sleep(1)
    figures["loan_in_journal_s"] = round(time.monotonic() - typed_at, 1) if loan else None
    figures["screen_after_loan"] = tty1(machine)
    figures["screenshot_loan"] = screenshot(machine, lab.run / "kiosk-loan-tty1.png")
    on_server = None
    query = ("import sqlite3; db = sqlite3.connect('file:" + CENTRAL_DB + "?mode=ro', uri=True); "
             "print(db.execute(\"select count(*) from loans where kiosk_id = 'demo-corner' and "
             "returned_at is null\").fetchone()[0])")
    for _ in range(90 * lab.slower if loan else 0):
        rc, out = machine.sh("python3 -c " + shlex.quote(query))
        if rc == 0 and out.strip().isdigit() and int(out.strip()) > 0:
            on_server = int(out.strip())
            break
        time.sleep(1)
    figures["loan_on_server_s"] = round(time.monotonic() - typed_at, 1) if on_server else None
    _rc, figures["central_kiosks"] = machine.sh(as_kiosk_user("central", "kiosks", "--db", CENTRAL_DB))
    _rc, figures["sync_status"] = machine.sh("journalctl -b -u bookcorner-syncd --no-pager -o cat | tail -5")
    machine.qmp("quit")
    machine.stop()
    (lab.run / "scenario1.log").write_text(machine.text())
    ok = (list(figures["units"].values()) == ["active"] * 3 and IDLE_WORDS in figures["screen_text"]
          and loan is not None and on_server is not None and "sync problem" not in figures["screen_text"])
    if not ok:
        figures["why"] = f"see {lab.run / 'scenario1.log'}"
    return {"verdict": "pass" if ok else "fail", **figures}


# -- scenario 3 -------------------------------------------------------------------------------------

DRIVER = (f"cd /var/lib/bookcorner && runuser -u bookcorner -- env BOOKCORNER_CONFIG={KIOSK_TOML} "
          f"/opt/bookcorner/venv/bin/python /opt/lab/driver.py {DEMO_CARD} {DEMO_BOOK} 3>/dev/virtio-ports/lab.acks")
#: the ids (on stdin) that are not in the journal: only they come back (the agent's answers stay small)
JOURNAL_MISSING = ("/opt/bookcorner/venv/bin/python -c 'import sys; from bookcorner.journal.journal import JournalReader; "
                   "have = {r[\"event_id\"] for r in JournalReader(\"/var/lib/bookcorner/journal\").records_after(0)}; "
                   "[print(i) for i in sys.stdin.read().split() if i not in have]'")


def heredoc(ids: list[str]) -> str:
    return " <<'IDS'\n" + "\n".join(ids) + "\nIDS\n"


def after_cut(machine: Machine, acked: list[str], these: list[str], timeout: float) -> dict:
    """What a boot after a cut shows: its times, the file system check, the journal's own
    check, the acknowledged events still there, the kiosk started cleanly."""
    found = boot_figures(machine, timeout)
    machine.agent(60)
    _rc, fsck = machine.sh("journalctl -b -u systemd-fsck-root --no-pager -o cat | grep -v '^Finished\\|^Starting'")
    found["fsck"] = " / ".join(line.strip() for line in fsck.splitlines() if line.strip())[-300:]
    # (slow right after a cut under TCG: the kiosk, the sync daemon and the server all start then)
    rc, check = machine.sh(as_kiosk_user("journal", "check", "--data-dir", "/var/lib/bookcorner"), timeout=400)
    found["journal_check"] = check.strip().splitlines()[-1] if check.strip() else f"exit {rc}"
    found["journal_ok"] = rc == 0
    rc, missing = machine.sh(JOURNAL_MISSING + heredoc(acked), timeout=400)
    if rc != 0:
        raise RuntimeError(f"the journal could not be read: {missing[-300:]}")
    found["lost"] = missing.split()
    # this cut's own acknowledged ids the never-fsynced control file lost
    _rc, control = machine.sh("grep -cvxF -f /var/lib/bookcorner/lab-control" + heredoc(these))
    found["control_lost"] = int(control.split()[0]) if control.split() and control.split()[0].isdigit() else None
    _rc, state = machine.sh("systemctl show bookcorner-kiosk -p ActiveState -p NRestarts")
    shown = dict(line.split("=", 1) for line in state.split() if "=" in line)
    found["kiosk_state"] = f"{shown.get('ActiveState')}, {shown.get('NRestarts')} restarts"
    found["kiosk_clean"] = "kiosk" in machine.seen and (shown.get("ActiveState"), shown.get("NRestarts")) == (
        "active", "0")
    return found


def power_cuts(lab: Lab, soak: int, rng: random.Random) -> dict:
    """Scenario 3: the driver records loans and returns through the kiosk's desk and acknowledges
    each event to the host; QEMU is SIGKILLed at a random instant; the next boot must hold every
    acknowledged event, check clean and start the kiosk."""
    image, figures = lab.installed_image()
    disk = lab.copy_of(image, "scenario3")
    cuts: list[dict] = []
    unanswered: list[dict] = []
    acked: list[str] = []
    machine = lab.boot(disk, "cut-0")
    boot_figures(machine, lab.timeout)
    machine.agent(60)
    # SIGUSR1 ends a long soak after the cut under way, with the figures of the cuts made
    enough: list[int] = []
    signal.signal(signal.SIGUSR1, lambda *_: enough.append(1))
    for number in range(1, soak + 1):
        if enough:
            log(f"asked to stop (SIGUSR1): {number - 1} of {soak} cuts made")
            figures["stopped_early"] = f"{number - 1} of {soak} cuts (SIGUSR1)"
            break
        machine.sh("systemctl stop bookcorner-kiosk")  # the journal is the driver's now (one writer)
        machine.sh(DRIVER, background=True, log_file="/var/lib/lab/driver.log")
        # the first acknowledgement, then a random instant
        deadline = time.monotonic() + 120
        while not any(line.startswith(("ack ", "error ")) for _at, line in machine.acks) \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        refused = [line for _at, line in machine.acks if line.startswith("error ")]
        if refused or not any(line.startswith("ack ") for _at, line in machine.acks):
            # cutting power over a driver that records nothing would prove nothing
            figures["stopped_at_cut"] = number
            figures["why"] = (f"the driver stopped: {refused[0][6:]}" if refused else
                              "the driver acknowledged nothing in 120 s (/var/lib/lab/driver.log in the guest)")
            log(figures["why"])
            break
        wait = rng.uniform(1.0, 10.0)
        time.sleep(wait)
        os.kill(machine.process.pid, signal.SIGKILL)
        cut_at = time.monotonic()
        machine.stop()
        time.sleep(0.2)  # the last lines on their way
        these = [line.split()[1] for at, line in machine.acks if line.startswith("ack ") and at <= cut_at]
        acked += these
        log(f"cut {number}/{soak}: {len(these)} events acknowledged, QEMU killed {wait:.1f} s after the first")
        machine = lab.boot(disk, f"cut-{number}")
        try:
            found = after_cut(machine, acked, these, lab.timeout)
        except (TimeoutError, RuntimeError, OSError) as error:
            # the agent did not answer in this boot (the first soaks met it: answers cut short): a
            # second boot, cleanly stopped first, checks every event acknowledged so far all the same
            log(f"  the boot after cut {number} did not answer ({error}): booting again to check")
            unanswered.append({"cut": number, "why": f"{type(error).__name__}: {error}",
                               "login_prompt_s": machine.seen.get("login"), "kiosk_ready_s": machine.seen.get("kiosk"),
                               "serial": str(machine.serial_log)})
            machine.stop()
            machine = lab.boot(disk, f"cut-{number}-again")
            try:
                found = after_cut(machine, acked, these, lab.timeout)
            except (TimeoutError, RuntimeError, OSError) as again:
                figures["stopped_at_cut"] = number
                figures["why"] = f"after cut {number}, twice: {type(again).__name__}: {again} (see {machine.serial_log})"
                break
            found["checked_on_a_second_boot"] = True
        found.update(cut=number, acknowledged=len(these), cut_after_s=round(wait, 1))
        cuts.append(found)
        log(f"  boot after cut {number}: login {found['login_prompt_s']} s, kiosk {found['kiosk_ready_s']} s, "
            f"lost {len(found['lost'])}, control lost {found['control_lost']}, journal: {found['journal_check']}, "
            f"kiosk {found['kiosk_state']}, fsck: {found['fsck'][:120]}")
    machine.qmp("quit")
    machine.stop()
    lost = sorted({event for cut in cuts for event in cut["lost"]})
    failed = [cut["cut"] for cut in cuts if not cut["kiosk_clean"] or not cut["journal_ok"]]
    ratios = [cut["ratio"] for cut in cuts if cut["ratio"]]
    figures.update(
        cuts=len(cuts), acknowledged=len(acked), lost=len(lost), failed_starts=len(failed),
        failed_cuts=failed, control_lost_total=sum(cut["control_lost"] or 0 for cut in cuts),
        cuts_with_control_loss=sum((cut["control_lost"] or 0) > 0 for cut in cuts),
        login_prompt_s=[cut["login_prompt_s"] for cut in cuts], kiosk_ready_s=[cut["kiosk_ready_s"] for cut in cuts],
        worst_ratio=max(ratios) if ratios else None, fsck=[cut["fsck"] for cut in cuts],
        journal_check=[cut["journal_check"] for cut in cuts], disk_cache=lab.cache,
        boots_that_did_not_answer=unanswered)
    ok = cuts and not lost and not failed and "stopped_at_cut" not in figures
    return {"verdict": "pass" if ok else "fail", **figures}


# -- scenario 4 -------------------------------------------------------------------------------------


def main_pid(machine: Machine, unit: str) -> tuple[str, str, str]:
    _rc, out = machine.sh(f"systemctl show {unit} -p MainPID -p ActiveState -p NRestarts")
    shown = dict(line.split("=", 1) for line in out.split() if "=" in line)
    return shown.get("MainPID", "0"), shown.get("ActiveState", ""), shown.get("NRestarts", "")


def comes_back(machine: Machine, unit: str, old_pid: str, timeout: float) -> float | None:
    """Seconds until ``unit`` runs again under another process than ``old_pid`` (None: not in time)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        pid, state, _restarts = main_pid(machine, unit)
        if state == "active" and pid not in ("0", old_pid):
            return round(time.monotonic() - began, 1)
        time.sleep(0.5)
    return None


def idle_again(machine: Machine, timeout: float) -> float | None:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        rc, _out = machine.sh(f"grep -qaF '{IDLE_WORDS}' /dev/vcs1")
        if rc == 0:
            return round(time.monotonic() - began, 1)
        time.sleep(0.5)
    return None


def restarts(lab: Lab) -> dict:
    """Scenario 4: the kiosk killed, the sync daemon killed, each must come back; the kiosk
    frozen (SIGSTOP) must be restarted by systemd's watchdog; the data partition filled, the
    kiosk and the sync daemon must say why and lose nothing, and come back with the space
    (lab/full_disk.py)."""
    image, figures = lab.installed_image()
    disk = lab.copy_of(image, "scenario4")
    machine = lab.boot(disk, "scenario4")
    figures.update(boot_figures(machine, lab.timeout))
    machine.agent(60)
    for unit in ("bookcorner-kiosk", "bookcorner-syncd"):
        pid, _state, _restarts = main_pid(machine, unit)
        machine.sh(f"kill -KILL {pid}")
        figures[f"{unit}_killed_back_s"] = comes_back(machine, unit, pid, 60)
    figures["kiosk_idle_after_kill_s"] = idle_again(machine, 120)
    pid, _state, _restarts = main_pid(machine, "bookcorner-kiosk")
    _rc, watchdog = machine.sh("systemctl show bookcorner-kiosk -p WatchdogUSec")
    figures["kiosk_watchdog"] = watchdog.strip()
    machine.sh(f"kill -STOP {pid}")
    figures["kiosk_frozen_restarted_s"] = comes_back(machine, "bookcorner-kiosk", pid, 150)
    machine.sh(f"kill -CONT {pid}")
    _rc, figures["kiosk_journal"] = machine.sh("journalctl -b -u bookcorner-kiosk --no-pager -o cat | tail -8")
    from lab.full_disk import full_disk  # (as main imports scenario 2's module)
    figures["full_disk"] = full_disk(machine)
    machine.qmp("quit")
    machine.stop()
    ok = all(figures.get(key) is not None for key in ("bookcorner-kiosk_killed_back_s", "bookcorner-syncd_killed_back_s",
                                                      "kiosk_idle_after_kill_s", "kiosk_frozen_restarted_s"))
    ok = ok and figures["full_disk"]["ok"]
    if figures["kiosk_frozen_restarted_s"] is None:
        figures["why"] = ("a frozen kiosk (SIGSTOP) was not restarted in 150 s: bookcorner-kiosk.service has no "
                          f"watchdog ({figures['kiosk_watchdog']})")
    elif not figures["full_disk"]["ok"]:
        figures["why"] = f"the data partition full: {figures['full_disk']['why']}"
    return {"verdict": "pass" if ok else "fail", **figures}


def main() -> int:
    from lab.kernel_devices import kernel_devices  # (lab.run imported anew: its Lab and Machine come from here)
    from lab.run import LabFailure as ModuleFailure  # (the class the scenario modules raise: lab.run's, not __main__'s)
    from lab.screen import chinese_screen
    from lab.upgrade import upgrade_in_place

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="each scenario once (the default)")
    parser.add_argument("--soak", type=int, default=1, metavar="N", help="power cuts in scenario 3 (default 1)")
    parser.add_argument("--scenario", action="append", metavar="N[,N]",
                        help="run only these scenarios (1 to 6; default: all)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds a boot may take")
    parser.add_argument("--keep-install", action="store_true",
                        help="boot the installed card in the cache even when the checkout changed since (for work "
                             "on the lab itself)")
    parser.add_argument("--seed", type=int, help="the random instants of the cuts (default: a new seed, printed)")
    parser.add_argument("--arch", choices=("amd64", "arm64"), default="amd64",
                        help="the machine: amd64, or arm64 (the Pi's, emulated: several times slower; scenario 1)")
    args = parser.parse_args()
    arch = AMD64
    if args.arch == "arm64":
        sys.modules.setdefault("run", sys.modules[__name__])  # (lab/arm64.py imports this script as run)
        from arm64 import Arm64
        arch = Arm64()
    built_here = {1, 2, 3, 4, 5, 6} if arch is AMD64 else {1}
    chosen = {int(n) for words in args.scenario or [",".join(map(str, sorted(built_here)))]
              for n in words.split(",") if n.strip()}
    CACHE.mkdir(exist_ok=True)
    report: dict = {"arch": arch.name, "scenarios": dict.fromkeys(SCENARIOS, NOT_BUILT)}
    started = time.monotonic()
    ensure_tools()
    rootfs, built = arch.base_rootfs()
    report["image_build_seconds"] = built if built is not None else "cached"
    wheels = arch.wheelhouse()
    run = CACHE / os.environ.get("LAB_RUN", "run")  # (another name: two labs at once on one cache)
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir()
    os.chmod(run, 0o700)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    report["seed"] = seed
    lab = Lab(rootfs, wheels, run, args.timeout, cache_mode(CACHE), args.keep_install, arch)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # QEMU stopped too (below)
    jobs = {1: ("blank-card-to-first-loan", lambda: first_loan(lab)),
            2: ("kernel-devices", lambda: kernel_devices(lab)),
            3: ("power-cuts", lambda: power_cuts(lab, args.soak, random.Random(seed))),
            4: ("watchdog-and-restarts", lambda: restarts(lab)),
            5: ("chinese-on-the-real-screen", lambda: chinese_screen(lab)),
            6: ("upgrade-in-place", lambda: upgrade_in_place(lab))}
    try:
        for number in sorted(chosen):
            if number not in jobs or number not in built_here:
                report["scenarios"][SCENARIOS[number - 1]] = NOT_BUILT if number not in jobs else f"not built for {arch.name}"
                continue
            name, job = jobs[number]
            began = time.monotonic()
            try:
                result = job()
            except (LabFailure, ModuleFailure) as failure:
                result = {"verdict": "fail", "why": str(failure), **failure.figures}
            except (TimeoutError, RuntimeError, OSError) as error:
                result = {"verdict": "fail", "why": f"{type(error).__name__}: {error}"}
            result["seconds"] = round(time.monotonic() - began, 1)
            report["scenarios"][name] = result
            for machine in RUNNING:  # however the scenario ended, its machine is off before the next
                machine.stop()
    finally:
        for machine in RUNNING:
            machine.stop()
    for number, name in enumerate(SCENARIOS, 1):
        if number not in chosen and report["scenarios"][name] == NOT_BUILT and number in jobs:
            report["scenarios"][name] = "not run" if number in built_here else f"not built for {arch.name}"
    report["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(report, ensure_ascii=False))
    return 0 if all(isinstance(s, str) or s["verdict"] == "pass" for s in report["scenarios"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
