"""service.py: the gateway's definition holds its traffic settings itself (so `bentoml serve .`
without BENTOML_CONFIG behaves as `make serve`), and declares only the chosen runners."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT


def test_traffic_settings_live_in_the_definitions(tiny_models):
    import service

    gateway = service.ImageEmbed.config
    assert gateway["traffic"]["timeout"] == service.GATEWAY_TIMEOUT_S == 60
    assert gateway["runner_probe"] == {"enabled": False}
    assert gateway["logging"] == {"access": {"enabled": False}}
    assert set(service.ImageEmbed.dependencies) == {*service.RUNNERS, "index"}
    for name, runner in {**service.RUNNERS, "index": service.IndexRunner}.items():
        assert runner.config["traffic"]["timeout"] == 50, name
        assert runner.config["logging"] == {"access": {"enabled": False}}, name
    for name, runner in service.RUNNERS.items():
        assert runner.config["traffic"]["max_concurrency"] >= 16, name


def test_a_subset_declares_only_its_runners(tiny_models):
    script = textwrap.dedent(
        """
        import service
        print(sorted(service.ImageEmbed.dependencies), sorted(service.ImageEmbed.apis)[:3], service.SERVED)
        """
    )
    env_script = [sys.executable, "-c", script]
    out = subprocess.run(
        env_script, cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "IMAGE_EMBED_MODELS": "internvit"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "['index', 'internvit'] ['analyze', 'analyze_image', 'analyze_image_upload'] ('internvit',)"
