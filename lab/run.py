"""The lab (issue 16): a Debian Bookworm machine built with debootstrap and booted under QEMU, with
bookcorner installed on it by its own installer, as a school would. Run through ./scripts/lab (as
root); the last line printed is one JSON object with each scenario's verdict and figures.

It lives at the top of the repository, beside the product and outside it: it is a tool of the people
working on bookcorner (like bench/), never installed on a Pi, and it needs nothing but the standard
library (it runs with the host's python3 before any venv exists).

The guest has no network: the pinned dependencies go in as a wheelhouse built on the host and the
program as a release copy of this checkout, both written into the image before ``mkfs.ext4 -d``.
A small agent in the guest (a systemd unit) runs the installer on the first boot, then powers off;
on the second boot it reports on the serial console (lines starting with ``LAB``) what it sees:
the units' states and the kiosk's screen text from /dev/vcsa1.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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
                "e2fsprogs", "kbd"],
}
#: the host's tools and the Debian packages they come in
TOOLS = {"qemu-system-x86_64": "qemu-system-x86", "debootstrap": "debootstrap", "mkfs.ext4": "e2fsprogs"}
UNITS = ("bookcorner-kiosk", "bookcorner-syncd", "bookcorner-central")
IDLE_WORDS = "Tap your card"
NOT_BUILT = "not built"
SCENARIOS = ("blank-card-to-first-loan", "kernel-devices", "power-cuts", "watchdog-and-restarts",
             "chinese-on-the-real-screen", "upgrade-in-place")

AGENT = r"""#!/bin/bash
# The lab's agent in the guest: installs bookcorner on the first boot, reports on the next.
say() { echo "LAB $*" >/dev/ttyS0; }
# each line written through a fresh open of the console: the serial getty's start hangs up the
# descriptors opened before it (a long-lived pipe into /dev/ttyS0 then dies, and the writer with it)
relay() { while IFS= read -r line; do echo "LAB-LOG $1$line" >/dev/ttyS0; done; }
if [ ! -e /var/lib/lab/installed ]; then
    mkdir -p /var/lib/lab
    say install-start
    # its output on the console as it goes (the host keeps it)
    /opt/lab/release/scripts/install --wheelhouse /opt/lab/wheelhouse --role both 2>&1 | relay
    rc=${PIPESTATUS[0]}
    # the README's next step on a corner without a roster yet: the demo school, as the kiosk's user
    (cd /var/lib/bookcorner && runuser -u bookcorner -- /opt/bookcorner/venv/bin/bookcorner \
        --config /etc/bookcorner/kiosk.toml demo --load-only --data-dir /var/lib/bookcorner) 2>&1 | relay "demo: "
    say demo-exit ${PIPESTATUS[0]}
    touch /var/lib/lab/installed
    say install-exit $rc
    sync
    systemctl poweroff
    exit 0
fi
say boot
for i in $(seq 1 __WAIT__); do
    if grep -qaF "__IDLE__" /dev/vcs1; then say kiosk-idle; break; fi
    sleep 0.5
done
sleep 2  # the rest of the screen drawn
say screen $(base64 -w0 /dev/vcsa1)
say units $(systemctl is-active __UNITS__ | tr '\n' ' ')
for unit in __UNITS__; do
    journalctl -b -u $unit --no-pager -n 30 2>&1 | relay "$unit: "
done
say done
"""

AGENT_UNIT = """[Unit]
Description=the lab's agent (installs bookcorner, then reports to the host)
After=local-fs.target serial-getty@ttyS0.service

[Service]
Type=simple
ExecStart=/usr/local/sbin/lab-agent

[Install]
WantedBy=multi-user.target
"""


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
    for old in CACHE.glob("rootfs-*"):
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


def wheelhouse() -> Path:
    """The pinned dependencies as wheels (the guest has no network), once per lock."""
    locks = sorted((ROOT / "deploy").glob("requirements-*.txt"))
    folder = CACHE / ("wheelhouse-" + digest(*(lock.read_bytes() for lock in locks)))
    if folder.is_dir():
        return folder
    tools = CACHE / "tools-venv"
    if not (tools / "bin" / "pip").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(tools)], check=True)
    pip = [str(tools / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    partial = CACHE / (folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    wanted = [word for lock in locks if lock.stem != "requirements-test" for word in ("-r", str(lock))]
    log("downloading the pinned dependencies into a wheelhouse")
    subprocess.run([*pip, "download", "--no-deps", *wanted, "-d", str(partial)], check=True)
    for sdist in partial.glob("*.tar.gz"):  # evdev ships as source: built here, as on a Pi with a compiler
        subprocess.run([*pip, "wheel", "--no-deps", "-w", str(partial), str(sdist)], check=True)
        sdist.unlink()
    partial.rename(folder)
    return folder


def prepare(rootfs: Path, wheels: Path, wait: int) -> None:
    """The blank card: the base system, the release, the wheelhouse and the agent (nothing installed)."""
    lab = rootfs / "opt" / "lab"
    shutil.rmtree(lab, ignore_errors=True)
    shutil.rmtree(rootfs / "var" / "lib" / "lab", ignore_errors=True)
    lab.mkdir(parents=True)
    copy_release(ROOT, lab / "release")
    shutil.copytree(wheels, lab / "wheelhouse")
    (rootfs / "etc" / "fstab").write_text("/dev/vda / ext4 rw,errors=remount-ro 0 1\n")
    (rootfs / "etc" / "hostname").write_text("bookcorner-lab\n")
    agent = rootfs / "usr" / "local" / "sbin" / "lab-agent"
    agent.write_text(AGENT.replace("__WAIT__", str(wait * 2)).replace("__IDLE__", IDLE_WORDS)
                     .replace("__UNITS__", " ".join(UNITS)))
    agent.chmod(0o755)
    unit = rootfs / "etc" / "systemd" / "system" / "lab-agent.service"
    unit.write_text(AGENT_UNIT)
    wants = rootfs / "etc" / "systemd" / "system" / "multi-user.target.wants" / "lab-agent.service"
    wants.unlink(missing_ok=True)
    wants.symlink_to("/etc/systemd/system/lab-agent.service")


def make_disk(rootfs: Path, disk: Path) -> None:
    disk.unlink(missing_ok=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(rootfs), str(disk), "4G"], check=True)


#: the machines started, stopped when the lab ends however it ends
RUNNING: list[Machine] = []


class Machine:
    """One QEMU run: the serial console logged to a file (through a unix socket), a QMP socket."""

    def __init__(self, rootfs: Path, disk: Path, run: Path, accel: str) -> None:
        self.run, self.accel = run, accel
        self.serial_log = run / f"serial-{int(time.time() * 1000)}.log"
        self.qmp_path = run / "qmp.sock"
        kernel = max((rootfs / "boot").glob("vmlinuz-*"))
        initrd = rootfs / "boot" / ("initrd.img-" + kernel.name.removeprefix("vmlinuz-"))
        self.command = [
            "qemu-system-x86_64", "-accel", accel, "-m", "1024", "-smp", "2", "-nic", "none",
            "-display", "none", "-vga", "std", "-no-reboot",
            "-drive", f"file={disk},format=raw,if=virtio,cache=writeback",
            "-kernel", str(kernel), "-initrd", str(initrd),
            "-append", "root=/dev/vda rw console=tty1 console=ttyS0",
            "-chardev", f"socket,id=console,path={run / 'serial.sock'},server=on,wait=off,logfile={self.serial_log}",
            "-serial", "chardev:console",
            "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
        ]
        self.started = time.monotonic()
        RUNNING.append(self)
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.seen: dict[str, float] = {}

    def text(self) -> str:
        return self.serial_log.read_text(errors="replace") if self.serial_log.exists() else ""

    def wait_for(self, marks: dict[str, str], until: str, timeout: float) -> bool:
        """Note when each mark (a text) first shows on the serial console; True once ``until`` has."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            for name, mark in marks.items():
                if name not in self.seen and mark in text:
                    self.seen[name] = round(time.monotonic() - self.started, 1)
            if until in self.seen:
                return True
            if self.process.poll() is not None:
                return until in self.seen
            time.sleep(0.2)
        return False

    def qmp(self, command: str, **arguments: object) -> dict:
        with socket.socket(socket.AF_UNIX) as connection:
            connection.connect(str(self.qmp_path))
            stream = connection.makefile("rw")
            stream.readline()  # the greeting
            for name, args in (("qmp_capabilities", {}), (command, arguments)):
                stream.write(json.dumps({"execute": name, "arguments": args}) + "\n")
                stream.flush()
                while "return" not in (answer := json.loads(stream.readline())) and "error" not in answer:
                    pass  # events
            return answer

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def exited(self, timeout: float) -> bool:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True


def boot(rootfs: Path, disk: Path, run: Path) -> Machine:
    """A machine started with KVM where it works here, else TCG (the choice is remembered)."""
    choice = CACHE / "accel"
    accel = choice.read_text().strip() if choice.exists() else "kvm"
    machine = Machine(rootfs, disk, run, accel)
    if accel == "kvm" and not choice.exists():
        if not machine.wait_for({"kernel": "Linux version"}, "kernel", 20):
            log("KVM does not boot here: falling back to TCG")
            machine.stop()
            accel = "tcg"
            machine = Machine(rootfs, disk, run, accel)
        choice.write_text(accel + "\n")
    return machine


def lab_lines(text: str, word: str) -> list[str]:
    return [line.split(None, 2)[2] if line.count(" ") >= 2 else "" for line in text.splitlines()
            if line.startswith(f"LAB {word}")]


def screen_text(vcsa_b64: str) -> str:
    data = base64.b64decode(vcsa_b64)
    rows, cols = data[0], data[1]
    chars = data[4::2]
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


def first_loan(rootfs: Path, wheels: Path, run: Path, timeout: int) -> dict:
    """Scenario 1: a blank card, the installer, a power cycle, the kiosk on tty1."""
    figures: dict = {}
    prepare(rootfs, wheels, timeout)
    disk = run / "disk.img"
    started = time.monotonic()
    make_disk(rootfs, disk)
    figures["mkfs_seconds"] = round(time.monotonic() - started, 1)
    log("first boot: the installer runs in the guest")
    machine = boot(rootfs, disk, run)
    figures["accel"] = machine.accel
    installed = machine.wait_for({"login": " login:", "installed": "LAB install-exit"}, "installed", timeout * 3)
    text = machine.text()
    figures["install_boot_seconds"] = machine.seen.get("installed")
    figures["install_exit"] = next(iter(lab_lines(text, "install-exit")), None)
    (run / "install.log").write_text("\n".join(line[8:] for line in text.splitlines() if line.startswith("LAB-LOG")))
    powered_off = installed and machine.exited(120)
    machine.stop()
    if not installed or figures["install_exit"] != "0" or not powered_off:
        figures["why"] = f"the install did not finish (see {run / 'install.log'} and {machine.serial_log})"
        return {"verdict": "fail", **figures}
    log("second boot: the kiosk should take tty1")
    machine = boot(rootfs, disk, run)
    machine.wait_for({"login": " login:", "kiosk": "LAB kiosk-idle", "done": "LAB done"}, "done", timeout)
    figures["boot_to_login_seconds"] = machine.seen.get("login")
    figures["boot_to_kiosk_idle_seconds"] = machine.seen.get("kiosk")
    text = machine.text()
    screens = lab_lines(text, "screen")
    figures["screen_text"] = screen_text(screens[0]) if screens else None
    units = (lab_lines(text, "units") or [""])[0].split()
    figures["units"] = dict(zip(UNITS, units, strict=False))
    if machine.process.poll() is None:
        ppm = run / "screen.ppm"
        machine.qmp("screendump", filename=str(ppm))
        for _ in range(50):
            if ppm.exists() and ppm.stat().st_size:
                break
            time.sleep(0.1)
        time.sleep(0.5)
        ppm_to_png(ppm, run / "screen.png")
        ppm.unlink()
        figures["screenshot"] = str(run / "screen.png")
        machine.qmp("quit")
    machine.stop()
    (run / "boot.log").write_text(text)
    ok = units == ["active"] * 3 and "kiosk" in machine.seen and IDLE_WORDS in (figures["screen_text"] or "")
    if not ok:
        figures["why"] = f"see {run / 'boot.log'} (LAB-LOG lines: the units' journals)"
    return {"verdict": "pass" if ok else "fail", **figures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="each scenario once (the default)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds a boot may take")
    args = parser.parse_args()
    CACHE.mkdir(exist_ok=True)
    report: dict = {"scenarios": dict.fromkeys(SCENARIOS, NOT_BUILT)}
    started = time.monotonic()
    ensure_tools()
    rootfs, built = base_rootfs()
    report["image_build_seconds"] = built if built is not None else "cached"
    wheels = wheelhouse()
    run = CACHE / "run"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir()
    os.chmod(run, 0o700)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # QEMU stopped too (below)
    try:
        report["scenarios"]["blank-card-to-first-loan"] = first_loan(rootfs, wheels, run, args.timeout)
    finally:
        for machine in RUNNING:
            machine.stop()
    report["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(report, ensure_ascii=False))
    return 0 if all(s == NOT_BUILT or s["verdict"] == "pass" for s in report["scenarios"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
