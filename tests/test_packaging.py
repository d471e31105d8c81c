"""What a user gets from ``pip install statechart``: a CLI that needs no test extras, a version
in one place, a wheel with the example project, an sdist with what its tests need."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import click
import pytest

import statechart
from statechart.cli import COMMANDS, cli

ROOT = Path(__file__).resolve().parent.parent
#: Installed only with extras (test, fuzz, postgres): the CLI must import and answer without them.
EXTRAS_ONLY = ("hypothesis", "pytest", "jsonschema", "psycopg")


def python_without_extras(code: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where importing an extra-only package fails."""
    blocker = f"import sys\nfor name in {EXTRAS_ONLY!r}: sys.modules[name] = None\n"
    return subprocess.run([sys.executable, "-c", blocker + code], cwd=cwd, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120)


def test_every_command_and_its_help_work_without_the_extras() -> None:
    code = ("from statechart.cli import main, COMMANDS\n"
            "codes = {name: main([name, '--help']) for name in COMMANDS}\n"
            "codes['(top)'] = main(['--help'])\n"
            "codes['(version)'] = main(['--version'])\n"
            "print(codes)")
    completed = python_without_extras(code)
    assert completed.returncode == 0, completed.stderr
    codes = eval(completed.stdout.strip().splitlines()[-1])  # noqa: S307 - our own dict literal
    assert codes == {**dict.fromkeys(COMMANDS, 0), "(top)": 0, "(version)": 0}


def test_validate_check_and_run_work_without_the_extras(tmp_path: Path) -> None:
    code = ("from statechart.cli import main\n"
            "import sys\n"
            "sys.exit(main(['validate', 'machines']) or main(['check', 'machines/delivery/v3.yaml'])"
            " or main(['run', 'machines/order/v2.yaml', '-e', 'ADD={\"price\": 1}', '--json']))")
    completed = python_without_extras(code)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "ok   machines/order/v2.yaml" in completed.stdout


def test_fuzz_without_hypothesis_names_the_extra_to_install() -> None:
    completed = python_without_extras("from statechart.cli import main\nimport sys\n"
                                      "sys.exit(main(['fuzz', 'machines/order/v2.yaml']))")
    assert completed.returncode == 1
    assert "statechart fuzz needs hypothesis" in completed.stderr
    assert "pip install 'statechart[fuzz]'" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_a_postgresql_url_without_psycopg_names_the_extra_to_install() -> None:
    completed = python_without_extras("from statechart.cli import main\nimport sys\n"
                                      "sys.exit(main(['metrics', '--store', 'postgresql://u@127.0.0.1/db']))")
    assert completed.returncode == 1
    assert "needs psycopg" in completed.stderr and "pip install 'statechart[postgres]'" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_the_sqlite_store_works_without_psycopg(tmp_path: Path) -> None:
    code = ("import statechart\n"
            f"store = statechart.Store.open('sqlite:///{tmp_path / 'a.db'}')\n"
            "store.register('machines')\n"
            "store.create('order', id='o-1')\n"
            "print(store.send('o-1', 'ADD', {'price': 2}).handled)")
    completed = python_without_extras(code)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "True"


def test_importing_the_cli_loads_no_command_module_and_no_heavy_library() -> None:
    code = ("import sys, statechart.cli\n"
            "print(sorted(m for m in sys.modules if m.startswith(('statechart.', 'networkx', 'cattrs', 'yaml'))))")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(completed.stdout.replace("'", '"')) == ["statechart.cli", "statechart.errors"]


def test_the_command_table_names_every_command_once() -> None:
    resolved = {name: cli.get_command(click.Context(cli), name) for name in COMMANDS}
    assert all(isinstance(command, click.Command) for command in resolved.values())
    assert {name: command.name for name, command in resolved.items()} == {name: name for name in COMMANDS}
    reachable: set[int] = set()
    pending = list(resolved.values())
    while pending:  # every command reachable from `statechart`, through groups
        command = pending.pop()
        reachable.add(id(command))
        if isinstance(command, click.Group):
            pending.extend(command.commands.values())
    modules = {module for module, _, _ in COMMANDS.values()}
    defined = [value for module in modules for value in vars(__import__(f"statechart.cli.{module}", fromlist=["x"]))
               .values() if isinstance(value, click.Command)]
    assert defined and [c.name for c in defined if id(c) not in reachable] == []


def test_migration_commands_have_one_home_and_short_aliases() -> None:
    group = cli.get_command(click.Context(cli), "migrations")
    assert isinstance(group, click.Group)
    assert set(group.commands) == {"diff", "makemigration", "check", "status", "migrate"}
    for alias in ("diff", "makemigration", "migrate"):
        assert cli.get_command(click.Context(cli), alias) is group.commands[alias]


def test_the_version_has_one_source() -> None:
    assert statechart.__version__ == importlib.metadata.version("statechart")
    completed = subprocess.run([sys.executable, "-m", "statechart.cli", "--version"], capture_output=True,
                               text=True, check=True)
    assert completed.stdout.strip() == f"statechart, version {statechart.__version__}"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An sdist and a wheel built from the tracked files, as a release would be."""
    if not (ROOT / ".git").exists():
        pytest.skip("building needs the git checkout (the tracked files)")
    source = tmp_path_factory.mktemp("source")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    # PyPA's frontend, as a release does: the sdist first, then the wheel built from that sdist,
    # each in an isolated environment with the build requirements of pyproject.toml.
    completed = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(source)],
                               capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return {"sdist": next(out.glob("*.tar.gz")), "wheel": next(out.glob("*.whl"))}


def test_the_wheel_carries_the_example_project_and_the_typing_marker(built: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(built["wheel"]).namelist())
    for expected in ("statechart/py.typed", "statechart/schemas/machine.schema.json",
                     "statechart/example_project/machines/order/v2.yaml",
                     "statechart/example_project/machines/order/actions.py",
                     "statechart/example_project/migrations/delivery/v1_to_v2.py",
                     "statechart/web/static/index.html", "statechart/web/static/app.js",
                     "statechart/web/static/style.css"):
        assert expected in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    assert not any("__pycache__" in name or name.startswith("tests/") for name in names)
    metadata = zipfile.ZipFile(built["wheel"]).read(
        next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: MIT" in metadata
    assert "Provides-Extra: postgres" in metadata and "Provides-Extra: fuzz" in metadata
    assert "Requires-Dist: psycopg[binary]>=3.1; extra == \"postgres\"" in metadata
    assert "Requires-Dist: hypothesis" not in metadata.split("Provides-Extra")[0]
    assert "Requires-Dist: flask>=3.0; extra == \"serve\"" in metadata
    assert "Requires-Dist: flask" not in metadata.split("Provides-Extra")[0]  # only the extra needs it


def test_the_sdist_carries_what_its_tests_need(built: dict[str, Path]) -> None:
    with tarfile.open(built["sdist"]) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for expected in ("LICENSE", "CHANGELOG.md", "README.md", "setup.py", "pyproject.toml", "tests/conftest.py",
                     "tests/test_readme.py", "machines/order/v2.yaml", "migrations/delivery/v2_to_v3.py",
                     "docs/guide.md", "statechart/py.typed"):
        assert expected in names, expected
