"""`python -m bench` (bench/__main__.py): --scenario hands the other arguments to that scenario's
module; every scenario has a main; an unknown one is a usage error."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types

import pytest

from bench import SCENARIOS
from bench.__main__ import main
from tests.conftest import ROOT


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenarios_dispatch_with_the_remaining_arguments(monkeypatch, name):
    calls = []
    fake = types.ModuleType(SCENARIOS[name])
    fake.main = lambda argv: calls.append(argv) or 7
    monkeypatch.setitem(sys.modules, SCENARIOS[name], fake)
    assert main(["--profile", "tiny", "--scenario", name, "--requests", "3"]) == 7
    assert calls == [["--profile", "tiny", "--requests", "3"]]


def test_without_a_scenario_it_is_clip(monkeypatch):
    calls = []
    fake = types.ModuleType("bench.clip")
    fake.main = lambda argv: calls.append(argv) or 0
    monkeypatch.setitem(sys.modules, "bench.clip", fake)
    assert main(["--requests", "3"]) == 0 and calls == [["--requests", "3"]]


def test_every_scenario_module_exists_with_a_main():
    for module in SCENARIOS.values():
        assert callable(importlib.import_module(module).main)


def test_unknown_scenario_is_a_usage_error():
    with pytest.raises(SystemExit) as err:
        main(["--scenario", "nope"])
    assert err.value.code == 2


def test_the_module_runs_from_the_checkout():
    """`python -m bench --scenario X -h`, as bench/README.md writes it: the scenario's own help."""
    done = subprocess.run([sys.executable, "-m", "bench", "--scenario", "phash", "-h"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--max-distance" in done.stdout
