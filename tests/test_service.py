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


SERVER_CODE = ["service.py", "errors.py", "config", "gateway", "intake", "models", "runners", "search"]
UNPICKLERS = {"pickle", "joblib", "dill", "cloudpickle", "shelve", "_pickle"}


def test_the_server_never_unpickles():
    """No module the server runs imports an unpickler or loads with pickling allowed (seed 002's
    classifiers are converted offline: image-embed convert-classifiers)."""
    import ast

    files = [p for name in SERVER_CODE for p in ([ROOT / name] if name.endswith(".py") else (ROOT / name).rglob("*.py"))]
    assert len(files) > 50
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not {n.split(".")[0] for n in names} & UNPICKLERS, f"{path}: imports {names}"
            if isinstance(node, ast.keyword) and node.arg == "allow_pickle":
                assert isinstance(node.value, ast.Constant) and node.value.value is False, f"{path}:{node.lineno}"
            if isinstance(node, ast.Attribute) and node.attr == "load" and getattr(node.value, "id", "") == "torch":
                raise AssertionError(f"{path}:{node.lineno}: torch.load (pickle): load safetensors instead")


def test_the_document_keeps_the_apis_beside_get_routes_on_their_paths(tiny_models):
    """BentoML merges the mounted routes' paths last: seed 003's GET /browse and GET /tags
    would hide the POST APIs browse and tags in /docs.json."""
    import service

    without = service.ImageEmbed.openapi_spec.asdict()["paths"]
    assert "post" not in without["/browse"]  # what BentoML alone writes
    paths = service.ImageEmbed.inner.openapi_document(None)["paths"]
    for path in ("/browse", "/tags"):
        assert {"get", "post"} <= set(paths[path]), path
        assert paths[path]["post"]["x-bentoml-name"] == path[1:]
        assert "401" in paths[path]["post"]["responses"] and "401" in paths[path]["get"]["responses"]
    assert "post" in paths["/tags/bulk"] and "post" in paths["/rating/{image_id}"]
    assert list(paths["/browse"]["post"]["responses"]) == list(paths["/encode_text"]["post"]["responses"])  # the same keys
