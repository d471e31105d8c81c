"""The docs cannot rot: every ```python block in semantics.md and guide.md runs here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "semantics.md"
FENCE = re.compile(r"^```python\n(.*?)^```$", flags=re.S | re.M)


def python_blocks() -> list[tuple[int, str]]:
    """(line number of the opening fence, code) for every ```python block of the page."""
    text = PAGE.read_text(encoding="utf-8")
    return [(text.count("\n", 0, match.start()) + 1, match.group(1)) for match in FENCE.finditer(text)]


BLOCKS = python_blocks()


def test_semantics_page_has_python_examples() -> None:
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize(("line", "code"), BLOCKS, ids=[f"line{line}" for line, _ in BLOCKS])
def test_semantics_example_runs(line: int, code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    # Pad with blank lines so a traceback points at the right line of the page.
    source = "\n" * line + code
    namespace: dict[str, object] = {"__name__": f"semantics_md_line{line}"}
    exec(compile(source, str(PAGE), "exec"), namespace)  # noqa: S102 - the page is ours


GUIDE = ROOT / "docs" / "guide.md"


def test_guide_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guide's snippets run in order, in a fresh folder that has the project's machines."""
    text = GUIDE.read_text(encoding="utf-8")
    blocks = [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in FENCE.finditer(text)]
    assert len(blocks) >= 2
    (tmp_path / "machines").symlink_to(ROOT / "machines")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "guide_md"}
    for line, code in blocks:
        exec(compile("\n" * line + code, str(GUIDE), "exec"), namespace)  # noqa: S102 - the page is ours
    assert (tmp_path / "app.db").exists()


def test_guide_yaml_example_is_a_valid_machine() -> None:
    import statechart

    text = GUIDE.read_text(encoding="utf-8")
    yaml_block = re.search(r"^```yaml\n(.*?)^```$", text, flags=re.S | re.M).group(1)
    machine = statechart.loads(yaml_block, "machines/subscription/v1.yaml")
    instance = machine.start(clock=statechart.VirtualClock())
    instance.advance(14 * 86400)
    assert instance.configuration == {"active"}
    instance.send("PAYMENT_FAILED")
    assert instance.configuration == {"grace"} and instance.data["failures"] == 1
