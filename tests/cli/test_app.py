"""The `image-embed` command (cli/app.py): its help and every subcommand's, with examples and
the exit statuses; usage errors are status 2, a server that cannot be reached status 1; and the
console script the project installs (scripts/install.sh: pip install --no-deps -e .)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import TOOLS, app

SERVER_VERBS = ("search-text", "search-image", "stats")
ALL_VERBS = (*TOOLS, *SERVER_VERBS)


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once it is closed


def test_help_lists_every_command_with_examples_and_exit_codes(runner):
    result = runner.invoke(app, ["--help"], prog_name="image-embed")
    assert result.exit_code == 0, result.output
    assert "Usage: image-embed [OPTIONS] COMMAND" in result.output
    for verb in ALL_VERBS:
        assert f"\n  {verb} " in result.output, verb
    assert "image-embed search-text 'sunset over mountains'" in result.output
    assert "Exit status: 0 done; 1 a failure" in result.output


def test_no_command_shows_the_help_as_a_usage_error(runner):
    result = runner.invoke(app, [], prog_name="image-embed")
    assert result.exit_code == 2 and "Commands:" in result.output


@pytest.mark.parametrize("verb", ALL_VERBS)
def test_each_command_has_help_with_its_own_examples(runner, verb):
    result = runner.invoke(app, [verb, "--help"], prog_name="image-embed")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.lower().startswith(f"usage: image-embed {verb}") for line in lines), lines[:3]
    examples = [line for line in lines if line.strip().startswith(f"image-embed {verb} ")]
    assert examples, f"no example of `image-embed {verb} ...` in its help"


@pytest.mark.parametrize("args", [["no-such-command"], ["stats", "--no-such-option"], ["search-text"],
                                  ["search-text", "x", "--top-k", "0"], ["search-image", "/no/such/file.jpg"],
                                  ["index-folder"], ["import-models", "--profile", "huge"],
                                  ["migrate-index", "--to", "x"]])
def test_usage_errors_exit_2(runner, args):
    result = runner.invoke(app, args, prog_name="image-embed")
    assert result.exit_code == 2, (args, result.output)


@pytest.mark.parametrize("args", [["stats"], ["search-text", "a cat"]])
def test_a_server_that_cannot_be_reached_is_exit_1_with_one_line(runner, args):
    url = closed_port_url()
    result = runner.invoke(app, [*args, "--url", url], prog_name="image-embed")
    assert result.exit_code == 1, result.output
    assert f"error: cannot reach the server at {url}" in result.output


def test_a_tools_own_exit_status_is_the_commands(runner, tmp_path):
    """index-folder on a path that is not a folder: the tool's own status 2 comes through."""
    result = runner.invoke(app, ["index-folder", str(tmp_path / "missing")], prog_name="image-embed")
    assert result.exit_code == 2 and "is not a folder" in result.output


def test_the_module_runs_as_python_m_cli():
    done = subprocess.run([sys.executable, "-m", "cli", "stats", "--help"], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0 and "Usage: image-embed stats" in done.stdout, done.stderr


def test_the_installed_console_script():
    """`image-embed` beside this Python: what scripts/install.sh installs (pyproject [project.scripts])."""
    script = Path(sys.executable).parent / "image-embed"
    if not script.exists():
        pytest.fail(f"{script} is missing: run scripts/install.sh (it installs the project with pip install --no-deps -e .)")
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Usage: image-embed [OPTIONS] COMMAND" in done.stdout and "index-folder" in done.stdout
    done = subprocess.run([str(script), "index-folder", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("usage: image-embed index-folder"), done.stdout[:300]
    done = subprocess.run([str(script), "stats", "--bogus"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "No such option" in done.stderr
