"""The attack corpus of the loading half of the trust boundary (docs/security.md).

Loading, validating and importing a machine is reading data: each case below is an input a
stranger could hand us, and asserts the exact located error, that no payload ran (its marker
file does not exist), that no secret was read (its text is nowhere in the output or the data),
and that nothing was written.
"""

from __future__ import annotations

import gc
import json
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import statechart
from statechart.cli import main
from statechart.errors import LoadError, Problem, StatechartError
from statechart.json_text import MAX_JSON_DEPTH, JSONTextError, parse_json_text
from statechart.machine import loads_scxml
from statechart.errors import PythonNotImportedError
from statechart.quoting import quote, quote_repr
from statechart.scripts import compile_script
from statechart.scxml_parse import MAX_ELEMENT_DEPTH
from statechart.yaml_loader import MAX_DEPTH

SCXML_HEAD = '<scxml xmlns="http://www.w3.org/2005/07/scxml" version="1.0" datamodel="python">'
SECRET = "TOP-SECRET-7f3a9c"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project: ``machines/shop/`` inside it, a payload module that leaves a marker when it runs."""
    (tmp_path / "project" / "machines" / "shop").mkdir(parents=True)
    return tmp_path / "project"


def payload_module(path: Path, marker: Path) -> Path:
    """A module whose import creates ``marker`` (so a test can tell that it ran) and defines ``touch``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n\n"
                    "def touch(ctx):\n    pass\n")
    return path


def machine_with(folder: Path, python: str, action: str = "touch") -> Path:
    file = folder / "v1.yaml"
    file.write_text(f"machine: shop\nversion: 1\npython: {python}\nstates:\n  a: {{entry: [{action}]}}\n")
    return file


def problems(call: Callable[[], Any]) -> list[Problem]:
    with pytest.raises(LoadError) as caught:
        call()
    return list(caught.value.problems)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def scxml(body: str, attributes: str = "") -> str:
    return f"{SCXML_HEAD[:-1]}{attributes}>\n{body}\n</scxml>\n"


# --------------------------------------------------------------------------- python: modules


def test_an_absolute_python_path_is_refused_and_not_run(project: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    payload = payload_module(tmp_path / "elsewhere" / "payload.py", marker)
    file = machine_with(project / "machines" / "shop", str(payload))
    assert problems(lambda: statechart.load(file)) == [
        Problem(str(file), 3, 9, f"the Python module {quote_repr(str(payload))} is an absolute path",
                "name a .py file relative to the machine file, inside its project"),
        Problem(str(file), 5, 15, "unknown action 'touch'",
                "pass actions={'touch': ...} to statechart.load() or name a module under `python:`")]
    assert not marker.exists()


def test_a_python_path_leaving_the_project_is_refused_and_not_run(project: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    payload_module(tmp_path / "payload.py", marker)
    file = machine_with(project / "machines" / "shop", "../../../payload.py")
    found = problems(lambda: statechart.load(file))
    assert found[0] == Problem(
        str(file), 3, 9, f"the Python module '../../../payload.py' is outside the project ({project.resolve()})",
        "only modules inside the machine's project can be named; pass python=[folder, ...] to statechart.load() "
        "to allow another folder")
    assert not marker.exists()


def test_a_symlink_inside_the_project_to_a_module_outside_is_refused(project: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    payload = payload_module(tmp_path / "payload.py", marker)
    folder = project / "machines" / "shop"
    (folder / "actions.py").symlink_to(payload)
    file = machine_with(folder, "actions.py")
    assert "is outside the project" in problems(lambda: statechart.load(file))[0].message
    assert not marker.exists()


@pytest.mark.parametrize("module, action", [("sys", "exit"), ("builtins", "input"), ("os", "system"),
                                            ("subprocess", "run"), ("importlib", "import_module")])
def test_stdlib_modules_cannot_be_named(project: Path, module: str, action: str) -> None:
    file = machine_with(project / "machines" / "shop", module, action)
    found = problems(lambda: statechart.load(file))
    assert found[0] == Problem(
        str(file), 3, 9, f"{module!r} is not a module of the project ({project.resolve()})",
        "a dotted name must be a module file inside the project (myapp/actions.py); stdlib and installed modules "
        "(sys, os, builtins ...) cannot be named")
    assert found[1].message == f"unknown action {action!r}"


def test_an_installed_package_cannot_be_named(project: Path) -> None:
    file = machine_with(project / "machines" / "shop", "statechart.durations", "parse_duration")
    assert "is not a module of the project" in problems(lambda: statechart.load(file))[0].message


@pytest.mark.parametrize("name, reason", [('"a\\x00.py"', "embedded null byte"), ("a" * 5000 + ".py", "File name too long")],
                         ids=["NUL byte", "too long"])
def test_module_names_the_file_system_cannot_take_are_located_problems(project: Path, name: str,
                                                                       reason: str) -> None:
    file = project / "machines" / "shop" / "v1.yaml"
    file.write_text(f"machine: shop\nversion: 1\npython: {name}\nstates: {{a: {{}}}}\n")
    [found] = problems(lambda: statechart.load(file))
    assert (found.line, found.column) == (3, 9) and found.message.endswith(f"cannot be looked up: {reason}")
    assert len(found.message) < 200


def test_a_dotted_project_module_is_imported_and_binds_its_functions(project: Path) -> None:
    (project / "shopapp").mkdir()
    (project / "shopapp" / "__init__.py").write_text("")
    (project / "shopapp" / "hooks.py").write_text("def touch(ctx):\n    ctx.data['touched'] = True\n")
    file = project / "machines" / "shop" / "v1.yaml"
    file.write_text("machine: shop\nversion: 1\npython: shopapp.hooks\ndata: {touched: false}\n"
                    "states:\n  a: {entry: [touch]}\n")
    assert statechart.load(file).start().data == {"touched": True}


def test_python_refuse_refuses_the_key_and_imports_nothing(project: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    folder = project / "machines" / "shop"
    payload_module(folder / "actions.py", marker)
    file = machine_with(folder, "actions.py")
    assert problems(lambda: statechart.load(file, python="refuse"))[0] == Problem(
        str(file), 3, 9, "the machine names the Python module 'actions.py', and Python modules are not allowed here",
        "a caller that trusts this machine passes python='project' to statechart.load() (CLI: --allow-python)")
    assert not marker.exists()


def test_python_static_checks_names_without_running_the_module(project: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    folder = project / "machines" / "shop"
    payload_module(folder / "actions.py", marker)
    machine = statechart.load(machine_with(folder, "actions.py"), python="static")
    assert machine.name == "shop" and not marker.exists()
    bad = machine_with(folder, "actions.py", "touhc")
    assert problems(lambda: statechart.load(bad, python="static")) == [
        Problem(str(bad), 5, 15, "unknown action 'touhc'", "did you mean 'touch'?")]
    assert not marker.exists()


def test_python_static_reports_a_module_it_cannot_parse_without_running_it(project: Path, tmp_path: Path) -> None:
    folder = project / "machines" / "shop"
    (folder / "actions.py").write_text(f"import pathlib; pathlib.Path({str(tmp_path / 'ran')!r}).touch()\ndef touch(:\n")
    file = machine_with(folder, "actions.py")
    assert problems(lambda: statechart.load(file, python="static"))[0] == Problem(
        str(file), 3, 9, "cannot read Python module 'actions.py': invalid syntax at line 2",
        f"fix {(folder / 'actions.py').resolve()}")
    assert not (tmp_path / "ran").exists()


def test_a_statically_checked_function_refuses_to_run(project: Path, tmp_path: Path) -> None:
    folder = project / "machines" / "shop"
    payload_module(folder / "actions.py", tmp_path / "ran")
    machine = statechart.load(machine_with(folder, "actions.py"), python="static")
    entry = machine.states["a"].entry[0][0]
    with pytest.raises(PythonNotImportedError, match=r"'touch' from 'actions.py' was checked but not imported"):
        entry.run(SimpleNamespace(prepare_for_python=lambda: None))
    assert not (tmp_path / "ran").exists()


def test_an_explicit_list_of_folders_is_the_only_place_modules_come_from(project: Path, tmp_path: Path) -> None:
    library = tmp_path / "library"
    payload_module(library / "hooks.py", tmp_path / "ran")
    folder = project / "machines" / "shop"
    file = machine_with(folder, "lib.hooks")
    assert "is not a module of the project" in problems(lambda: statechart.load(file))[0].message
    assert not (tmp_path / "ran").exists()
    file = machine_with(folder, "hooks")
    assert statechart.load(file, python=[library]).name == "shop"
    assert (tmp_path / "ran").exists()


def test_validate_reads_python_modules_without_running_them(project: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "ran"
    folder = project / "machines" / "shop"
    payload_module(folder / "actions.py", marker)
    file = machine_with(folder, "actions.py")
    code, out, _ = cli(capsys, "validate", str(file))
    assert (code, out) == (0, f"ok   {file}  (shop v1: 1 states, 0 transitions)\n")
    assert not marker.exists()
    for command in (["check", str(file)], ["paths", str(file)], ["export", str(file)],
                    ["diff", str(file), str(file)], ["render", str(file), "-o", str(tmp_path / "d.dot")]):
        code, out, err = cli(capsys, *command)
        assert code == (1 if command[0] == "check" else 0), (command, out, err)  # check: `a` is a dead end
        assert not marker.exists(), command
    assert cli(capsys, "validate", "--allow-python", str(file))[0] == 0
    assert marker.exists()


def test_validate_still_reports_unknown_names_from_the_static_check(project: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    folder = project / "machines" / "shop"
    payload_module(folder / "actions.py", tmp_path / "ran")
    file = machine_with(folder, "actions.py", "tuch")
    code, out, err = cli(capsys, "validate", str(file))
    assert code == 1 and err == ""
    assert out.splitlines() == [f"FAIL {file}", f"  {file}:5:15: unknown action 'tuch' (did you mean 'touch'?)",
                                "1 of 1 machine file(s) failed"]
    assert not (tmp_path / "ran").exists()


def test_validate_of_an_absolute_python_path_fails_with_one_located_line(
        project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    payload = payload_module(tmp_path / "payload.py", tmp_path / "ran")
    file = machine_with(project / "machines" / "shop", str(payload))
    code, out, err = cli(capsys, "validate", str(file))
    assert code == 1 and "Traceback" not in out + err
    assert f"  {file}:3:9: the Python module {str(payload)!r} is an absolute path" in out.splitlines()[1]
    assert not (tmp_path / "ran").exists()


def test_an_scxml_document_imports_no_python_unless_the_caller_opts_in(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "ran"
    payload_module(tmp_path / "payload.py", marker)
    document = tmp_path / "chart.scxml"
    document.write_text(scxml('<state id="a"><onentry><sc:call xmlns:sc="https://statechart.dev/scxml" '
                              'name="touch"/></onentry></state>',
                              ' xmlns:sc="https://statechart.dev/scxml" sc:python="payload.py"'))
    assert problems(lambda: statechart.load(document))[0] == Problem(
        str(document), 1, 1, "the machine names the Python module 'payload.py', and Python modules are not allowed "
        "here", "a caller that trusts this machine passes python='project' to statechart.load() (CLI: --allow-python)")
    assert not marker.exists()
    code, out, err = cli(capsys, "import", str(document))  # checks the names statically
    assert code == 0 and "python: payload.py" in out
    assert not marker.exists()
    code, out, err = cli(capsys, "run", str(document), "--json")
    assert code == 1 and not marker.exists()
    assert cli(capsys, "run", str(document), "--json", "--allow-python")[0] == 0
    assert marker.exists()


# --------------------------------------------------------------------------- SCXML src


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(f'"{SECRET}"')
    return path


def data_src(source: str) -> str:
    return scxml(f'<datamodel><data id="x" src="{source}"/></datamodel><state id="a"/>')


def test_data_src_is_refused_without_a_src_folder(secret: Path) -> None:
    for source in (str(secret), f"file://{secret}", "secret.txt", "/etc/passwd"):
        found = problems(lambda: loads_scxml(data_src(source), str(secret.parent / "t.scxml")))
        assert found == [Problem(
            str(secret.parent / "t.scxml"), 2, 12,
            f"<data>: src {source!r} is not read: this document was loaded without a src folder",
            "a caller that trusts the document passes src_dir= to loads_scxml() (CLI: --src-dir DIR); or write the "
            "content inline")]


@pytest.mark.parametrize("source, message", [
    ("/etc/passwd", "src '/etc/passwd' is an absolute path"),
    ("file:///etc/passwd", "src 'file:///etc/passwd' is an absolute path"),
    ("../secret.txt", "src '../secret.txt' is outside the src folder {root}"),
    ("file:../secret.txt", "src 'file:../secret.txt' is outside the src folder {root}"),
    ("link.txt", "src 'link.txt' is outside the src folder {root}"),
    ("zero", "src 'zero' is outside the src folder {root}"),
    ("http://example.com/x.json", "src 'http://example.com/x.json' is a http: URL; only files are read"),
    ("file://evil.example/etc/passwd", "src 'file://evil.example/etc/passwd' names another host"),
    ("missing.json", "cannot read src 'missing.json': No such file or directory"),
])
def test_data_src_never_leaves_the_src_folder(secret: Path, tmp_path: Path, source: str, message: str) -> None:
    root = tmp_path / "documents"
    root.mkdir()
    (root / "link.txt").symlink_to(secret)
    (root / "zero").symlink_to("/dev/zero")
    found = problems(lambda: loads_scxml(data_src(source), str(root / "t.scxml"), src_dir=root))
    assert [(p.line, p.column, p.message) for p in found] == [(2, 12, "<data>: " + message.format(root=root))]


def test_src_names_the_file_system_cannot_take_are_located_problems(tmp_path: Path) -> None:
    found = problems(lambda: loads_scxml(data_src("a" * 5000), str(tmp_path / "t.scxml"), src_dir=tmp_path))
    assert found[0].message == f"<data>: cannot read src {quote_repr('a' * 5000)}: File name too long"


def test_a_fifo_in_the_src_folder_is_refused_without_hanging(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    found = problems(lambda: loads_scxml(data_src("pipe"), str(tmp_path / "t.scxml"), src_dir=tmp_path))
    assert found[0].message == "<data>: src 'pipe' is not a regular file"


def test_a_binary_src_file_is_refused_as_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "blob.bin").write_bytes(b"\x00\xff\xfe binary")
    found = problems(lambda: loads_scxml(data_src("blob.bin"), str(tmp_path / "t.scxml"), src_dir=tmp_path))
    assert found[0].message == "<data>: src 'blob.bin' is not UTF-8 text (byte 1 cannot be decoded)"


def test_a_src_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    (tmp_path / "big.json").write_text("[" + "1," * 100 + "1]")
    found = problems(lambda: loads_scxml(data_src("big.json"), str(tmp_path / "t.scxml"), src_dir=tmp_path,
                                         max_src_bytes=100))
    assert found[0] == Problem(str(tmp_path / "t.scxml"), 2, 12,
                               "<data>: src 'big.json' is 203 bytes, more than the limit of 100",
                               "pass a larger max_src_bytes= to loads_scxml() (CLI: --max-src-bytes) if it is meant")


def test_a_src_file_inside_the_src_folder_is_read(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.json").write_text('{"limit": 3}')
    (tmp_path / "init.py").write_text("y = x['limit'] + 1\n")
    text = scxml('<datamodel><data id="x" src="file:data/x.json"/><data id="y"/></datamodel>'
                 '<script src="init.py"/><state id="a"/>')
    machine = loads_scxml(text, str(tmp_path / "t.scxml"), src_dir=tmp_path)
    assert machine.start().data == {"x": {"limit": 3}, "y": 4}


def test_script_src_errors_do_not_show_the_file(secret: Path) -> None:
    text = scxml(f'<script src="{secret}"/><state id="a"/>')
    with pytest.raises(LoadError) as caught:
        loads_scxml(text, str(secret.parent / "t.scxml"))
    assert SECRET not in str(caught.value)
    assert caught.value.problems[0].message.startswith(f"<script>: src {str(secret)!r} is not read")


def test_import_command_refuses_src_without_reading_or_writing(secret: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    document = tmp_path / "chart.scxml"
    document.write_text(data_src(str(secret)))
    output = tmp_path / "out" / "v1.yaml"
    code, out, err = cli(capsys, "import", str(document), "-o", str(output))
    assert code == 1 and out == "" and "Traceback" not in err
    assert err.splitlines()[1:] == [
        f"  {document}:2:12: <data>: src {str(secret)!r} is not read: this document was loaded without a src folder "
        "(a caller that trusts the document passes src_dir= to loads_scxml() (CLI: --src-dir DIR); or write the "
        "content inline)"]
    assert SECRET not in out + err and not output.exists()
    document.write_text(data_src("secret.txt"))
    code, out, err = cli(capsys, "import", str(document), "--src-dir", str(tmp_path))
    assert code == 0 and f"x: {SECRET}" in out  # the caller chose to let it read this folder


# --------------------------------------------------------------------------- XML


def test_entity_declarations_are_refused_before_they_expand() -> None:
    laughs = ('<?xml version="1.0"?>\n<!DOCTYPE scxml [\n <!ENTITY a "aaaaaaaaaa">\n'
              + "".join(f' <!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">\n' for i in range(9))
              + ']>\n' + scxml('<datamodel><data id="x">&j;</data></datamodel><state id="a"/>'))
    started = time.perf_counter()
    assert problems(lambda: loads_scxml(laughs, "t.scxml")) == [Problem(
        "t.scxml", 2, 17, "document type declarations (<!DOCTYPE>) are not accepted",
        "remove the <!DOCTYPE ...> declaration; SCXML needs no DTD, and its entities could read files or expand "
        "without bound")]
    assert time.perf_counter() - started < 1


def test_an_external_entity_is_refused_not_dropped(secret: Path) -> None:
    text = (f'<!DOCTYPE scxml [<!ENTITY s SYSTEM "file://{secret}">]>\n'
            + scxml('<datamodel><data id="x">&s;</data></datamodel><state id="a"/>'))
    found = problems(lambda: loads_scxml(text, "t.scxml"))
    assert [(p.line, p.column, p.message) for p in found] == [
        (1, 17, "document type declarations (<!DOCTYPE>) are not accepted")]
    assert SECRET not in str(found)


def test_an_undeclared_entity_is_invalid_xml() -> None:
    found = problems(lambda: loads_scxml(scxml('<datamodel><data id="x">&s;</data></datamodel><state id="a"/>'),
                                         "t.scxml"))
    assert [(p.line, p.message) for p in found] == [(2, "invalid XML: undefined entity")]


def test_scxml_nested_deeper_than_the_limit_is_a_located_problem() -> None:
    depth = 200
    text = SCXML_HEAD + "\n" + "".join(f'<state id="s{i}">\n' for i in range(depth)) + "</state>" * depth + "</scxml>"
    assert problems(lambda: loads_scxml(text, "t.scxml")) == [Problem(
        "t.scxml", MAX_ELEMENT_DEPTH + 1, 1, f"elements nest more than {MAX_ELEMENT_DEPTH} deep",
        "flatten the chart; real statecharts nest a handful of levels")]


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 500, 10_000])
def test_scxml_literal_values_nested_past_the_json_limit_are_located_problems(depth: int) -> None:
    value = "[" * depth + "]" * depth
    text = scxml(f'<datamodel><data id="x">{value}</data></datamodel>\n<state id="a"><onentry>'
                 f'<send event="e"><param name="p" expr="{value}"/></send>\n<assign location="x">{value}</assign>'
                 '</onentry></state>')
    hint = "flatten the value; machine data nests a handful of levels"
    assert [(p.line, p.message, p.hint) for p in problems(lambda: loads_scxml(text, "t.scxml"))] == [
        (2, f"<data> holds a value nested more than {MAX_JSON_DEPTH} levels deep", hint),
        (3, f"<param> holds a value nested more than {MAX_JSON_DEPTH} levels deep", hint),
        (4, f"<assign> holds a value nested more than {MAX_JSON_DEPTH} levels deep", hint)]
    value = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert loads_scxml(scxml(f'<datamodel><data id="x">{value}</data></datamodel><state id="a"/>'),
                       "t.scxml").start().data["x"] == json.loads(value)


def test_large_scxml_text_is_read_in_linear_time() -> None:
    text = scxml('<datamodel><data id="x">' + "plain words\n" * 60_000 + '</data></datamodel><state id="a"/>')
    started = time.perf_counter()
    machine = loads_scxml(text, "t.scxml")
    assert time.perf_counter() - started < 3  # was 14 s while text was appended per parser callback
    assert machine.start().data["x"] == " ".join(["plain words"] * 60_000)


# --------------------------------------------------------------------------- YAML and JSON nesting


@pytest.mark.parametrize("text, where", [
    ("machine: a\nversion: 1\nstates: " + "[" * 5000 + "]" * 5000, (3, 8 + MAX_DEPTH + 1)),
    ("machine: a\nversion: 1\nstates: " + "{a: " * 5000 + "}" * 5000, (3, 8 + 4 * (MAX_DEPTH - 1) + 2)),
    ("machine: a\nversion: 1\ndata:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(300)),
     (3 + MAX_DEPTH, MAX_DEPTH + 1)),
], ids=["flow lists", "flow mappings", "block mappings"])
def test_yaml_nested_deeper_than_the_limit_is_a_located_problem(text: str, where: tuple[int, int]) -> None:
    assert problems(lambda: statechart.loads(text)) == [Problem(
        "<string>", *where, f"mappings and lists nest more than {MAX_DEPTH} deep",
        "flatten the structure; machine files nest a handful of levels")]


def test_yaml_nesting_built_through_aliases_is_limited_too() -> None:
    levels = ["a0: &a0 [" + "[" * 40 + "1" + "]" * 40 + "]"]
    levels += [f"a{i}: &a{i} [" + "[" * 40 + f"*a{i - 1}" + "]" * 40 + "]" for i in range(1, 6)]
    text = "machine: a\nversion: 1\nstates: {a: {}}\ndata:\n" + "".join(f"  {line}\n" for line in levels)
    found = problems(lambda: statechart.loads(text))
    assert [p.message for p in found] == [f"mappings and lists nest more than {MAX_DEPTH} deep (aliases included)"]


def test_json_is_refused_past_the_depth_limit_and_accepted_up_to_it() -> None:
    assert parse_json_text("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH) is not None
    with pytest.raises(JSONTextError, match=f"nested more than {MAX_JSON_DEPTH} levels deep") as caught:
        parse_json_text('{"a": "[[[[", "b": ' + "[" * 10_000 + "]" * 10_000 + "}")
    assert caught.value.position == 18 + MAX_JSON_DEPTH  # the outer object is the first level
    assert parse_json_text('{"brackets in a string": "' + "[" * 10_000 + '"}') == {"brackets in a string": "[" * 10_000}


@pytest.mark.parametrize("argv", [["--data", "[" * 10_000 + "]" * 10_000], ["-e", "ADD=" + "[" * 10_000]],
                         ids=["--data", "-e"])
def test_run_refuses_deep_json_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "run", str(Path(__file__).parent.parent / "machines/order/v2.yaml"), *argv)
    assert code == 2 and out == "" and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and f"nested more than {MAX_JSON_DEPTH} levels deep (at character {MAX_JSON_DEPTH})" \
        in errors[0]


# --------------------------------------------------------------------------- messages quote little


def test_quote_cuts_long_text_and_says_how_long_it_was() -> None:
    assert quote("short") == "short"
    assert quote("x" * 81) == "x" * 80 + "… (81 characters)"
    assert quote_repr("y" * 100, limit=5) == "'yyyyy'… (100 characters)"
    assert quote_repr(["z" * 100]) == repr(["z" * 100])[:80] + "… (104 characters)"


def test_an_error_about_a_huge_expression_quotes_only_its_start() -> None:
    expression = "1 + " * 60_000 + "$"
    found = problems(lambda: statechart.loads(
        f"machine: a\nversion: 1\nstates:\n  a: {{on: {{E: {{target: a, cond: '{expression}'}}}}}}\n"))
    assert len(found) == 1 and len(str(found[0])) < 400
    assert f"… ({len(expression)} characters)" in str(found[0])


def test_an_error_about_a_huge_key_quotes_only_its_start() -> None:
    key = "k" * 240_000
    found = problems(lambda: statechart.loads(f"machine: a\nversion: 1\n? {key}\n: 1\nstates: {{a: {{}}}}\n"))
    assert [len(str(p)) < 400 for p in found] == [True]
    assert found[0].message == f"unknown key {quote_repr(key)} in the machine"


# --------------------------------------------------------------------------- script compilation


def test_script_compilation_is_linear_in_its_length() -> None:
    def seconds(lines: int) -> float:
        source = "".join(f"v{i} = v{i - 1} + {i} if {i} else 0\n" if i else "v0 = 0\n" for i in range(lines))
        best = float("inf")
        for _ in range(3):
            gc.disable()  # a full collection walks every live object: its cost depends on the whole test run
            try:
                started = time.perf_counter()
                compile_script(source)
                best = min(best, time.perf_counter() - started)
            finally:
                gc.enable()
        return best

    ratio = seconds(4000) / seconds(1000)
    assert ratio < 7, f"4x the lines took {ratio:.1f}x the time (linear is about 4, quadratic 16)"


@pytest.mark.parametrize("script", ["x = " + "-" * 100_000 + "1", "x = " + "not " * 50_000 + "1"],
                         ids=["unary minus", "not"])
def test_a_deeply_nested_script_is_a_located_problem(script: str) -> None:
    found = problems(lambda: statechart.loads(f"machine: a\nversion: 1\nstates: {{a: {{}}}}\nscript: '{script}'\n"))
    assert [(p.line, p.column, p.message) for p in found] == [(4, 9, "script: script is too deeply nested")]


def test_a_long_list_of_conflicting_targets_is_one_problem_found_quickly() -> None:
    targets = ", ".join(["a"] * 20_000)
    started = time.perf_counter()
    found = problems(lambda: statechart.loads(
        f"machine: a\nversion: 1\nstates: {{a: {{on: {{E: {{target: [{targets}]}}}}}}}}\n"))
    assert time.perf_counter() - started < 10  # pairwise checking made 200 million problems
    assert [(p.line, p.column, p.message) for p in found] == [(3, 31, "targets 'a' and 'a' cannot be active together")]


# --------------------------------------------------------------------------- properties


def nested(depth: int, kind: str) -> str:
    opening, closing = {"list": ("[", "]"), "map": ("{a: ", "}"), "json": ('{"a": ', "}")}[kind]
    return opening * depth + "1" + closing * depth


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(depth=st.integers(0, 3000), kind=st.sampled_from(["list", "map"]), place=st.sampled_from(["data", "states"]),
       junk=st.text(max_size=40), size=st.integers(0, 300_000))
def test_any_nested_or_huge_yaml_raises_only_load_errors_quickly(depth: int, kind: str, place: str, junk: str,
                                                                 size: int) -> None:
    text = (f"machine: a\nversion: 1\nstates: {{a: {{}}}}\n{place}: {nested(depth, kind)}\n# {junk}\n"
            f"description: '{'d' * size}'\n").replace("states: {a: {}}\nstates", "states")
    started = time.perf_counter()
    try:
        statechart.loads(text)
    except LoadError:
        pass
    assert time.perf_counter() - started < 5


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(depth=st.integers(0, 400), text=st.text(max_size=200),
       tag=st.sampled_from(["state", "parallel", "onentry", "if", "datamodel", "foreign"]),
       size=st.integers(0, 200_000))
def test_any_nested_or_large_scxml_raises_only_load_errors_quickly(depth: int, text: str, tag: str,
                                                                   size: int) -> None:
    from xml.sax.saxutils import escape

    body = f"<{tag}>" * depth + escape(text) + "x" * size + f"</{tag}>" * depth
    document = scxml(f'<state id="a">{body}</state>')
    started = time.perf_counter()
    try:
        loads_scxml(document, "t.scxml")
    except StatechartError:
        pass
    assert time.perf_counter() - started < 5


@settings(max_examples=80, deadline=None)
@given(value=st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                          lambda children: st.lists(children, max_size=3)
                          | st.dictionaries(st.text(max_size=3), children, max_size=3), max_leaves=30),
       wrap=st.integers(0, 20_000))
def test_any_json_text_parses_or_raises_a_json_text_error(value: Any, wrap: int) -> None:
    text = "[" * wrap + json.dumps(value) + "]" * wrap
    try:
        parsed = parse_json_text(text)
    except JSONTextError as error:
        assert "nested more than" in error.message
        return
    for _ in range(wrap):
        parsed = parsed[0]
    assert parsed == value


def test_the_payload_module_really_would_run_when_allowed(project: Path, tmp_path: Path) -> None:
    """The corpus is honest: the same payload module does leave its marker when a host imports it."""
    folder = project / "machines" / "shop"
    payload_module(folder / "actions.py", tmp_path / "ran")
    statechart.load(machine_with(folder, "actions.py"))
    assert (tmp_path / "ran").exists()


def test_example_machines_still_load_with_their_project_module() -> None:
    root = Path(__file__).resolve().parent.parent
    machine = statechart.load(root / "machines" / "order" / "v2.yaml")
    assert machine.model.python_modules == ("actions.py",)
    assert statechart.load(root / "machines" / "order" / "v2.yaml", python="static").model == machine.model
