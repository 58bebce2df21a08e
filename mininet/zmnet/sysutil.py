"""Small process helpers: run a command (in a namespace), and stop processes by their pidfiles
only, after checking that the pid still runs the program we started (never by name)."""
import os
import signal
import subprocess
import time
from typing import Iterable, List, Optional, Sequence


class CommandFailed(Exception):
    pass


def run(args: Sequence[str], check: bool = True, timeout: float = 30, input: Optional[str] = None) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, input=input)
    except subprocess.TimeoutExpired as e:
        raise CommandFailed(f'{" ".join(args)}: timed out after {timeout}s') from e
    if check and r.returncode != 0:
        raise CommandFailed(f'{" ".join(args)}: exit {r.returncode}: {(r.stderr or r.stdout).strip()}')
    return r


def nsexec(netns: str, args: Sequence[str]) -> List[str]:
    return ['ip', 'netns', 'exec', netns, *args]


def netns_list() -> List[str]:
    r = run(['ip', 'netns', 'list'], check=False)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def netns_exists(name: str) -> bool:
    return os.path.exists(f'/run/netns/{name}') or name in netns_list()


def netns_pids(name: str) -> List[int]:
    r = run(['ip', 'netns', 'pids', name], check=False)
    return [int(x) for x in r.stdout.split() if x.isdigit()]


def cmdline(pid: int) -> str:
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            return f.read().replace(b'\0', b' ').decode(errors='replace')
    except OSError:
        return ''


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as gone
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


def read_pidfile(path: str) -> Optional[int]:
    try:
        with open(path) as f:
            text = f.read().strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


def write_pidfile(path: str, pid: int) -> None:
    with open(path, 'w') as f:
        f.write(f'{pid}\n')


def stop_pids(pids: Iterable[int], sig: int = signal.SIGTERM, grace: float = 5.0) -> None:
    """Signals each pid, waits up to `grace` seconds, then SIGKILLs what is left."""
    pids = [p for p in pids if p and alive(p)]
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    for p in pids:
        if alive(p):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)


def stop_pidfiles(paths: Iterable[str], expect: str, sig: int = signal.SIGTERM, grace: float = 5.0) -> List[int]:
    """Stops the processes named by pidfiles whose command line contains `expect`; removes the files."""
    pids = []
    for path in paths:
        pid = read_pidfile(path)
        if pid and alive(pid) and expect in cmdline(pid):
            pids.append(pid)
    stop_pids(pids, sig, grace)
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return pids


def spawn_detached(args: Sequence[str], pidfile: str, log: str) -> subprocess.Popen:
    """Starts a long-running process in its own session (so it outlives us) and records its pid."""
    out = open(log, 'wb')
    proc = subprocess.Popen(list(args), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True, close_fds=True)
    out.close()
    write_pidfile(pidfile, proc.pid)
    return proc
