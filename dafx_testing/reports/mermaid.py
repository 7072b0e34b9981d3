"""A history as a Mermaid sequence diagram.

:func:`sequence_diagram` draws one orchestration instance talking to its
participants: the client that starts it and raises its events, each activity,
the timer service, each entity and agent session, each sub-orchestration. Calls
are solid arrows, answers dashed ones, failures crossed, messages that get no
answer (entity signals, events sent to other instances) open arrows; a note
marks every moment the virtual clock moved::

    print(sequence_diagram(status.history, title=f"{status.name} ({status.instance_id})"))

Paste the output into a Markdown ```` ```mermaid ```` block (GitHub, Azure
DevOps and most wikis render it) or into https://mermaid.live.
"""

from __future__ import annotations

import re

from ..core.history import Event, format_timestamp
from ..core.timeline import elapsed, preview
from .interactions import CLIENT, OUT, Interaction, Participant, read_interactions

__all__ = ["sequence_diagram"]

_ORCHESTRATION = "O"
# Mermaid reads "#name;" and "#123;" as character entities, ends statements at ";",
# and treats "<...>" as markup: encode those so payload text is shown as written.
_SPECIAL = re.compile(r"[;<>]")


def sequence_diagram(history: list[Event], title: str | None = None,
                     max_messages: int | None = 200) -> str:
    """Render ``history`` (host-format events) as a Mermaid ``sequenceDiagram``.

    Args:
        history: the instance's events, e.g. ``sim.get_status(iid).history``.
        title: the orchestration's box label (default: the orchestrator's name).
        max_messages: keep the first and last messages of a longer history and
            say how many were left out (None keeps all).
    """
    steps = read_interactions(history)
    ids: dict[Participant, str] = {}
    for step in steps:
        ids.setdefault(step.participant, f"P{len(ids)}")
    started = next((s for s in steps if s.label.startswith("start ")), None)
    heading = title or (started.label[len("start "):] if started else "orchestration")
    # The caller (the first participant: it starts the instance) stands left of the orchestration.
    declared = [f"    {'actor' if p.kind == CLIENT else 'participant'} {alias} as {_text(p.label)}"
                for p, alias in ids.items()]
    lines = ["sequenceDiagram", *declared[:1],
             f"    participant {_ORCHESTRATION} as {_text(heading)}", *declared[1:]]
    lines += _messages(steps, ids, max_messages)
    return "\n".join(lines)


def _messages(steps: list[Interaction], ids: dict[Participant, str],
              max_messages: int | None) -> list[str]:
    shown = steps
    skipped = 0
    gap = None       # the position of the note that stands for the messages left out
    if max_messages is not None and len(steps) > max_messages:
        gap = max_messages // 2
        skipped = len(steps) - max_messages
        shown = steps[:gap] + steps[gap + skipped:]
    lines: list[str] = []
    clock = None
    for position, step in enumerate(shown):
        if position == gap:
            lines.append(f"    Note over {_ORCHESTRATION}: ... {skipped} messages left out ...")
        if step.at != clock:
            moment = f"{elapsed(step.elapsed)} ({format_timestamp(step.at)})"
            lines.append(f"    Note over {_ORCHESTRATION}: {_text(moment)}")
            clock = step.at
        other = ids[step.participant]
        source, target = ((_ORCHESTRATION, other) if step.direction == OUT
                          else (other, _ORCHESTRATION))
        tip = "x" if step.failed else ")" if step.one_way else ">>"
        arrow = ("--" if step.reply else "-") + tip
        lines.append(f"    {source}{arrow}{target}: {_text(_message(step))}")
    return lines


def _message(step: Interaction) -> str:
    words = [step.label]
    if step.task_id is not None:
        words.append(f"#{step.task_id}")
    if step.summary:
        words.append(preview(step.summary))
    return " ".join(words)


def _text(value: str) -> str:
    return _SPECIAL.sub(lambda match: f"#{ord(match.group())};", value)
