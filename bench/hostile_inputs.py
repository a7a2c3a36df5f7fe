"""Issue 12's hostile inputs, measured end to end through the command (docs/reliability.md).

Each case runs ``python -m mixer`` against ``tests/qm_stub.py`` on loopback (or offline),
prints the wall time, the command's own peak RSS and its first error line. Set
``AMO_MIXER_SOURCE`` to another source tree (e.g. ``git archive abdec76 mixer | tar -x
-C /tmp/old``) to measure that tree instead, for a before/after pair.

    python bench/hostile_inputs.py [trickle|sigterm|big|bomb|wide|overflow ...]
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from qm_stub import Reply, listing, serve_stub, wire_list  # noqa: E402
from reliability_matrix import write_config  # noqa: E402

ENV = dict(os.environ, AMO_MIXER_QM_PASSWORD="pw")
if os.environ.get("AMO_MIXER_SOURCE"):
    ENV["PYTHONPATH"] = os.environ["AMO_MIXER_SOURCE"]
MIXER = [sys.executable, "-m", "mixer"]
# a tiny parent process, so the peak RSS is the command's own and not a forked copy of ours
WRAPPER = (
    "import resource,subprocess,sys;p=subprocess.run(sys.argv[1:]);"
    "sys.stderr.write('MAXRSS %d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
    "sys.exit(p.returncode)"
)


def measured(argv: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str], int]:
    start = time.monotonic()
    done = subprocess.run(
        ["python3", "-c", WRAPPER, *argv], env=ENV, capture_output=True, text=True, cwd=cwd
    )
    found = re.search(r"MAXRSS (\d+)", done.stderr)
    return time.monotonic() - start, done, int(found.group(1)) if found else 0


def first_line(done: subprocess.CompletedProcess[str]) -> str:
    """The first line that reports a problem (not "config ok", not a retry's JSON)."""
    for line in (done.stdout + done.stderr).splitlines():
        if line.startswith(("amo-mixer:", "/", "rules/")) and "config ok" not in line:
            return line[:200]
    return ""


def trickle(folder: Path) -> str:
    with serve_stub() as stub:
        body = listing("Sales", stub.lists)
        stub.script = lambda _r: Reply(body=body, trickle_s=0.05)
        config = write_config(folder, stub.url, timeout=2.0)
        took, done, _ = measured([*MIXER, "once", "-c", str(config)], folder)
    what = f"{len(body)}-byte reply, 1 byte/50 ms, qm.timeout 2 s"
    return f"{what}: {took:.1f} s, exit {done.returncode}: {first_line(done)}"


def sigterm(folder: Path) -> str:
    with serve_stub() as stub:
        started = threading.Event()

        def script(_request: object) -> Reply:
            started.set()
            return Reply(body=listing("Sales", stub.lists), trickle_s=0.5)

        stub.script = script  # type: ignore[assignment]
        config = write_config(folder, stub.url, timeout=60.0)
        daemon = subprocess.Popen(
            [*MIXER, "run", "-c", str(config)],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=folder,
        )
        started.wait(30)
        time.sleep(1)
        start = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=120)
        except subprocess.TimeoutExpired:
            daemon.kill()
            return "SIGTERM during a trickled read, qm.timeout 60 s: not stopped after 120 s"
    took = time.monotonic() - start
    return (
        f"SIGTERM during a trickled read, qm.timeout 60 s: exit {daemon.returncode} in {took:.2f} s"
    )


def big(folder: Path) -> str:
    with serve_stub() as stub:
        body = listing("Sales", [wire_list("A")])
        reply = body[:-1] + b',"pad":"' + b"x" * 300_000_000 + b'"}'
        stub.script = lambda _r: Reply(body=reply, length=-1)  # no Content-Length
        config = write_config(folder, stub.url, timeout=60.0)
        took, done, rss = measured([*MIXER, "once", "-c", str(config)], folder)
    return f"300 MB reply: {took:.1f} s, peak RSS {rss / 1024:.0f} MB: {first_line(done)}"


def _check(folder: Path, rules: str) -> tuple[float, subprocess.CompletedProcess[str], int]:
    config = write_config(folder, "http://127.0.0.1:9/qm", rules=rules)
    return measured([*MIXER, "check", "-c", str(config)], folder)


def bomb(folder: Path) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    text = "\n".join(lines) + "\n"
    took, done, rss = _check(folder, text)
    what = f"{len(text)}-byte alias bomb, check"
    return f"{what}: {took:.2f} s, peak RSS {rss / 1024:.0f} MB: {first_line(done)}"


def wide(folder: Path) -> str:
    rules = 'rules:\n  - name: idle\n    description: "{list:>100000000}"\n    set: {weight: 5}\n'
    _, done, _ = _check(folder, rules)
    return f"{{list:>100000000}}, check: exit {done.returncode}: {first_line(done)}"


def overflow(folder: Path) -> str:
    rules = "rules:\n  - name: idle\n    for: 99999999999w\n    set: {weight: 5}\n"
    _, done, _ = _check(folder, rules)
    return f"for: 99999999999w, check: exit {done.returncode}: {first_line(done)}"


CASES = {f.__name__: f for f in (trickle, sigterm, big, bomb, wide, overflow)}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(CASES):
        with tempfile.TemporaryDirectory() as folder:
            print(f"{name}: {CASES[name](Path(folder))}", flush=True)
