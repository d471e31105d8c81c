"""docs/semantics.md cannot rot: every ```python block in it runs here, each on its own."""

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
