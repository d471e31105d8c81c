"""SCXML documents (Python datamodel) -> the located YAML vocabulary, ready for the compiler.

The importer does not interpret anything: it maps each SCXML element onto the YAML form that
means the same, keeping the element's line and column as the position of every key it
produces, so a compile error in an imported document points into the ``.scxml`` file. What
the YAML has no equivalent for (``<invoke>``, ECMAScript, the Basic HTTP I/O processor,
foreign elements) is refused with the element's name and line, never dropped.

The importer is split by the kind of element: :mod:`.scxml_parse` (XML -> located elements),
:mod:`.scxml_import_states`, :mod:`.scxml_import_transitions`, :mod:`.scxml_import_actions`,
:mod:`.scxml_import_data` (over :mod:`.scxml_import_core`), :mod:`.scxml_literals` (text inside
elements) and :mod:`.scxml_yaml` (writing the YAML). This module maps the <scxml> root and puts
the parts together.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from .errors import LoadError, Problem
from .quoting import quote_repr
from .scxml_import_actions import ActionImporter
from .scxml_import_core import keyed
from .scxml_import_data import DataImporter
from .scxml_import_states import StateImporter
from .scxml_import_transitions import TransitionImporter
from .scxml_parse import MAX_ELEMENT_DEPTH, SCXML_NS, STATECHART_NS, Element, parse_scxml
from .scxml_sources import MAX_SRC_BYTES
from .scxml_yaml import document_to_yaml
from .yaml_loader import LocatedMap

__all__ = ["SCXML_NS", "STATECHART_NS", "MAX_ELEMENT_DEPTH", "parse_scxml", "scxml_to_document", "scxml_to_yaml",
           "document_to_yaml"]

_NAME = re.compile(r"[^a-z0-9_]+")


class _Importer(StateImporter, TransitionImporter, ActionImporter, DataImporter):
    """The whole importer: the parts, and the <scxml> root."""

    # -- document --------------------------------------------------------------------------------
    def document(self, root: Element) -> LocatedMap | None:
        if root.tag != "scxml" or root.namespace != SCXML_NS:
            self.problem(root, f"the root element must be <scxml> in namespace {SCXML_NS}")
            return None
        datamodel = root.attributes.get("datamodel", "python")
        if datamodel not in ("python", "null"):
            self.problem(root, f"datamodel {quote_repr(datamodel)} is not supported",
                         "statechart evaluates Python expressions: use datamodel=\"python\"")
        binding = root.attributes.get("binding", "early")
        if binding not in ("early", "late"):
            self.problem(root, f"binding must be 'early' or 'late', not {quote_repr(binding)}")
        self.late_binding = binding == "late"
        stem = Path(self.file).stem
        name = root.attributes.get("name") or stem
        machine_name = _NAME.sub("_", name.lower()).strip("_") or "machine"
        if not machine_name[0].isalpha():
            machine_name = "m_" + machine_name
        version_text = root.attributes.get(f"{STATECHART_NS}}}version")
        items: list[tuple[str, Any]] = [("machine", machine_name)]
        match = re.fullmatch(r"v(\d+)", stem)
        items.append(("version", int(version_text) if version_text and version_text.isdigit()
                      else int(match.group(1)) if match else 1))
        description = root.attributes.get(f"{STATECHART_NS}}}description")
        if description is not None:
            items.append(("description", description))
        python = root.attributes.get(f"{STATECHART_NS}}}python")
        if python:
            modules = python.split()
            items.append(("python", modules[0] if len(modules) == 1 else self.sequence(root, modules)))
        if binding == "late":
            items.append(("binding", "late"))
        top_ids = {c.attributes.get("id") for c in root.children
                   if c.namespace == SCXML_NS and c.tag in ("state", "parallel", "final")}
        if "initial" in root.attributes:
            targets = root.attributes["initial"].split()
            items.append(("initial", targets[0] if len(targets) == 1 and targets[0] in top_ids
                          else self.initial_targets(root, root.attributes["initial"])))
        data: list[tuple[str, Any]] = []
        states: list[tuple[str, Any]] = []
        scripts: list[Any] = []
        for child in root.children:
            if child.namespace == STATECHART_NS and child.tag == "invariant":
                items.append(("invariant", child.attributes.get("expr", "")))
            elif child.namespace == STATECHART_NS and child.tag == "initial":
                if "initial" in root.attributes:
                    self.problem(child, "<sc:initial> and the initial attribute of <scxml> cannot both be given")
                items.append(("initial", self.initial_element(child)))
            elif child.namespace != SCXML_NS:
                self.refuse(child, "<scxml>")
            elif child.tag == "datamodel":
                data.extend(self.datamodel(child))
            elif child.tag in ("state", "parallel", "final"):
                states.append(self.state(child))
            elif child.tag == "script":
                scripts.append(self.script(child))
            else:
                self.refuse(child, "<scxml>")
        if data:
            items.append(("data", self.mapping(root, data)))
        if scripts:
            items.append(("script", self.sequence(root, scripts) if len(scripts) > 1 else scripts[0]))
        if not states:
            self.problem(root, "the document has no states")
        items.append(("states", keyed(root, states)))
        return self.mapping(root, items)


def scxml_to_document(text: str | bytes, file: str, base_dir: Path | None = None, *,
                      src_dir: str | os.PathLike[str] | None = None,
                      max_src_bytes: int = MAX_SRC_BYTES) -> tuple[LocatedMap | None, list[Problem]]:
    """Parse an SCXML document into the located YAML vocabulary, with the problems found.

    ``src`` attributes are read only from inside ``src_dir`` (see :mod:`.scxml_sources`)."""
    root = parse_scxml(text, file)
    importer = _Importer(file, base_dir or Path(file).parent, src_dir, max_src_bytes)
    document = importer.document(root)
    return document, importer.problems


def scxml_to_yaml(text: str | bytes, file: str, base_dir: Path | None = None, *, machine: str | None = None,
                  version: int | None = None, src_dir: str | os.PathLike[str] | None = None,
                  max_src_bytes: int = MAX_SRC_BYTES) -> str:
    """An SCXML document as a YAML machine file (``machine``/``version`` override the document's).

    Raises :class:`LoadError` with every problem (unsupported elements with their line) and
    writes nothing when the document cannot be imported."""
    document, problems = scxml_to_document(text, file, base_dir, src_dir=src_dir, max_src_bytes=max_src_bytes)
    if problems or document is None:
        raise LoadError(problems)
    if machine is not None:
        document["machine"] = machine
    if version is not None:
        document["version"] = version
    return document_to_yaml(document)
