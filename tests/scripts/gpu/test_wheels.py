"""scripts/gpu/wheels.py: which wheels travel to the GPU host, and the bundle's size check."""

from __future__ import annotations

import importlib.util
import sys

import pytest
from packaging.requirements import Requirement

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def wheels():
    spec = importlib.util.spec_from_file_location("gpu_wheels", ROOT / "scripts" / "gpu" / "wheels.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_wheels"] = module
    spec.loader.exec_module(module)
    return module


def test_the_closure_has_what_the_host_lacks_and_nothing_it_has(wheels):
    pins = wheels.closure()
    for needed in ("bentoml", "open-clip-torch", "fastapi", "pydantic", "pydantic-core", "starlette", "uvicorn"):
        assert needed in pins, needed
    assert not set(pins) & wheels.HOST_HAS
    assert "uv" not in pins  # skipped: bentoml builds with it, serving does not need it
    from importlib import metadata

    assert pins["bentoml"] == metadata.version("bentoml")  # this venv's versions travel


def test_markers_are_evaluated_for_python_3_12_on_linux(wheels):
    assert wheels.applies(Requirement("anyio"))
    assert not wheels.applies(Requirement('tomli; python_version < "3.11"'))
    assert wheels.applies(Requirement('x; python_version >= "3.12"'))
    assert not wheels.applies(Requirement('pywin32; sys_platform == "win32"'))
    assert not wheels.applies(Requirement('rich; extra == "cli"'))


def test_a_missing_distribution_is_named(wheels):
    with pytest.raises(LookupError, match="no-such-dist"):
        wheels.closure(roots=("no-such-dist",))


def test_stale_wheels_are_pruned_and_missing_ones_reported(wheels, tmp_path):
    pins = {"alpha": "1.0", "beta": "2.0"}
    (tmp_path / "alpha-1.0-py3-none-any.whl").write_bytes(b"x" * 10)
    (tmp_path / "alpha-0.9-py3-none-any.whl").write_bytes(b"x")
    assert wheels.prune(tmp_path, pins) == ["beta"]
    assert [p.name for p in tmp_path.iterdir()] == ["alpha-1.0-py3-none-any.whl"]


def test_a_bundle_over_the_limit_is_refused(wheels, tmp_path):
    pins = {"alpha": "1.0"}
    (tmp_path / "alpha-1.0-py3-none-any.whl").write_bytes(b"x" * 2 * wheels.MIB)
    assert wheels.check_bundle(tmp_path, pins, limit_mib=64) == []
    problems = wheels.check_bundle(tmp_path, pins, limit_mib=1)
    assert len(problems) == 1 and "over the 1 MiB limit" in problems[0]
