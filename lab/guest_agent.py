"""The lab's agent inside the guest (installed as /usr/local/sbin/lab-agent, run by a systemd
unit at every boot; the guest's own python3, standard library only).

First boot: runs the README's steps (scripts/install from the release copied into the image,
the demo school on the kiosk and on the central server), then powers off.

Every later boot: says ``LAB boot`` on the serial console, watches tty1 (/dev/vcs1) for the
kiosk's idle screen and says ``LAB kiosk-idle`` when it shows (the host times both marks on
the serial console), and answers the host's commands on the virtio-serial port lab.ctl: one
JSON object a line, ``{"id": N, "sh": "...", "timeout": S}``, answered by ``{"id": N, "rc":
..., "out": "..."}``; ``"background": true`` starts the command and answers at once.

Each command runs in a thread of its own, so a command that hangs never keeps the agent from
answering the next (the host's hello after a boot above all); whatever goes wrong in the agent
itself is said on the serial console as ``LAB agent …`` (the host keeps that log per boot, and a
power cut cannot take it back), and the agent carries on or, if it dies, systemd starts it again.
"""

import json
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
import traceback
from pathlib import Path

IDLE_WORDS = "__IDLE__"
WAIT_S = int("__WAIT__")
CONSOLE = "/dev/__CONSOLE__"
PORT = "/dev/virtio-ports/lab.ctl"
BOOKCORNER = "/opt/bookcorner/venv/bin/bookcorner"
CENTRAL_DB = "/var/lib/bookcorner-central/central.db"
#: after a timeout's kill, how long a command's output may still take to end (a grandchild in a
#: session of its own holds the pipe open for ever: the answer goes without the rest)
DRAIN_S = 5


def say(text: str) -> None:
    # each line through a fresh open of the console: the serial getty's start hangs up the
    # descriptors opened before it (a long-lived writer then dies)
    try:
        with open(CONSOLE, "a", encoding="utf-8", errors="replace") as console:
            console.write(text + "\n")
    except OSError:
        pass  # (a console that cannot be written must not stop the answers)


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
    central_dir = Path(CENTRAL_DB).parent
    if not central_dir.exists():  # an older release (scenario 6's) left it to systemd, made at the unit's
        # first start (StateDirectory=bookcorner-central): made here as systemd makes it
        central_dir.mkdir(mode=0o750)
        shutil.chown(central_dir, "bookcorner", pwd.getpwnam("bookcorner").pw_gid)
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


def script(command: str) -> list[str]:
    """bash reading the command from a file of its own, which removes itself: a command given as
    ``bash -c`` is one argument, and Linux refuses an argument over 128 KiB (E2BIG). The power-cut
    soak's check sends every acknowledged id in a here-document, which passed that size at about
    3,600 ids (cut 26 of a soak, cut 40 of another): the check failed and the soak stopped."""
    fd, path = tempfile.mkstemp(prefix="lab-agent-", suffix=".sh")
    with os.fdopen(fd, "w") as file:
        file.write(f"rm -f -- {shlex.quote(path)}\n{command}\n")
    return ["bash", path]


def run(request: dict) -> dict:
    """One command's answer; never raises (an answer the host waits for always comes)."""
    timeout = request.get("timeout", 120)
    try:
        if request.get("background"):
            with open(request.get("log", "/dev/null"), "ab") as log:
                subprocess.Popen(script(request["sh"]), stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
            return {"id": request["id"], "rc": 0, "out": ""}
        # in a session of its own, killed whole on a timeout: a child left running (runuser's) would
        # hold the output pipe open and the answer would never come
        process = subprocess.Popen(script(request["sh"]), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, text=True, errors="replace", start_new_session=True)
        try:
            out, _err = process.communicate(timeout=timeout)
            return {"id": request["id"], "rc": process.returncode, "out": out}
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            try:
                process.communicate(timeout=DRAIN_S)
            except subprocess.TimeoutExpired:  # something outside its session still holds the pipe
                process.stdout.close()
                process.wait()
            return {"id": request["id"], "rc": 124, "out": f"timed out after {timeout} s"}
    except Exception as error:  # noqa: BLE001 (told to the host, which says what failed)
        say(f"LAB agent error on request {request.get('id')}: {type(error).__name__}: {error}")
        return {"id": request["id"], "rc": 125, "out": "the lab agent failed: " + traceback.format_exc()[-1500:]}


class Answers:
    """The port's writing side, shared by the threads answering: one whole line at a time."""

    def __init__(self, channel) -> None:
        self.channel = channel
        self.lock = threading.Lock()

    def send(self, reply: dict) -> None:
        data = json.dumps(reply).encode() + b"\n"
        with self.lock:
            while data:  # a port takes a few KB a write: the rest in further writes
                data = data[self.channel.write(data):]


def answer(answers: Answers, request: dict) -> None:
    try:
        answers.send(run(request))
    except OSError as error:  # the port went away under the answer: the host asks again
        say(f"LAB agent could not answer request {request.get('id')}: {error}")


def request_of(line: bytes) -> dict | None:
    """The request a line holds, or None (the tail of a hello sent before the port was open,
    or anything else that is not a request: the host asks again)."""
    try:
        request = json.loads(line)
    except ValueError:
        return None
    if isinstance(request, dict) and isinstance(request.get("id"), int) and isinstance(request.get("sh"), str):
        return request
    return None


def serve(channel, until_eof: bool = False) -> None:
    """Answer the requests read from ``channel`` (a file object with read and write) until it
    fails (or, ``until_eof``, ends); each request in a thread of its own."""
    answers = Answers(channel)
    pending = b""
    while True:
        chunk = channel.read(65536)
        if not chunk:  # the host is not connected (a virtio port reads nothing until it is)
            if until_eof:
                return
            time.sleep(0.05)
            continue
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            request = request_of(line)
            if request is not None:
                threading.Thread(target=answer, args=(answers, request), daemon=True).start()


def open_port(path: str = PORT):
    """The port, opened once it shows (udev names it; slow on a loaded host): waits as long as
    it takes, and says so."""
    began = time.monotonic()
    said = False
    while not os.path.exists(path):
        if not said and time.monotonic() - began > 10:
            say(f"LAB agent waiting for {path}")
            said = True
        time.sleep(0.25)
    channel = open(path, "r+b", buffering=0)  # noqa: SIM115 (open for the whole boot)
    say(f"LAB agent ctl-open {time.monotonic() - began:.1f}")
    return channel


def main() -> None:
    if not Path("/var/lib/lab/installed").exists():
        try:
            install()
        except Exception as error:  # noqa: BLE001 (the host waits for install-exit: it says why)
            say(f"LAB install-exit error {type(error).__name__}: {error}")
        return
    say("LAB boot")
    threading.Thread(target=watch_tty1, daemon=True).start()
    while True:
        try:
            with open_port() as channel:
                serve(channel)
        except OSError as error:  # the port failed under the agent: opened again
            say(f"LAB agent port error {type(error).__name__}: {error}; opening it again")
            time.sleep(1)


if __name__ == "__main__":
    main()
