"""OS-level helpers for broker nodes: detached start, liveness, stop, memory, ports, log tails."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

POLL_S = 0.2


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock held for the ``with`` block (waits for other holders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# Exit statuses of our own children reaped by pid_alive, for error messages.
_exit_codes: dict[int, int] = {}


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a child of ours that exited is reaped, not left a zombie)."""
    if pid in _exit_codes:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        done, code = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            _exit_codes[pid] = os.waitstatus_to_exitcode(code)
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        # The state letter follows the ")" that closes the command name.
        return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def exit_description(pid: int) -> str:
    """How a child of ours ended: 'exit code 1', 'killed by SIGKILL', or 'ended' if unknown."""
    if pid not in _exit_codes:
        return "ended"
    code = _exit_codes[pid]
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def process_cmdline(pid: int) -> str | None:
    """The command line of ``pid`` (space-joined), or None when it cannot be read."""
    proc = Path(f"/proc/{pid}/cmdline")
    if proc.parent.is_dir():
        try:
            return proc.read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            return None
    out = subprocess.run(
        ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    return out.stdout.strip() or None


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def running_pid(pid_file: Path, must_contain: str) -> int | None:
    """The pid in ``pid_file`` if that process is alive and is the one we started.

    Checking the command line guards against a recycled pid belonging to something else.
    """
    pid = read_pid(pid_file)
    if pid is None or not pid_alive(pid):
        return None
    cmdline = process_cmdline(pid)
    if not cmdline:  # read while the process exec()s (the java launcher may re-exec itself)
        time.sleep(0.1)
        cmdline = process_cmdline(pid)
    return pid if cmdline is not None and must_contain in cmdline else None


def spawn_detached(cmd: list[str], log_file: Path, cwd: Path) -> int:
    """Start ``cmd`` in its own session (survives this process), output appended to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    return proc.pid


def terminate(pids: Iterable[int], timeout_s: float) -> list[int]:
    """SIGTERM every pid, wait up to ``timeout_s`` for all, then SIGKILL; returns pids killed."""
    pending = [p for p in pids if pid_alive(p)]
    for pid in pending:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        time.sleep(POLL_S)
        pending = [p for p in pending if pid_alive(p)]
    for pid in pending:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in pending) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    return pending


def rss_mib(pid: int) -> float | None:
    """Resident memory of ``pid`` in MiB (Linux /proc, else ``ps``)."""
    status = Path(f"/proc/{pid}/status")
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    out = subprocess.run(
        ["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    return int(out.stdout.strip()) / 1024 if out.stdout.strip().isdigit() else None


def port_in_use(host: str, port: int) -> bool:
    """True when something listens on ``host:port`` (bind fails the way Kafka's would)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like Kafka's server socket: TIME_WAIT leftovers of a stopped broker do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def tcp_answers(host: str, port: int, timeout_s: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file ("" when it does not exist)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
