"""``statechart serve``: a local web app to simulate machines and replay stored instances.

The pieces, each with one job:

* :mod:`.catalog` loads the machine files of one folder once, at start-up; requests name a
  machine by (name, version), never by path;
* :mod:`.simulator` holds simulator sessions in memory: an Instance on a VirtualClock and a
  bounded stack of snapshots for "step back";
* :mod:`.diagram` draws a configuration as SVG through Graphviz, tags each state's SVG group
  with ``data-state`` (and ``active``), and caches the result;
* :mod:`.replay` reads stored instances and their audit trail, and sends or creates only when
  the server was started with ``--allow-send``;
* :mod:`.app` is the Flask app (Flask is the optional extra ``statechart[serve]``).

Only :mod:`.app` imports Flask, so the rest is usable and testable without it.
"""

from __future__ import annotations

__all__ = ["INSTALL_HINT"]

INSTALL_HINT = "statechart serve needs Flask: pip install 'statechart[serve]'"
