"""The lab's agent inside the guest (installed as /usr/local/sbin/lab-agent, run by a systemd
unit at every boot; the guest's own python3, standard library only).

First boot: runs the README's steps (scripts/install from the release copied into the image,
the demo school on the kiosk and on the central server), then powers off.

Every later boot: says ``LAB boot`` on the serial console, watches tty1 (/dev/vcs1) for the
kiosk's idle screen and says ``LAB kiosk-idle`` when it shows (the host times both marks on
the serial console), and answers the host's commands on the virtio-serial port lab.ctl: one
JSON object a line, ``{"id": N, "sh": "...", "timeout": S}``, answered by ``{"id": N, "rc":
..., "out": "..."}``; ``"background": true`` starts the command and answers at once.
"""

import json
import os
import subprocess
import threading
import time
from pathlib import Path

IDLE_WORDS = "__IDLE__"
WAIT_S = int("__WAIT__")
BOOKCORNER = "/opt/bookcorner/venv/bin/bookcorner"
CENTRAL_DB = "/var/lib/bookcorner-central/central.db"


def say(text: str) -> None:
    # each line through a fresh open of the console: the serial getty's start hangs up the
    # descriptors opened before it (a long-lived writer then dies)
    with open("/dev/__CONSOLE__", "w", encoding="utf-8", errors="replace") as console:
        console.write(text + "\n")


def relay(command: list[str], prefix: str = "", **options) -> int:
    """Run ``command``, its output on the serial console as it goes (LAB-LOG lines)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               errors="replace", **options)
    for line in process.stdout:
        say(f"LAB-LOG {prefix}{line.rstrip()}")
    return process.wait()


def as_kiosk_user(*words: str) -> list[str]:
    return ["runuser", "-u", "bookcorner", "--", BOOKCORNER, "--config", "/etc/bookcorner/kiosk.toml", *words]


def install() -> None:
    Path("/var/lib/lab").mkdir(parents=True, exist_ok=True)
    say("LAB install-start")
    extra = Path("/opt/lab/install-args").read_text().split() if Path("/opt/lab/install-args").exists() else []
    rc = relay(["/opt/lab/release/scripts/install", "--wheelhouse", "/opt/lab/wheelhouse", "--role", "both", *extra])
    # the README's next steps on a school without a roster yet: the demo school on the kiosk and
    # on the central server beside it (the same school, so the server knows the kiosk's loans)
    demo = relay(as_kiosk_user("demo", "--load-only", "--data-dir", "/var/lib/bookcorner"), "demo: ",
                 cwd="/var/lib/bookcorner")
    say(f"LAB demo-exit {demo}")
    central = relay(as_kiosk_user("central", "load-reference", "--demo", "--db", CENTRAL_DB), "central: ",
                    cwd="/var/lib/bookcorner-central")
    say(f"LAB central-demo-exit {central}")
    Path("/var/lib/lab/installed").touch()
    say(f"LAB install-exit {rc}")
    os.sync()
    subprocess.run(["systemctl", "poweroff"], check=False)


def watch_tty1() -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            if IDLE_WORDS.encode() in Path("/dev/vcs1").read_bytes():
                say("LAB kiosk-idle")
                return
        except OSError:
            pass
        time.sleep(0.25)
    say("LAB kiosk-not-idle")


def serve() -> None:
    port = Path("/dev/virtio-ports/lab.ctl")
    for _ in range(240):
        if port.exists():
            break
        time.sleep(0.25)
    channel = open(port, "r+b", buffering=0)  # noqa: SIM115 (open for the whole boot)
    pending = b""
    while True:
        chunk = channel.read(65536)
        if not chunk:
            time.sleep(0.05)
            continue
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            try:
                request = json.loads(line)
            except ValueError:  # the tail of a hello sent before the port was open: the host asks again
                continue
            answer(channel, request)


def answer(channel, request: dict) -> None:
    if request.get("background"):
        log = open(request.get("log", "/dev/null"), "ab")  # noqa: SIM115 (the child's)
        subprocess.Popen(["bash", "-c", request["sh"]], stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)
        reply = {"id": request["id"], "rc": 0, "out": ""}
    else:
        # in a session of its own, killed whole on a timeout: a child left running (runuser's) would
        # hold the output pipe open and the agent would wait for it, answering nothing more
        process = subprocess.Popen(["bash", "-c", request["sh"]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, errors="replace", start_new_session=True)
        try:
            out, _err = process.communicate(timeout=request.get("timeout", 120))
            reply = {"id": request["id"], "rc": process.returncode, "out": out}
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.communicate()
            reply = {"id": request["id"], "rc": 124, "out": f"timed out after {request.get('timeout', 120)} s"}
    data = json.dumps(reply).encode() + b"\n"
    while data:  # a port takes a few KB a write: the rest in further writes
        data = data[channel.write(data):]


def main() -> None:
    if not Path("/var/lib/lab/installed").exists():
        install()
        return
    say("LAB boot")
    threading.Thread(target=watch_tty1, daemon=True).start()
    serve()


if __name__ == "__main__":
    main()
