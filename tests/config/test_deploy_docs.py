"""docs/deploy.md stays true: the variables it names exist, its compose file parses, and the
image's environment it states is bentofile.yaml's."""

from __future__ import annotations

import re

import yaml

from config.settings import Settings, env_name
from tests.conftest import ROOT

DEPLOY = (ROOT / "docs" / "deploy.md").read_text()


def test_every_variable_named_is_a_setting():
    known = {env_name(name) for name in Settings.model_fields}
    named = set(re.findall(r"IMAGE_EMBED_[A-Z_]+[A-Z]", DEPLOY))
    assert named and named <= known, named - known


def test_the_compose_file_parses_and_uses_real_settings():
    block = re.search(r"```yaml\n(# docker-compose.yaml.*?)```", DEPLOY, re.S).group(1)
    compose = yaml.safe_load(block)
    service = compose["services"]["image-embed"]
    assert set(service["environment"]) <= {env_name(name) for name in Settings.model_fields}
    assert "/readyz" in " ".join(service["healthcheck"]["test"])
    assert compose["services"]["image-embed"]["deploy"]["replicas"] >= 2


def test_the_images_environment_is_bentofiles():
    envs = {e["name"]: str(e["value"]) for e in yaml.safe_load((ROOT / "bentofile.yaml").read_text())["envs"]}
    assert envs["BENTOML_DO_NOT_TRACK"] == "true" and "BENTOML_DO_NOT_TRACK=true" in DEPLOY
    assert f"BENTOML_CONFIG={envs['BENTOML_CONFIG']}" in DEPLOY
