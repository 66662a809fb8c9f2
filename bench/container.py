"""The lean image: its size, build time and start-up time, per profile.

    python -m bench --scenario container                 # bench profile: ViT-B/32 sizes
    python -m bench --scenario container --profile tiny --runs 3         # what CI builds
    python -m bench --scenario container --profile default               # real weights (needs the hub)

It imports the profile's CLIP (offline for bench and tiny), builds the lean Bento (`bentoml build
--arg models=clip --arg engine=onnx`), starts the docker engine (scripts/docker_env.sh up: apt,
dockerd, the local base image), runs `bentoml containerize` and then `docker run` --runs times,
publishing on 127.0.0.1, and measures:

  containerize_s   seconds of `bentoml containerize` (docker's layer cache makes a rebuild of the
                   same requirements fast: the first build on a machine is the honest figure)
  size_mb          the image's size, from `docker image inspect` (target: <= 1500 MB)
  ready_s          seconds from `docker run` until /readyz answers 200 (target: <= 20 s), per run
  stop_s           seconds `docker stop` took (the server drains and exits 0 within the grace)

The bench profile has the default model's sizes with random weights, so its image and start-up
are what the default profile's would be. The image is tagged image-embed-bench:<profile>.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from bench.server import free_port
from bench.docker_images import build_bento, containerize, engine_up, image_size, run_container

ROOT = Path(__file__).resolve().parent.parent
BENTOML = str(Path(sys.executable).parent / "bentoml")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="bench", choices=["bench", "tiny", "default"])
    parser.add_argument("--runs", type=int, default=3, help="containers started one after another (default: 3)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    env = {**os.environ, "IMAGE_EMBED_PROFILE": args.profile, "BENTOML_CONFIG": str(ROOT / "configuration.yaml"),
           "BENTOML_DO_NOT_TRACK": "true"}
    subprocess.run([sys.executable, "-m", "cli", "import-models", "--profile", args.profile, "--models", "clip"],
                   cwd=ROOT, env=env, check=True)
    up = engine_up()
    if up.returncode != 0:
        print(up.stderr, file=sys.stderr)
        return 1
    tag = build_bento(BENTOML, env, "--arg", "models=clip", "--arg", "engine=onnx")
    image = f"image-embed-bench:{args.profile}"
    result = {"profile": args.profile, "bento": tag, "image": image,
              "containerize_s": round(containerize(BENTOML, tag, image, env), 1),
              "size_mb": round(image_size(image) / 1e6), "runs": []}
    for _ in range(args.runs):
        port = free_port()
        box = run_container(image, url=f"http://127.0.0.1:{port}", options=("-p", f"127.0.0.1:{port}:3000"),
                            env={"IMAGE_EMBED_PROFILE": args.profile})
        try:
            code, stop_s = box.stop()
            result["runs"].append({"ready_s": round(box.ready_s, 1), "stop_s": round(stop_s, 1), "exit_code": code})
        finally:
            box.remove()
    print(f"\nlean image ({args.profile}): {result['size_mb']} MB, containerize {result['containerize_s']} s")
    for run in result["runs"]:
        print(f"  docker run -> /readyz 200: {run['ready_s']} s; "
              f"docker stop: {run['stop_s']} s (exit {run['exit_code']})")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
