"""A machine document (plain or located values) -> readable YAML text, for ``statechart import``."""

from __future__ import annotations

import re
from typing import Any

import yaml

from .yaml_loader import LocatedList, LocatedMap

__all__ = ["document_to_yaml"]

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_PLAIN_VALUE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.\-]*|\d+(\.\d+)?(ms|s|m|h|d))$")
_STR_TAG = "tag:yaml.org,2002:str"
_YAML_11 = yaml.resolver.Resolver()  # how other readers (and our loader, for values) see a plain scalar


class _YamlDumper(yaml.SafeDumper):
    """Block style, lists indented under their key, no aliases; `on` written plain as a key."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        # The machine loader reads keys as written; string values that YAML 1.1 reads as booleans
        # are quoted by _represent_str, and booleans are written true/false.
        if kind is yaml.ScalarNode and isinstance(value, str) and value.lower() in ("on", "off", "yes", "no"):
            return _STR_TAG
        return super().resolve(kind, value, implicit)


class _Key(str):
    """A mapping key: the loader reads keys as written, so `on` and `2d` stay plain."""


def _represent_str(dumper: Any, value: str) -> yaml.ScalarNode:
    if isinstance(value, _Key):
        if _PLAIN_KEY.match(value):
            return dumper.represent_scalar(_STR_TAG, str(value), style="")
    elif _PLAIN_VALUE.match(value) and _YAML_11.resolve(yaml.ScalarNode, value, (True, False)) == _STR_TAG:
        return dumper.represent_scalar(_STR_TAG, value, style="")
    elif "\n" in value.strip("\n"):
        return dumper.represent_scalar(_STR_TAG, value, style="|")
    quote = "'" if '"' in value and "'" not in value and value.isprintable() else '"'
    return dumper.represent_scalar(_STR_TAG, str(value), style=quote)


def _represent_mapping(dumper: yaml.SafeDumper, value: dict) -> yaml.MappingNode:
    return dumper.represent_mapping("tag:yaml.org,2002:map", [(_Key(k), v) for k, v in value.items()])


_YamlDumper.add_representer(str, _represent_str)
_YamlDumper.add_representer(_Key, _represent_str)
_YamlDumper.add_representer(dict, _represent_mapping)
_YamlDumper.add_representer(LocatedMap, _represent_mapping)
_YamlDumper.add_representer(LocatedList, yaml.SafeDumper.represent_list)


def document_to_yaml(document: Any) -> str:
    """A machine document (plain or located values) as readable YAML: block style, the keys in the
    document's order, expressions quoted and never folded, scripts as ``|`` blocks."""
    return yaml.dump(document, Dumper=_YamlDumper, sort_keys=False, default_flow_style=False, allow_unicode=True,
                     width=1_000_000)
