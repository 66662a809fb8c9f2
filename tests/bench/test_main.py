"""scripts/benchmark.py: --scenario hands the other arguments to that scenario's script."""

from __future__ import annotations

import sys
import types

import pytest

sys.path.insert(0, "scripts")
import benchmark  # noqa: E402


@pytest.mark.parametrize("name", sorted(benchmark.SCENARIOS))
def test_scenarios_dispatch_with_the_remaining_arguments(monkeypatch, name):
    calls = []
    fake = types.ModuleType(benchmark.SCENARIOS[name])
    fake.main = lambda argv: calls.append(argv) or 7
    monkeypatch.setitem(sys.modules, benchmark.SCENARIOS[name], fake)
    assert benchmark.main(["--profile", "tiny", "--scenario", name, "--requests", "3"]) == 7
    assert calls == [["--profile", "tiny", "--requests", "3"]]


def test_every_scenario_module_exists_with_a_main():
    import importlib

    for module in benchmark.SCENARIOS.values():
        assert callable(importlib.import_module(module).main)


def test_unknown_scenario_is_a_usage_error():
    with pytest.raises(SystemExit) as err:
        benchmark.main(["--scenario", "nope"])
    assert err.value.code == 2
