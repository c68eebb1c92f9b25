"""Fault probes of issue #16, full size: a 60 s server outage, kill -9 of actors, two drivers.

Each probe prints one table row: runs | lost | duplicated | errors | exit codes | wall,
where *lost* counts problems without a final answer after the last run and *duplicated*
counts extra lines for a problem in ``results.jsonl``. The kill probe also prints each
kill's cost in seconds against an uninterrupted run measured in the same invocation.

    python -m benchmarks.fault_probes outage [--problems 400] [--outage-s 60]
    python -m benchmarks.fault_probes kill [--problems 300]
    python -m benchmarks.fault_probes two-drivers [--problems 300]

``outage`` is live: ``slmsim serve-sim`` on loopback as the OpenAI-compatible server,
killed (SIGKILL) a quarter into the run and restarted on the same port ``--outage-s``
later. ``kill`` and ``two-drivers`` use the simulator (sim).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _count(out: Path) -> int:
    path = out / "results.jsonl"
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def tally(out: Path, n: int) -> dict[str, int]:
    """Lost (no final answer), duplicated (extra lines) and error results in a run directory."""
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    ids = [r["problem_id"] for r in rows]
    answered = {r["problem_id"] for r in rows if r.get("error") is None}
    return {
        "lost": n - len(answered),
        "duplicated": len(ids) - len(set(ids)),
        "errors": sum(r.get("error") is not None for r in rows),
    }


def row(name: str, runs: int, counts: dict[str, int], codes: list[int], wall: float, extra: str = "") -> None:
    print(
        f"| {name} | {runs} | {counts['lost']} | {counts['duplicated']} | {counts['errors']} "
        f"| {codes} | {wall:.1f} s | {extra} |",
        flush=True,
    )


def _serve(port: int, latency_s: float) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "experiments.cli", "serve-sim", "--port", str(port), "--no-lookup",
         "--cards", "Llama-3.1-8B-Instruct", "--latency-s", str(latency_s)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.readline()  # "serve-sim: ... at http://..." once it listens
    return proc


def outage(problems: int, outage_s: float, latency_s: float, in_flight: int) -> None:
    """A live run through a server that dies a quarter in and comes back ``outage_s`` later."""
    work = Path(tempfile.mkdtemp(prefix="probe-outage-"))
    port = _free_port()
    out = work / "run"
    config = {
        "name": "probe-outage",
        "dataset": {"name": "synthetic", "limit": problems},
        "models": [
            {
                "name": "llama-http",
                "backend": "openai",
                "base_url": f"http://127.0.0.1:{port}/v1",
                "model_id": "Llama-3.1-8B-Instruct",
                "timeout_s": 10,
                "max_in_flight": in_flight,
            }
        ],
        "orchestrator": {"kind": "single", "model": "llama-http"},
        "run": {"out_dir": str(out), "runners": 1, "problems_in_flight": in_flight, "progress": False},
    }
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    server = _serve(port, latency_s)
    started = time.perf_counter()
    run = [sys.executable, "-m", "experiments.cli", "run", str(path)]
    driver = subprocess.Popen(run, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while _count(out) < problems // 4 and driver.poll() is None:
        time.sleep(0.1)
    server.send_signal(signal.SIGKILL)
    server.wait()
    down_at = _count(out)
    time.sleep(outage_s)
    server = _serve(port, latency_s)
    codes = [driver.wait()]
    if codes[-1] != 0:  # the acceptance allows one re-run
        codes.append(subprocess.run(run, cwd=REPO, capture_output=True).returncode)
    wall = time.perf_counter() - started
    server.send_signal(signal.SIGTERM)
    server.wait()
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    retries = sum(e["event"] == "problem_retry" for e in log)
    row(
        f"live outage {outage_s:.0f} s, {problems} problems",
        len(codes),
        tally(out, problems),
        codes,
        wall,
        f"server killed at {down_at} results; {retries} problem re-attempts",
    )


# --- kill -9 of actors (sim) ------------------------------------------------------------


def _alive(class_name: str) -> list[dict[str, Any]]:
    import ray

    actors = ray._private.state.actors().values()
    return sorted(
        (a for a in actors if a["ActorClassName"] == class_name and a["State"] == "ALIVE"), key=lambda a: a["StartTime"]
    )


def _kill_when(out: Path, after: int, class_name: str, done: dict[str, Any]) -> None:
    while _count(out) < after:
        time.sleep(0.05)
    victim = _alive(class_name)[-1]
    os.kill(int(victim["Pid"]), signal.SIGKILL)
    done["pid"] = victim["Pid"]


def _mux(out: Path, problems: int) -> Any:
    from experiments.runtime.config_io import config_from_tree

    return config_from_tree(
        {
            "name": "probe-kill",
            "dataset": {"name": "synthetic", "limit": problems},
            "models": [
                {"name": m, "time_scale": 0.02}
                for m in ("Llama-3.1-8B-Instruct", "Mixtral-8x7B-Instruct", "Gemma-2-27B-Instruct")
            ],
            "orchestrator": {
                "kind": "slm_mux",
                "models": ["Llama-3.1-8B-Instruct", "Mixtral-8x7B-Instruct", "Gemma-2-27B-Instruct"],
                "k": 3,
            },
            "run": {"out_dir": str(out), "runners": 2, "problems_in_flight": 8, "progress": False},
        }
    )


def kill(problems: int) -> None:
    """An uninterrupted slm_mux run, then the same run with one actor class killed mid-run."""
    import ray

    from experiments.runtime.driver import run_experiment

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="probe-kill-"))
    started = time.perf_counter()
    run_experiment(_mux(work / "base", problems))
    base = time.perf_counter() - started
    row(f"sim slm_mux {problems}, no kill (baseline)", 1, tally(work / "base", problems), [0], base)
    for victim in ("ModelActor", "Runner"):  # the MUX judge runs inside each runner
        out = work / victim
        done: dict[str, Any] = {}
        thread = threading.Thread(target=_kill_when, args=(out, problems // 2, victim, done), daemon=True)
        thread.start()
        started = time.perf_counter()
        summary = run_experiment(_mux(out, problems))
        wall = time.perf_counter() - started
        cost = f"kill costs {wall - base:+.1f} s vs baseline ({wall / base:.2f}x); open {summary.open_failures}"
        row(f"sim slm_mux {problems}, kill -9 {victim} pid {done.get('pid')}", 1, tally(out, problems), [0], wall, cost)
    ray.shutdown()


def two_drivers(problems: int) -> None:
    """A second driver on a run directory in use refuses; the first finishes alone."""
    work = Path(tempfile.mkdtemp(prefix="probe-two-"))
    out = work / "run"
    args = [
        sys.executable, "-m", "experiments.cli", "run", str(REPO / "experiments/configs/demo_synthetic.yaml"),
        f"run.out_dir={out}", f"dataset.limit={problems}", "run.progress=false",
        *(f"models.{i}.time_scale=0.02" for i in range(3)),
    ]  # fmt: skip
    started = time.perf_counter()
    first = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while _count(out) < 5:
        time.sleep(0.1)
    second = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    codes = [first.wait(), second.returncode]
    refusal = second.stderr.strip().splitlines()[-1] if second.stderr.strip() else ""
    row(f"two drivers, sim demo {problems}", 2, tally(out, problems), codes, time.perf_counter() - started, refusal)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fault_probes", description=__doc__)
    sub = parser.add_subparsers(dest="probe", required=True)
    o = sub.add_parser("outage")
    o.add_argument("--problems", type=int, default=400)
    o.add_argument("--outage-s", type=float, default=60.0)
    o.add_argument("--latency-s", type=float, default=0.3)
    o.add_argument("--in-flight", type=int, default=8)
    k = sub.add_parser("kill")
    k.add_argument("--problems", type=int, default=300)
    t = sub.add_parser("two-drivers")
    t.add_argument("--problems", type=int, default=300)
    args = parser.parse_args(argv)
    print("| probe | runs | lost | duplicated | errors | exit codes | wall | notes |")
    print("|---|---|---|---|---|---|---|---|")
    if args.probe == "outage":
        outage(args.problems, args.outage_s, args.latency_s, args.in_flight)
    elif args.probe == "kill":
        kill(args.problems)
    else:
        two_drivers(args.problems)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
