#!/usr/bin/env python
"""The wheels the GPU host lacks: the dependency closure of what the check imports, less what
the host already has, pinned to the versions installed here.

    python scripts/gpu/wheels.py            # one `name==version` per line (what prepare.sh downloads)
    python scripts/gpu/wheels.py --check .whl --limit-mib 64
                                            # prune wheels of other versions, check one wheel per pin,
                                            # and that the repository plus the wheels fit the limit

The GPU host (docs/gpu.md) has Python 3.12 with torch, transformers, timm and onnxruntime and
their own dependencies, but not bentoml, open_clip_torch or faiss. The closure is walked from
ROOTS through each installed distribution's `Requires-Dist`, with environment markers evaluated
for the host (CPython 3.12 on Linux x86_64, no extras), and stops at HOST_HAS. Versions are
those of this venv, so the host runs what the tests here ran.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024

# what the check imports that the host lacks (faiss is imported only by a search, which the check
# does not run; facenet-pytorch only by the face runner, which it does not serve)
# (onnx: the import exports and quantizes the ONNX Runtime engine's graphs)
ROOTS = ("bentoml", "fastapi", "open-clip-torch", "pydantic-settings", "httpx", "psutil", "onnx")

# the host's own stack: torch 2.11, transformers, timm, onnxruntime and what they pull in
# (not protobuf: onnx needs a newer one than the host's stack may carry, and it is small)
HOST_HAS = frozenset(canonicalize_name(n) for n in """
    torch torchvision triton transformers timm onnxruntime tokenizers huggingface-hub hf-xet
    safetensors numpy pillow pyyaml requests urllib3 idna certifi charset-normalizer tqdm regex
    packaging filelock fsspec jinja2 markupsafe networkx sympy mpmath typing-extensions setuptools
    flatbuffers coloredlogs humanfriendly
""".split())

# dependencies the check never imports, left out to keep the bundle small
SKIPPED = frozenset(canonicalize_name(n) for n in (
    "uv",  # bentoml uses it to build Bentos (~20 MB), not to serve
))

HOST_ENV = {
    **default_environment(),
    "python_version": "3.12",
    "python_full_version": "3.12.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
}


def applies(req: Requirement) -> bool:
    return req.marker is None or req.marker.evaluate({**HOST_ENV, "extra": ""})


def closure(roots=ROOTS, host_has=HOST_HAS, skipped=SKIPPED) -> dict[str, str]:
    """{canonical name: installed version} of every distribution the roots need that the host
    lacks. Raises LookupError naming a needed distribution that is not installed here."""
    found: dict[str, str] = {}
    todo = [canonicalize_name(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in found or name in host_has or name in skipped:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise LookupError(f"{name} is needed on the GPU host but not installed here") from None
        found[name] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            if applies(req):
                todo.append(canonicalize_name(req.name))
    return dict(sorted(found.items()))


def prune(wheels: Path, pins: dict[str, str]) -> list[str]:
    """Delete wheels that are not of a pinned version (an older pin's wheel would travel too);
    return the pins that have no wheel."""
    have: set[str] = set()
    for wheel in wheels.glob("*.whl"):
        name, version, _, _ = parse_wheel_filename(wheel.name)
        if pins.get(name) == str(version):
            have.add(name)
        else:
            wheel.unlink()
    return sorted(set(pins) - have)


def repository_bytes(root: Path = ROOT) -> int:
    """Bytes of what travels with the repository: tracked files and untracked ones git does not ignore."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root, check=True, capture_output=True,
    ).stdout.split(b"\0")
    paths = (root / p.decode() for p in listed if p)
    return sum(p.stat().st_size for p in paths if p.is_file() and not p.is_symlink())


def check_bundle(wheels: Path, pins: dict[str, str], limit_mib: float) -> list[str]:
    """Problems with the bundle (empty when it is ready), after pruning stale wheels."""
    problems = [f"no wheel for {name}=={pins[name]}" for name in prune(wheels, pins)]
    wheel_bytes = sum(w.stat().st_size for w in wheels.glob("*.whl"))
    repo_bytes = repository_bytes()
    total = wheel_bytes + repo_bytes
    print(f"bundle: repository {repo_bytes / MIB:.1f} MiB + {len(pins)} wheels {wheel_bytes / MIB:.1f} MiB"
          f" = {total / MIB:.1f} MiB (limit {limit_mib:g} MiB)", file=sys.stderr)
    if total > limit_mib * MIB:
        problems.append(f"the bundle is {total / MIB:.1f} MiB, over the {limit_mib:g} MiB limit")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    p.add_argument("--check", type=Path, metavar="DIR", help="check the downloaded wheels in DIR instead of listing")
    p.add_argument("--limit-mib", type=float, default=64.0, help="what may travel to the host (default: 64)")
    args = p.parse_args(argv)
    try:
        pins = closure()
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.check is None:
        print("\n".join(f"{name}=={version}" for name, version in pins.items()))
        return 0
    problems = check_bundle(args.check, pins, args.limit_mib)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
