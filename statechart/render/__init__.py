"""Diagrams of compiled machines: Graphviz DOT (and through it SVG/PNG/PDF) and Mermaid.

Everything here reads the compiled model (``Machine.model``) only; nothing runs actions.
"""

from __future__ import annotations

from .graphviz import GraphvizMissingError, render_dot, render_file, render_migration_dot
from .mermaid import render_mermaid

__all__ = ["render_dot", "render_migration_dot", "render_mermaid", "render_file", "GraphvizMissingError"]
