"""The README cannot rot: every snippet in it runs here (or, for the test command, in CI)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

import statechart
from statechart.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)


def blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCKS if lang == language]


CLONE = re.compile(r"^git clone (\S+) && cd (\S+) && ")


def test_readme_has_the_two_commands_and_ci_runs_the_test_command_exactly() -> None:
    commands = [line.strip() for body in blocks("bash") for line in body.splitlines() if line.strip()]
    assert len(commands) == 2
    main_job, test_command = commands
    assert CLONE.sub("", main_job) == "pip install . && statechart demo"
    assert CLONE.sub("", test_command).startswith("pip install -e '.[test]' && python -m pytest")
    ci_lines = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    assert CLONE.sub("", test_command) in ci_lines  # CI runs in the clone already


def test_readme_commands_clone_the_project_home_into_the_folder_they_enter(tmp_path: Path) -> None:
    homes = {CLONE.match(line.strip()).groups() for body in blocks("bash") for line in body.splitlines()
             if line.strip()}
    assert len(homes) == 1
    url, folder = homes.pop()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert url == pyproject["project"]["urls"]["Homepage"]
    assert folder == url.rstrip("/").rsplit("/", 1)[1].removesuffix(".git")
    if (ROOT / ".git").exists():  # the same command on this checkout leaves a project to enter
        subprocess.run(["git", "clone", "-q", str(ROOT), folder], cwd=tmp_path, check=True)
        assert (tmp_path / folder / "pyproject.toml").is_file() and (tmp_path / folder / "machines").is_dir()


def test_readme_main_job_runs_in_a_fresh_folder(tmp_path: Path) -> None:
    main_job = blocks("bash")[0].strip()
    command = main_job.rsplit("&&", 1)[1].strip()  # the package is installed already
    script = Path(sys.executable).parent / "statechart"
    assert script.exists(), "the statechart console script is installed with the package"
    env = {**subprocess.os.environ, "PATH": f"{script.parent}:{subprocess.os.environ.get('PATH', '')}"}
    completed = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True, env=env,
                               timeout=120)
    assert completed.returncode == 0, completed.stderr + completed.stdout
    folder = tmp_path / "statechart-demo"
    assert (folder / "demo.db").exists()
    assert (folder / "machines/delivery/v3.yaml").is_file() and (folder / "migrations/delivery").is_dir()
    assert "Open:" in completed.stdout and str(folder) in completed.stdout
    assert "--machines statechart-demo/machines" in completed.stdout  # commands to try, as typed here
    assert "Traceback" not in completed.stderr


def test_readme_python_snippets_run_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {}
    snippets = blocks("python")
    assert len(snippets) >= 3
    for snippet in snippets:
        exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102 - the README is ours


def test_readme_yaml_snippets_are_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    snippets = blocks("yaml")
    machine_snippets = [s for s in snippets if "machine:" in s]
    assert machine_snippets
    for snippet in machine_snippets:
        statechart.loads(snippet, "machines/order/v2.yaml", actions={"start_payment": lambda ctx: None})
    for snippet in snippets:
        schema_line = re.search(r"\$schema=(\S+)", snippet)
        if schema_line:  # the command the README gives puts the schema where the comment points
            written = re.search(r"`(statechart schema --write (\S+))`", README)
            assert written is not None
            monkeypatch.chdir(tmp_path)
            assert main(written.group(1).split()[1:]) == 0
            machine_folder = tmp_path / "machines" / "order"
            target = (machine_folder / schema_line.group(1)).resolve()
            assert target == (tmp_path / written.group(2)).resolve()
            assert json.loads(target.read_text())["$id"].endswith("machine.schema.json")
        yaml.safe_load(snippet)
