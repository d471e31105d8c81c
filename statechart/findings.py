"""What the static checks report: one value per defect, with where it was written."""

from __future__ import annotations

from typing import Any

import attrs

from .model import Location

__all__ = ["Finding"]


@attrs.frozen
class Finding:
    """One defect: ``kind`` (see the module docstring), a sentence, and where it was written."""

    kind: str
    message: str
    location: Location | None
    subject: str = ""  # the state, transition or event the finding is about

    def __str__(self) -> str:
        where = str(self.location) if self.location else "<machine>"
        return f"{where}: {self.kind}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        location = self.location
        return {"kind": self.kind, "message": self.message, "subject": self.subject,
                "file": location.file if location else None, "line": location.line if location else None,
                "column": location.column if location else None}
