"""``statechart makemigration``: the first draft of the next step, written from a diff.

Unchanged state ids map to themselves; states that look renamed are proposed with a comment;
every removed or ambiguous state maps to ``"TODO"``, which ``migrations check`` refuses until a
person decides.
"""

from __future__ import annotations

from ..machine import Machine
from .chain import TODO
from .diff import diff_machines, rename_candidates

__all__ = ["skeleton"]


def skeleton(old: Machine, new: Machine) -> str:
    diff = diff_machines(old, new)
    renames = rename_candidates(old, new)
    lines = [f'"""{old.name} v{old.version} -> v{new.version}: written by `statechart makemigration`.', "",
             "Review every line below. States marked TODO were removed or could not be matched: decide",
             "where instances sitting in them should go; `statechart migrations check` fails until then.",
             '"""', "", "STATES = {"]
    for state_id, state in old.states.items():
        if state.kind.value == "history":
            continue
        if state_id in new.states:
            passing = next((t for t in new.states[state_id].transitions if not t.events and t.check is None), None)
            if passing is not None:
                lines.append(f"    {state_id!r}: {state_id!r},  # v{new.version} leaves it at once ({passing.id}): "
                             f"map to where it leads")
            else:
                lines.append(f"    {state_id!r}: {state_id!r},")
        elif state_id in renames:
            lines.append(f"    {state_id!r}: {renames[state_id]!r},  # proposed: looks renamed; check it")
        else:
            lines.append(f"    {state_id!r}: {TODO!r},  # removed in v{new.version}: decide where it goes")
    lines.append("}")
    lines += ["", "# What happens to pending delayed sends: 'keep' (remapped, same due time) or 'cancel'.",
              'TIMERS = "keep"', ""]
    if diff.data_added or diff.data_removed:
        lines += ["", "def map_data(instance):",
                  f'    """Data keys added: {", ".join(diff.data_added) or "none"}; '
                  f'removed: {", ".join(diff.data_removed) or "none"}."""',
                  "    data = dict(instance.data)"]
        for key in diff.data_removed:
            lines.append(f"    data.pop({key!r}, None)")
        for key in diff.data_added:
            default = new.model.data_spec.get(key)
            literal = repr(default) if not isinstance(default, dict) or "expr" not in default else "None"
            lines.append(f"    data[{key!r}] = {literal}  # TODO: derive from the old data if you can")
        lines += ["    return data", ""]
    return "\n".join(lines)
