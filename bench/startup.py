"""Start-up time and memory of a server per choice of models, in one run.

    python -m bench --scenario startup                       # bench profile: clip vs all
    python -m bench --scenario startup --profile tiny --choice clip --choice clip,face --choice all

For each choice it starts `bentoml serve . --arg models=<choice>` (bench/serve_launcher.py:
127.0.0.1, a free port, a BENTOML_HOME of its own over the shared model store), after
importing the profile's models (offline for bench and tiny), and measures:

  ready_s    seconds from the start until /readyz answers 200 (every runner loaded, warm)
  pss_mib    memory of the whole process tree then (arbiter, gateway, every runner): the sum
             of each process's PSS, so pages the processes share count once
  workers    the BentoML worker processes, by service name

then stops it before the next. Choices run one after another on the same machine, so their
numbers compare; "all" is every model of the registry. The JSON goes to --json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench import serve_launcher

ROOT = serve_launcher.ROOT
READY_TIMEOUT_S = 900.0


def workers(procs: list) -> list[str]:
    """The service names of the BentoML workers among `procs`."""
    names = []
    for proc in procs:
        try:
            cmd = proc.cmdline()
        except Exception:  # noqa: BLE001  (a process that just ended has no command line)
            continue
        if "--service-name" in cmd:
            names.append(cmd[cmd.index("--service-name") + 1])
    return sorted(names)


def measure(choice: str, env: dict[str, str]) -> dict:
    args = () if choice == "all" else ("--arg", f"models={choice}")
    home = serve_launcher.private_home(serve_launcher.shared_home())
    started = time.monotonic()
    server = serve_launcher.start(env, home, args=args, ready_timeout=READY_TIMEOUT_S)
    try:
        ready = time.monotonic() - started
        time.sleep(2)  # let the memory settle after the warm-up forwards
        return {
            "choice": choice,
            "ready_s": round(ready, 1),
            "pss_mib": round(server.memory_bytes() / 2**20),
            "workers": workers(server.family()),
        }
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="bench", choices=["bench", "tiny", "default"])
    parser.add_argument("--choice", action="append", help="models=... to start (repeatable; 'all' = every model)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    choices = args.choice or ["clip", "all"]
    from models import list_models

    every = [s.key for s in list_models(args.profile)]
    needed = sorted({k for c in choices for k in (every if c == "all" else c.split(","))})
    subprocess.run(
        [sys.executable, "-m", "cli", "import-models", "--profile", args.profile, "--models", ",".join(needed)],
        cwd=ROOT, check=True,
    )
    env = {
        **os.environ,
        "IMAGE_EMBED_PROFILE": args.profile,
        "BENTOML_CONFIG": str(ROOT / "configuration.yaml"),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    results = [measure(c, env) for c in choices]
    print(f"\n{'models':<40} {'ready s':>8} {'PSS MiB':>8}  workers")
    for r in results:
        print(f"{r['choice']:<40} {r['ready_s']:>8} {r['pss_mib']:>8}  {', '.join(r['workers'])}")
    if args.json:
        args.json.write_text(json.dumps({"profile": args.profile, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
