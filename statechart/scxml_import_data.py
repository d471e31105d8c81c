"""<datamodel>, <data>, <donedata>, <param> and <content> -> YAML data values and expressions."""

from __future__ import annotations

from typing import Any

from .scxml_import_core import ImporterCore
from .scxml_literals import TooDeepLiteral, data_literal, literal_source, literal_value
from .scxml_parse import SCXML_NS, Element

__all__ = ["DataImporter"]


class DataImporter(ImporterCore):
    """Data and payload values (uses ``read_src`` and ``too_deep`` of the core)."""

    def datamodel(self, element: Element) -> list[tuple[str, Any]]:
        entries = []
        for data in element.children:
            if data.namespace != SCXML_NS or data.tag != "data":
                self.refuse(data, "<datamodel>")
                continue
            data_id = data.attributes.get("id")
            if not data_id:
                self.problem(data, "<data> needs an id")
                continue
            entries.append((data_id, self.data_value(data)))
        return entries

    def data_value(self, data: Element) -> Any:
        if "expr" in data.attributes:
            return self.mapping(data, [("expr", data.attributes["expr"])])
        try:
            if "src" in data.attributes:
                content = self.read_src(data)
                return None if content is None else data_literal(data, content.strip())
            if data.text.strip() or data.children:
                return data_literal(data, data.text.strip())
        except TooDeepLiteral:
            self.too_deep(data)
        return None

    def donedata(self, element: Element) -> Any:
        contents = element.child_elements("content")
        params = element.child_elements("param")
        if contents:
            return self.content_expression(contents[0])
        return self.mapping(element, [(p.attributes.get("name", ""), self.param_expression(p)) for p in params])

    def param_expression(self, param: Element) -> Any:
        """A param's expression; a non-string literal (``7``, ``True``, ``None``, ``[1, 2]``) is its value,
        as YAML writes it, while a string literal stays an expression (``"'abc'"``)."""
        if "expr" in param.attributes:
            try:
                return literal_value(param.attributes["expr"], param.attributes["expr"])
            except TooDeepLiteral:
                self.too_deep(param)
                return "None"
        if "location" in param.attributes:
            return param.attributes["location"]
        self.problem(param, "<param> needs expr or location")
        return "None"

    def content_expression(self, content: Element) -> str:
        if "expr" in content.attributes:
            return content.attributes["expr"]
        if content.children:
            self.problem(content, "<content> holding XML markup is not supported",
                         "use text (a Python or JSON literal) or expr")
        try:
            return literal_source(content.text.strip())
        except TooDeepLiteral:
            self.too_deep(content)
            return "None"
