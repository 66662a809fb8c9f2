"""config/image.py: the lean image installs no PyTorch and no compiler; the full one keeps
every requirement and the --no-deps step."""

from __future__ import annotations

from config.image import LEAN_REQUIREMENTS, bento_image, requirement_lines

TORCH_STACK = ("torch", "torchvision", "open_clip_torch", "transformers", "timm", "facenet-pytorch", "onnx")


def names(image) -> set[str]:
    lines = [line for line in image.python_requirements.splitlines() if line.strip()]
    return {line.split("==")[0].split("[")[0].strip().lower() for line in lines}


def test_requirement_lines_expand_includes_and_drop_comments(tmp_path):
    (tmp_path / "base.txt").write_text("# a comment\nnumpy==2.0  # why\n\n")
    (tmp_path / "all.txt").write_text("-r base.txt\ntorch==2.1\n")
    assert requirement_lines("all.txt", tmp_path) == ["numpy==2.0", "torch==2.1"]


def test_the_full_requirements_include_every_lean_one():
    assert set(requirement_lines(LEAN_REQUIREMENTS)) < set(requirement_lines("requirements.txt"))


def test_the_lean_image_has_no_pytorch_stack_nor_build_tools():
    lean = bento_image(lean=True)
    assert not names(lean) & set(TORCH_STACK)
    assert {"bentoml", "onnxruntime", "faiss-cpu", "psycopg", "regex", "ftfy"} <= names(lean)
    assert not any("build-essential" in command for command in lean.commands)
    assert not any("--no-deps" in command for command in lean.post_commands)
    assert any("/data" in command for command in lean.post_commands)


def test_the_full_image_keeps_pytorch_the_no_deps_step_and_bentomls_defaults():
    full = bento_image(lean=False)
    assert {"torch", "torchvision", "open_clip_torch", "transformers", "timm"} <= names(full)
    assert any(command.startswith("uv pip install --no-deps facenet-pytorch==") for command in full.post_commands)
    assert any("build-essential" in command for command in full.commands)


def test_bentoml_copying_the_lean_image_keeps_it_lean():
    import attrs

    copy = attrs.evolve(bento_image(lean=True), lock_python_packages=False)  # what `bentoml build` does
    assert not any("build-essential" in command for command in copy.commands)
