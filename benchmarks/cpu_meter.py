"""CPU seconds used by this process and every process below it (Ray's GCS, raylet, workers, graders).

Wall-clock rates on a shared machine measure the other tenants as much as the code;
CPU seconds per completion do not. A thread samples ``/proc/<pid>/stat`` (user + system
time) of the process tree every ``period_s`` and keeps each process's last value, so a
process that exits during the measurement (an actor killed at the end of a run) still
counts up to its last sample. ``by_role()`` splits the total by process (driver, each
Ray actor class, Ray's own daemons), which is where a profile should start.

The samplers must not be what they measure: ``ProcessTree`` reads a process's parent
once (it never changes while the process lives), so a sample reads only the tree's own
``/proc`` entries, not every process's on the machine.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _read(path: str) -> bytes:
    try:
        with open(path, "rb", buffering=0) as fh:
            return fh.read()
    except OSError:
        return b""


class ProcessTree:
    """The processes below a root pid, with their command lines; parents cached per pid."""

    def __init__(self, root: int) -> None:
        self.root = root
        self._parent: dict[int, int] = {}

    def pids(self) -> list[int]:
        alive = [int(name) for name in os.listdir("/proc") if name.isdigit()]
        for pid in alive:
            if pid not in self._parent:
                stat = _read(f"/proc/{pid}/stat")
                self._parent[pid] = int(stat.rsplit(b")", 1)[1].split()[1]) if stat else -1
        children: dict[int, list[int]] = {}
        for pid in alive:
            children.setdefault(self._parent[pid], []).append(pid)
        found, frontier = [], [self.root]
        while frontier:
            for pid in children.get(frontier.pop(), ()):
                found.append(pid)
                frontier.append(pid)
        return found

    def descendants(self) -> list[tuple[int, str]]:
        """(pid, command line) of every process below the root (Ray workers retitle themselves ``ray::Class``)."""
        return [(pid, cmdline(pid)) for pid in self.pids()]


def cmdline(pid: int) -> str:
    return _read(f"/proc/{pid}/cmdline").replace(b"\0", b" ").decode(errors="replace").strip()


def descendants(root: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process below ``root``, from ``/proc``."""
    return ProcessTree(root).descendants()


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (0 if it is gone)."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return 0.0
    fields = stat.rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15 of stat)


def role(command: str) -> str:
    """A short name for a process of a Ray run: ``ray::Runner``, ``raylet``, ``gcs_server``, ``log_monitor``..."""
    head = command.split(" ", 1)[0]
    if head.startswith("ray::"):
        return head.split(".", 1)[0]
    words = command.split()
    if any(w.endswith("datasets/grading/worker.py") for w in words[:3]):  # the symbolic grader workers
        return "datasets.grading.worker"
    if "-m" in words[:3]:  # python -m module
        return words[words.index("-m") + 1] if words.index("-m") + 1 < len(words) else "python"
    for word in words[:3]:
        base = word.rsplit("/", 1)[-1]
        if base.endswith(".py") or base in ("raylet", "gcs_server"):
            return base.removesuffix(".py")
    return os.path.basename(head) or "?"


class CpuMeter:
    """``with CpuMeter() as meter: ...`` then ``meter.seconds``: CPU used by the tree meanwhile."""

    def __init__(self, period_s: float = 0.5, exclude: int | None = None) -> None:
        self.period_s = period_s
        self._tree = ProcessTree(os.getpid())
        self._exclude = exclude  # a subtree left out (e.g. the server both sides of a benchmark call)
        self._start: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._role: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self, baseline: bool = False) -> None:
        me = os.getpid()
        skip = set(ProcessTree(self._exclude).pids()) | {self._exclude} if self._exclude else set()
        for pid in [me, *(p for p in self._tree.pids() if p not in skip)]:
            used = cpu_s(pid)
            self._start.setdefault(pid, used if baseline else 0.0)
            self._last[pid] = max(used, self._last.get(pid, 0.0))
            known = self._role.get(pid)
            if known is None or known in ("?", "ray::IDLE", "default_worker"):  # an actor's title comes after its start
                self._role[pid] = "driver" if pid == me else role(cmdline(pid))

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            self._sample()

    def __enter__(self) -> CpuMeter:
        self._sample(baseline=True)  # what everything alive now had used; later processes start at 0
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def seconds(self) -> float:
        return sum(self._last[pid] - self._start.get(pid, 0.0) for pid in self._last)

    def by_role(self) -> dict[str, float]:
        """CPU seconds per process role (every actor of a class summed)."""
        out: dict[str, float] = {}
        for pid, last in self._last.items():
            name = self._role.get(pid, "?")
            out[name] = out.get(name, 0.0) + last - self._start.get(pid, 0.0)
        return out


def describe(counts: dict[str, float], per: int, unit: str = "problem") -> str:
    """``driver 1.2, ray::Runner 2.3, ...`` ms per ``unit``, largest first."""
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    return ", ".join(f"{name} {1000 * s / max(1, per):.2f}" for name, s in ranked if s > 0) + f" (ms CPU a {unit})"


class SteadyWindow:
    """CPU seconds and problems between two fractions of a run (default 10% and 90% done).

    Start-up (actor processes importing the package, grader workers importing sympy) and
    the last stragglers are fixed costs of a run, not of its throughput; the window leaves
    them out. Feed it ``mark(done)`` as problems finish (from any thread).
    """

    def __init__(self, meter: CpuMeter, total: int, low: float = 0.1, high: float = 0.9) -> None:
        self.meter = meter
        self.marks = (max(1, int(total * low)), max(2, int(total * high)))
        self.points: list[tuple[int, float]] = []

    def mark(self, done: int) -> None:
        if len(self.points) < 2 and done >= self.marks[len(self.points)]:
            self.meter._sample()
            self.points.append((done, self.meter.seconds))

    @property
    def cpu_per_problem(self) -> float | None:
        if len(self.points) < 2 or self.points[1][0] == self.points[0][0]:
            return None
        (a, cpu_a), (b, cpu_b) = self.points
        return (cpu_b - cpu_a) / (b - a)


def watch_lines(path: Path, window: SteadyWindow, stop: threading.Event, period_s: float = 0.1) -> threading.Thread:
    """A thread marking ``window`` with the number of lines in ``path`` (a results file) until ``stop``."""

    def loop() -> None:
        while not stop.wait(period_s):
            try:
                with path.open("rb") as fh:
                    window.mark(sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b"")))
            except OSError:
                continue

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread
