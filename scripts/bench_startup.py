#!/usr/bin/env python
"""Start-up time and resident memory of a server per choice of models, in one run.

    python scripts/benchmark.py --scenario startup                       # bench profile: clip vs all
    python scripts/bench_startup.py --profile tiny --choice clip --choice clip,face --choice all

For each choice it starts `bentoml serve . --arg models=<choice>` on a free loopback port
(the profile's models imported first, offline for bench and tiny), and measures:

  ready_s    seconds from the start until /readyz answers 200 (every runner loaded, warm)
  rss_mib    resident memory of the whole process tree (arbiter, gateway, every runner) then
  workers    the BentoML worker processes, by service name

then stops it (SIGTERM) before the next. Choices run one after another on the same machine,
so their numbers compare; "all" is every model of the registry. The JSON goes to --json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
READY_TIMEOUT_S = 900


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree(pid: int) -> list:
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def rss_mib(procs: list) -> float:
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except Exception:  # noqa: BLE001  (a process that just ended counts nothing)
            pass
    return total / 2**20


def workers(procs: list) -> list[str]:
    names = []
    for proc in procs:
        try:
            cmd = proc.cmdline()
        except Exception:  # noqa: BLE001
            continue
        if "--service-name" in cmd:
            names.append(cmd[cmd.index("--service-name") + 1])
    return sorted(names)


def measure(choice: str, profile: str, env: dict[str, str]) -> dict:
    import httpx

    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix=f"bench-startup-{choice.replace(',', '+')}-", suffix=".log", delete=False)
    args = [] if choice == "all" else ["--arg", f"models={choice}"]
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "bentoml"), "serve", ".", "--host", "127.0.0.1", "--port", str(port), *args],
        cwd=ROOT, env={**env, "IMAGE_EMBED_PROFILE": profile}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        while time.monotonic() - started < READY_TIMEOUT_S:
            if proc.poll() is not None:
                raise RuntimeError(f"{choice}: bentoml serve exited with {proc.returncode}; see {log.name}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        else:
            raise RuntimeError(f"{choice}: not ready after {READY_TIMEOUT_S} s; see {log.name}")
        ready = time.monotonic() - started
        time.sleep(2)  # let the memory settle after the warm-up forwards
        procs = tree(proc.pid)
        return {"choice": choice, "ready_s": round(ready, 1), "rss_mib": round(rss_mib(procs)), "workers": workers(procs)}
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            for p in tree(proc.pid):
                p.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="bench", choices=["bench", "tiny", "default"])
    parser.add_argument("--choice", action="append", help="models=... to start (repeatable; 'all' = every model)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    choices = args.choice or ["clip", "all"]
    from models import list_models

    needed = sorted({k for c in choices for k in ([s.key for s in list_models(args.profile)] if c == "all" else c.split(","))})
    subprocess.run(
        [sys.executable, "scripts/import_models.py", "--profile", args.profile, "--models", ",".join(needed)],
        cwd=ROOT, check=True,
    )
    env = {**os.environ, "BENTOML_CONFIG": str(ROOT / "configuration.yaml"), "BENTOML_DO_NOT_TRACK": "true"}
    results = [measure(c, args.profile, env) for c in choices]
    print(f"\n{'models':<40} {'ready s':>8} {'RSS MiB':>8}  workers")
    for r in results:
        print(f"{r['choice']:<40} {r['ready_s']:>8} {r['rss_mib']:>8}  {', '.join(r['workers'])}")
    if args.json:
        args.json.write_text(json.dumps({"profile": args.profile, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
