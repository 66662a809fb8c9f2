"""Docker for the Bento's image: the engine (scripts/docker_env.sh), `bentoml build` and
`bentoml containerize`, and containers of it answering on 127.0.0.1. Used by the container
tests (tests/integration/test_container.py) and bench/container.py.

    engine_up()                                   docker.io, dockerd, the local base image
    tag = build_bento(bentoml, env, "--arg", "models=clip", "--arg", "engine=onnx")
    seconds = containerize(bentoml, tag, image, env)
    box = run_container(image, url=..., options=("-p", ...), env={...})   waits for /readyz 200
    box.stop()                                    `docker stop`: (exit code, seconds)

Debian's docker CLI comes first on PATH and BuildKit is off: the Docker 28 CLI some machines
have first on PATH has no buildx (docs/deploy.md).
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
DOCKER_ENV_SCRIPT = ROOT / "scripts" / "docker_env.sh"


def docker_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with Debian's docker first and no BuildKit."""
    base = dict(os.environ if base is None else base)
    return {**base, "PATH": f"/usr/bin:/usr/sbin:{base.get('PATH', '')}", "DOCKER_BUILDKIT": "0"}
READY_TIMEOUT_S = 300


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["docker", *args], env=docker_env(), capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} exited with {done.returncode}:\n{done.stderr[-3000:]}")
    return done


def engine_up() -> subprocess.CompletedProcess:
    """Install, start and prepare what the container tests need (slow the first time only)."""
    script = [str(DOCKER_ENV_SCRIPT), "up"]
    return subprocess.run(script, env=docker_env(), capture_output=True, text=True, timeout=1200)


def engine_down() -> None:
    subprocess.run([str(DOCKER_ENV_SCRIPT), "down"], env=docker_env(), capture_output=True, timeout=120)


def build_bento(bentoml: str, env: dict[str, str], *args: str) -> str:
    """`bentoml build . [args]` of this checkout; the Bento's tag."""
    command = [bentoml, "build", ".", *args, "--output", "tag"]
    built = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if built.returncode != 0:
        raise RuntimeError(f"bentoml build failed:\n{built.stderr[-3000:]}")
    return built.stdout.strip().splitlines()[-1].removeprefix("__tag__:")


def image_id(image: str) -> str | None:
    done = docker("image", "inspect", "-f", "{{.Id}}", image, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def image_size(image: str) -> int:
    return int(docker("image", "inspect", "-f", "{{.Size}}", image).stdout.strip())


def containerize(bentoml: str, tag: str, image: str, env: dict[str, str]) -> float:
    """`bentoml containerize tag -t image`; its seconds. The image it replaces is removed (its
    layers below the bundle stay cached for the next build)."""
    before = image_id(image)
    started = time.monotonic()
    command = [bentoml, "containerize", tag, "-t", image]
    done = subprocess.run(command, cwd=ROOT, env=docker_env(env), capture_output=True, text=True, timeout=1200)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"bentoml containerize failed:\n{(done.stdout + done.stderr)[-5000:]}")
    if before and before != image_id(image):
        docker("image", "rm", before, check=False)
    return seconds


def modules_present(image: str, modules: list[str]) -> list[str]:
    """Which of `modules` the image's Python can import (found, not imported)."""
    script = f"import importlib.util as u; print(','.join(m for m in {modules!r} if u.find_spec(m)))"
    found = docker("run", "--rm", "--entrypoint", "python", image, "-c", script).stdout.strip()
    return [module for module in found.split(",") if module]


@dataclass
class Container:
    name: str
    url: str
    ready_s: float = 0.0  # from `docker run` to /readyz 200
    volumes: list[str] = field(default_factory=list)

    def logs(self, tail: int = 60) -> str:
        done = docker("logs", "--tail", str(tail), self.name, check=False)
        return done.stdout + done.stderr

    def stop(self, grace_s: int = 10) -> tuple[int, float]:
        """`docker stop -t grace_s`: (exit code, seconds it took)."""
        started = time.monotonic()
        docker("stop", "-t", str(grace_s), self.name, timeout=grace_s + 60)
        seconds = time.monotonic() - started
        return int(docker("inspect", "-f", "{{.State.ExitCode}}", self.name).stdout.strip()), seconds

    def remove(self) -> None:
        docker("rm", "-f", self.name, check=False)
        for volume in self.volumes:
            docker("volume", "rm", "-f", volume, check=False)


def run_container(
    image: str,
    *,
    url: str,
    options: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    volumes: list[str] | None = None,
) -> Container:
    """`docker run -d` of `image` (`options`: publishing or `--network host`), waited on
    until `url`/readyz answers 200."""
    box = Container(name=f"image-embed-test-{uuid.uuid4().hex[:8]}", url=url, volumes=list(volumes or []))
    env_args = [arg for name, value in (env or {}).items() for arg in ("-e", f"{name}={value}")]
    volume_args = [arg for volume in box.volumes for arg in ("-v", f"{volume}:/data")]
    started = time.monotonic()
    docker("run", "-d", "--name", box.name, *options, *env_args, *volume_args, image)
    while time.monotonic() - started < READY_TIMEOUT_S:
        try:
            if httpx.get(f"{url}/readyz", timeout=10).status_code == 200:
                box.ready_s = time.monotonic() - started
                return box
        except httpx.HTTPError:
            pass
        if docker("inspect", "-f", "{{.State.Running}}", box.name).stdout.strip() != "true":
            break
        time.sleep(0.1)
    logs = box.logs(120)
    box.remove()
    raise RuntimeError(f"the container did not answer /readyz 200 within {READY_TIMEOUT_S} s:\n{logs}")
