"""Standalone HTML reports: instances, their timelines, agent conversations, crash and fault sweeps.

A report is one ``.html`` file that opens anywhere: its styles and its one
small script are inlined, and it loads nothing from the network (no fonts, no
CDN). It reads like the Durable Task Scheduler dashboard: a summary, a table of
instances, then for each instance its input and output, a timeline of what it
waited on (activities, timers, entity and agent calls, in virtual time) and
its history, event by event; then the agent conversations; and, for a crash
sweep, the verdict, every failing schedule with expected against actual, the
duplicated effects and the repeated model calls. For a model-fault sweep, the
verdict, the matrix of model calls × fault kinds with a coloured cell per run (its
verdict and what the fault cost: model calls repeated, virtual time spent), each
failing run with what broke and the ``FaultPlan`` that reproduces it, and the
baseline's model calls.

Three entry points::

    from dafx_testing.reports.html_report import write_html, write_index, PageLink, page_file_name

    write_html("run.html", simulator=sim)                        # everything one simulator holds
    write_html("sweep.html", sweep=report, simulator=baseline)   # a sweep and its baseline run
    write_html("faults.html", fault_sweep=report, simulator=baseline)   # a model-fault sweep
    write_html("saved.html", instances=read_instances(["histories/"]))

    # one page per failing test, and an index beside them (what a pytest plugin does)
    name = page_file_name(item.nodeid)                           # "tests_test_x.py__test_y.html"
    write_html(out / name, title=item.nodeid, simulator=sim,
               context={"seed": str(seed), "reproduce": command_line})
    write_index(out / "index.html", [PageLink(item.nodeid, name, ok=False, summary="Failed")])

``instances`` takes anything :meth:`RecordedInstance.of` accepts
(``InstanceStatus`` objects, history documents, event lists). Agent
conversations come from ``sessions`` if given, else from the ``simulator``'s
agent entities (the full stored state), else from what the instances'
histories recorded of their agent calls.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from .. import __version__
from ..agents.sessions import AgentMessage, AgentSession, AgentTurn
from ..checks.fault_sweep import FaultRun, FaultSweepReport
from ..checks.sweep import DuplicatedEffect, SweepFailure, SweepReport
from ..core.crash import CommitPoint
from ..core.history import format_timestamp
from ..core.timeline import elapsed
from .agent_calls import conversations_in
from .interactions import CLIENT, IN, OUT, Interaction, read_interactions
from .recorded import RecordedInstance

__all__ = ["render_html", "write_html", "write_index", "PageLink", "page_file_name"]

MAX_ROWS = 400
"""History rows shown per instance; longer histories keep both ends and say what was left out."""

_INLINE_PAYLOAD = 160
_FROM_HISTORY_NOTE = (
    "These conversations are read from the orchestration histories: each message an "
    "orchestration sent to an agent and the reply it received, with the tool calls the reply "
    "carried. A history file does not hold the agents' own stored state (turns from other "
    "callers, the agent's instructions); a report written from a live simulator shows that.")
# Problems that compare with the baseline, as the crash sweep words them.
_COMPARISON = re.compile(r"^(?P<what>.+?): expected (?P<expected>.+?), got (?P<actual>.+)$", re.S)
_DUPLICATE = re.compile(r"^(?P<what>\S+) ran (?P<actual>\d+) times \(baseline (?P<expected>\d+)\)")


@dataclass(frozen=True)
class PageLink:
    """One entry of :func:`write_index`: a page, whether it passed, and a line about it."""

    title: str
    href: str
    ok: bool
    summary: str = ""


def render_html(*, title: str = "dafx report", instances: Iterable[Any] = (),
                sessions: Iterable[AgentSession] | None = None,
                sweep: SweepReport | None = None, simulator: Any = None,
                context: Mapping[str, str] | None = None, failure: str | None = None,
                fault_sweep: FaultSweepReport | None = None) -> str:
    """The report page as a string.

    Args:
        title: the page's heading (a test id, a command line...).
        instances: instances to show (``InstanceStatus``, history documents, event lists).
        sessions: agent conversations to show (default: see the module docstring).
        sweep: a crash sweep's report, shown before the instances.
        fault_sweep: a model-fault sweep's report, shown before the instances.
        simulator: show every instance and agent session it holds, after ``instances``.
        context: facts shown under the title, in order (app, seed, reproduction line...).
        failure: a failing test's message, shown first (as text, never markup).
    """
    shown = [RecordedInstance.of(i) for i in instances]
    note = None
    if simulator is not None:
        shown += [RecordedInstance.of(status) for status in simulator.list_instances()]
        if sessions is None:
            sessions = [s for agent in simulator.agents for s in simulator.agent_sessions(agent)]
    if sessions is None:
        sessions = [s for instance in shown for s in conversations_in(instance.history)]
        note = _FROM_HISTORY_NOTE if sessions else None
    sessions = list(sessions)
    body = [_header(title, context or {}), "<main>",
            _summary(shown, sessions, sweep, fault_sweep)]
    if failure:
        body.append('<section class="panel" id="failure"><h2>Failure</h2>'
                    f"<pre>{escape(failure)}</pre></section>")
    if sweep is not None:
        body.append(_sweep(sweep))
    if fault_sweep is not None:
        body.append(_fault_sweep(fault_sweep))
    if shown:
        body.append(_instance_table(shown))
        body += [_instance(n, instance) for n, instance in enumerate(shown, 1)]
    if sessions:
        body.append(_conversations(sessions, note))
    if not shown and sweep is None and fault_sweep is None:
        body.append('<section class="panel"><p class="muted">Nothing to show: no instances.</p>'
                    "</section>")
    body += ["</main>", _footer()]
    return _page(title, "\n".join(body))


def write_html(path: os.PathLike[str] | str, **report: Any) -> Path:
    """Write :func:`render_html` (same keyword arguments) to ``path``; parent folders are made."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html(**report), encoding="utf-8")
    return target


def write_index(path: os.PathLike[str] | str, pages: Iterable[PageLink],
                title: str = "dafx reports") -> Path:
    """Write an index page linking report pages (hrefs relative to the index's folder)."""
    links = list(pages)
    failed = sum(1 for link in links if not link.ok)
    items = "\n".join(
        f'<li><span class="badge {"ok" if link.ok else "bad"}">{"passed" if link.ok else "failed"}'
        f'</span> <a href="{escape(link.href)}">{escape(link.title)}</a> '
        f'<span class="muted">{escape(link.summary)}</span></li>' for link in links)
    verdict = f"{len(links)} page(s), {failed} failing"
    body = (f'{_header(title, {})}\n<main><section class="panel"><h2>{escape(verdict)}</h2>'
            f'<ul class="index">{items}</ul></section></main>\n{_footer()}')
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(_page(title, body), encoding="utf-8")
    return target


def page_file_name(title: str) -> str:
    """A safe, readable file name for a page about ``title`` (e.g. a pytest node id)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", title.replace("::", "__")).strip("._") or "report"
    return stem[:150] + ".html"


# --- the page --------------------------------------------------------------------------------


def _page(title: str, body: str) -> str:
    assets = resources.files("dafx_testing.reports") / "report_assets"
    css = (assets / "report.css").read_text(encoding="utf-8")
    script = (assets / "report.js").read_text(encoding="utf-8")
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{escape(title)}</title>\n<style>\n{css}</style>\n</head>\n<body>\n{body}\n"
            f"<script>\n{script}</script>\n</body>\n</html>\n")


def _header(title: str, context: Mapping[str, str]) -> str:
    facts = _facts(context.items())
    return (f"<header><h1>{escape(title)}</h1><p class=\"muted\">dafx-testing report · all times "
            f"are the simulator's virtual clock</p>{facts}</header>")


def _footer() -> str:
    return (f"<footer>Written by dafx-testing {escape(__version__)}. This page is self-contained: "
            "it loads nothing from the network.</footer>")


def _summary(instances: list[RecordedInstance], sessions: list[AgentSession],
             sweep: SweepReport | None, faults: FaultSweepReport | None = None) -> str:
    cards = []
    if sweep is not None:
        verdict = ("all crashes recovered" if sweep.ok
                   else "baseline broken" if sweep.baseline_problems
                   else f"{len(sweep.failures)} failing schedule(s)")
        cards.append(_card("#sweep", "crash sweep", verdict, "ok" if sweep.ok else "bad"))
    if faults is not None:
        verdict = ("no failing run" if faults.ok
                   else "baseline broken" if faults.baseline_problems
                   else f"{len(faults.failures)} failing run(s)")
        cards.append(_card("#fault-sweep", "fault sweep", verdict, "ok" if faults.ok else "bad"))
    if instances:
        cards.append(_card("#instances", str(len(instances)), "instance(s)"))
        statuses: dict[str, int] = {}
        for instance in instances:
            statuses[instance.runtime_status] = statuses.get(instance.runtime_status, 0) + 1
        cards += [_card("#instances", str(n), status, status.lower())
                  for status, n in statuses.items()]
    if sessions:
        cards.append(_card("#conversations", str(len(sessions)), "agent conversation(s)"))
    return f'<nav class="summary">{"".join(cards)}</nav>'


def _card(href: str, big: str, text: str, badge: str = "") -> str:
    label = f'<span class="badge {badge}">{escape(text)}</span>' if badge else escape(text)
    return f'<a class="card" href="{href}"><b>{escape(big)}</b>{label}</a>'


def _facts(items: Iterable[tuple[str, Any]]) -> str:
    rows = "".join(f"<dt>{escape(name)}</dt><dd>{escape(str(value))}</dd>" for name, value in items)
    return f'<dl class="facts">{rows}</dl>' if rows else ""


def _table(headers: Sequence[str], rows: Iterable[str], css: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return (f'<table class="{css}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _cells(*values: Any) -> str:
    return "".join(f"<td>{escape(str(v))}</td>" for v in values)


def _payload(text: str) -> str:
    if len(text) <= _INLINE_PAYLOAD:
        return escape(text)
    return (f"<details><summary>{escape(text[:_INLINE_PAYLOAD - 3])}...</summary>"
            f"<pre>{escape(text)}</pre></details>")


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


# --- crash sweeps ----------------------------------------------------------------------------


def _sweep_head(anchor: str, title: str, ok: bool, verdict: str, counts: str,
                baseline_problems: list[str], plain_run: str) -> list[str]:
    """A sweep panel's opening: its verdict line, then what broke its baseline, if anything."""
    parts = [f'<section class="panel" id="{anchor}"><h2>{title}</h2>',
             f'<p class="verdict {"ok" if ok else "bad"}">'
             f"{escape(verdict)}: {escape(counts)}</p>"]
    if baseline_problems:
        parts += [f"<h3>Baseline problems ({len(baseline_problems)})</h3>",
                  '<ul class="baseline">'
                  + "".join(f"<li><pre>{escape(p)}</pre></li>" for p in baseline_problems)
                  + "</ul>",
                  f'<p class="muted">Fix the baseline first: run the scenario on a plain '
                  f"{plain_run} until it passes, then sweep again.</p>"]
    return parts


def _sweep(report: SweepReport) -> str:
    counts = report.counts()
    verdict = ("All invariants held" if report.ok
               else f"{len(report.failures)} failing crash schedule(s)")
    if report.baseline_problems:
        verdict, counts = ("The crash-free baseline run is broken",
                           "no crash runs were made, since each would be compared with it")
    parts = _sweep_head("sweep", "Crash sweep", report.ok, verdict, counts,
                        report.baseline_problems, "Simulator")
    if report.failures:
        parts.append(f"<h3>Failures ({len(report.failures)})</h3>")
        parts += [_failure(n, failure) for n, failure in enumerate(report.failures, 1)]
    if report.duplicated_effects:
        rows = [f'<tr class="{"failed" if d.failed else ""}">'
                + _cells(d.name, d.expected, d.actual, _points(d.crashes), _rerun_verdict(d))
                + "</tr>" for d in report.duplicated_effects]
        parts += [f"<h3>Duplicated effects ({len(rows)})</h3>",
                  _table(["work", "baseline runs", "runs", "crash at", "verdict"], rows)]
    if report.repeated_model_calls:
        rows = ["<tr>" + _cells(_points(r.crashes), r.expected, r.actual, r.actual - r.expected)
                + "</tr>" for r in report.repeated_model_calls]
        parts += [f"<h3>Repeated model calls ({len(rows)})</h3>",
                  '<p class="muted">A crash lost an agent\'s work and the model was asked again: '
                  "a cost, not a correctness problem.</p>",
                  _table(["crash at", "baseline calls", "calls", "repeated"], rows)]
    parts += [_commit_points(report), "</section>"]
    return "\n".join(parts)


def _rerun_verdict(effect: DuplicatedEffect) -> str:
    """The verdict column of a re-run: tolerated, information or failure (and why)."""
    if effect.idempotent:
        return "tolerated: declared idempotent"
    if effect.harmless:
        return "information: no observable difference"
    return "failure: declared once" if effect.once else "failure: make it idempotent"


def _failure(number: int, failure: SweepFailure) -> str:
    comparisons, other = [], []
    for problem in failure.problems:
        match = _DUPLICATE.match(problem)
        if match:
            comparisons.append((match["what"], f"{match['expected']} run(s)",
                                f"{match['actual']} run(s)"))
            continue
        match = _COMPARISON.match(problem)
        if match:
            comparisons.append((match["what"], match["expected"], match["actual"]))
        else:
            other.append(problem)
    parts = [f'<article class="failure" id="failure-{number}">',
             f"<h4>Crash at {escape(_points(failure.crashes))}</h4>"]
    if comparisons:
        parts.append(_table(["what", "expected (baseline)", "actual (after the crash)"],
                            ["<tr>" + _cells(*row) + "</tr>" for row in comparisons]))
    if other:
        parts.append("<ul>" + "".join(f"<li>{escape(p)}</li>" for p in other) + "</ul>")
    reproduce = f"CrashPlan(at={[p.index for p in failure.crashes]})"
    parts.append(f"<p>Reproduce: <code>{escape(reproduce)}</code></p>")
    for instance_id, text in failure.timelines.items():
        parts.append(f"<details><summary>Recovered history of {escape(instance_id)}</summary>"
                     f"<pre>{escape(text)}</pre></details>")
    parts.append("</article>")
    return "\n".join(parts)


def _points(points: Sequence[CommitPoint]) -> str:
    return " and ".join(str(p) for p in points)


def _commit_points(report: SweepReport) -> str:
    failing = {p.index for failure in report.failures for p in failure.crashes}
    rows = [f'<tr class="{"failed" if p.index in failing else ""}">'
            + _cells(f"#{p.index}", p.kind, p.name, p.target, p.work,
                     "failed" if p.index in failing else "recovered") + "</tr>"
            for p in report.points]
    return (f"<details><summary>Commit points ({len(rows)})</summary>"
            + _table(["point", "kind", "function", "target", "work", "crash here"], rows)
            + "</details>")


# --- model-fault sweeps -----------------------------------------------------------------------


def _fault_sweep(report: FaultSweepReport) -> str:
    """The verdict, the matrix (a coloured cell per run), each failing run, the baseline's calls."""
    if report.baseline_problems:
        verdict, counts = ("The fault-free baseline run is broken",
                           "no fault runs were made, since each would be compared with it")
    else:
        verdict = "No failing run" if report.ok else f"{len(report.failures)} failing run(s)"
        counts = report.counts() + f", seed {report.seed}"
    if report.expect is not None:
        counts += f", expect={report.expect!r}"
    parts = _sweep_head("fault-sweep", "Model-fault sweep", report.ok, verdict, counts,
                        report.baseline_problems, "Simulator with the fake model")
    if report.baseline_problems:
        return "\n".join([*parts, "</section>"])
    parts += ["<h3>Verdicts</h3>",
              '<p class="muted">A row per model call of the baseline, a column per fault kind: '
              "each cell is the run that failed that call that way. <b>survived</b>: the "
              "baseline's statuses and outputs; <b>failed cleanly</b>: an instance failed or "
              "waits for a retry; <b>broken</b>: another output while nothing failed, a stuck "
              "instance, a locked entity, a corrupt agent session, a changed outside world. "
              "What the fault cost beyond the baseline's "
              f"{report.baseline_model_calls} model call(s): the calls repeated, and the "
              "virtual time the slowest instance took longer. ✗ marks a failing run.</p>",
              _fault_matrix(report)]
    if report.failures:
        parts.append(f"<h3>Failing runs ({len(report.failures)})</h3>")
        parts += [_fault_run(run) for run in report.failures]
    rows = ["<tr>" + _cells(f"#{call.number}", call.agent or "no agent", call.caller or "",
                            "yes" if call.stream else "no") + "</tr>" for call in report.calls]
    parts += [f"<details><summary>Model calls of the baseline ({len(rows)})</summary>"
              + _table(["call", "agent", "made by", "streamed"], rows) + "</details>",
              "</section>"]
    return "\n".join(parts)


def _fault_matrix(report: FaultSweepReport) -> str:
    cells = {(run.call.number, run.fault): run for run in report.runs}
    rows = []
    for call in report.calls:
        row = [f"<th>{escape(call.describe())}</th>"]
        for fault in report.faults:
            run = cells.get((call.number, fault))
            row.append('<td class="muted">-</td>' if run is None else _fault_cell(run))
        rows.append(f"<tr>{''.join(row)}</tr>")
    return _table(["call", *report.faults], rows, "fault-matrix")


def _fault_cell(run: FaultRun) -> str:
    css = "verdict-cell " + run.verdict.replace(" ", "-") + ("" if run.ok else " failing")
    text = escape(run.verdict) + ("" if run.ok else " ✗")
    if not run.ok:
        text = f'<a href="#{_fault_run_id(run)}">{text}</a>'
    cost = run.cost()
    note = f'<span class="cost">{escape(cost)}</span>' if cost else ""
    title = escape(f"{run.plan!r}: {run.model_calls} model call(s)"
                   + (f"; {cost}" if cost else ""), quote=True)
    return f'<td class="{css}" title="{title}">{text} {note}</td>'


def _fault_run_id(run: FaultRun) -> str:
    return f"fault-run-{run.call.number}-{run.fault}"


def _fault_run(run: FaultRun) -> str:
    missed = " (expected to survive)" if run.verdict == "failed cleanly" else ""
    parts = [f'<article class="failure" id="{_fault_run_id(run)}">',
             f"<h4>Call {escape(run.call.describe())} × {escape(run.fault)}: "
             f"{escape(run.verdict)}{escape(missed)}</h4>",
             "<ul>" + "".join(f"<li>{escape(reason)}</li>" for reason in run.reasons) + "</ul>"]
    if run.cost():
        parts.append(f'<p class="muted">Cost: {run.model_calls} model call(s) (baseline '
                     f"{run.model_calls - run.extra_model_calls}); {escape(run.cost())}</p>")
    parts += [f"<p>Reproduce: <code>{escape(repr(run.plan))}</code></p>", "</article>"]
    return "\n".join(parts)


# --- instances -------------------------------------------------------------------------------


def _instance_table(instances: list[RecordedInstance]) -> str:
    rows = []
    for number, instance in enumerate(instances, 1):
        steps = read_interactions(instance.history)
        started = format_timestamp(steps[0].at) if steps else ""
        took = elapsed(steps[-1].elapsed) if steps else ""
        search = " ".join([instance.instance_id, instance.name, instance.runtime_status,
                           instance.source or ""]).lower()
        rows.append(f'<tr data-search="{escape(search)}"><td><a href="#instance-{number}">'
                    f"{escape(instance.instance_id)}</a></td><td>{escape(instance.name)}</td>"
                    f"<td>{_badge(instance.runtime_status)}</td>"
                    + _cells(len(instance.history), started, took, instance.source or "") + "</tr>")
    return ('<section class="panel" id="instances"><h2>Instances</h2>'
            '<input type="search" id="instance-filter" placeholder="Filter by id, name or status" '
            'aria-label="Filter instances">'
            + _table(["instance id", "orchestrator", "status", "events", "started", "duration",
                      "source"], rows, "instances") + "</section>")


def _badge(status: str) -> str:
    return f'<span class="badge {escape(status.lower())}">{escape(status)}</span>'


def _instance(number: int, instance: RecordedInstance) -> str:
    steps = read_interactions(instance.history)
    facts = [("instance id", instance.instance_id), ("orchestrator", instance.name),
             ("status", instance.runtime_status)]
    facts += [(name, _json_text(value)) for name, value in
              (("input", instance.input), ("output", instance.output),
               ("custom status", instance.custom_status)) if value is not None]
    if steps:
        facts += [("started", format_timestamp(steps[0].at)),
                  ("last event",
                   f"{format_timestamp(steps[-1].at)} ({elapsed(steps[-1].elapsed)})")]
    if instance.source:
        facts.append(("source", instance.source))
    search = " ".join([instance.instance_id, instance.name, instance.runtime_status,
                       instance.source or ""]).lower()
    return (f'<section class="panel instance" id="instance-{number}" '
            f'data-search="{escape(search)}">'
            f"<h2>{escape(instance.name)} <span class=\"muted mono\">{escape(instance.instance_id)}"
            f"</span> {_badge(instance.runtime_status)}</h2>{_facts(facts)}"
            f"<h3>Timeline</h3>{_gantt(steps)}<h3>History ({len(instance.history)} events)</h3>"
            f"{_history(steps)}</section>")


def _gantt(steps: list[Interaction]) -> str:
    """A bar from each call to its answer; a point for each event and one-way message."""
    if not steps:
        return '<p class="muted">No events.</p>'
    end = steps[-1].elapsed
    total = end or timedelta(seconds=1)
    answers = {s.task_id: s for s in steps if s.reply}
    rows = []
    for step in steps:
        if step.direction == OUT and step.task_id is not None and not step.one_way:
            answer = answers.get(step.task_id)
            css = ["bar", step.participant.kind]
            css += ["pending"] if answer is None else ["failed"] if answer.failed else []
            until = answer.elapsed if answer else end
            span = (f"{elapsed(step.elapsed)} to {elapsed(until)}"
                    + ("" if answer else " (no answer in the history)"))
            rows.append(_bar(f"{step.participant.label} #{step.task_id}", span, step.elapsed,
                             until, total, " ".join(css)))
        elif step.one_way or (step.direction == IN and step.participant.kind == CLIENT):
            label = (step.label if step.participant.kind == CLIENT
                     else f"{step.participant.label}: {step.label}")
            rows.append(_bar(label, elapsed(step.elapsed), step.elapsed, step.elapsed, total,
                             "bar point"))
    axis = (f'<div class="axis"><span></span><span><span>{elapsed(timedelta(0))}</span>'
            f"<span>{elapsed(end)}</span></span></div>")
    return f'<div class="gantt">{"".join(rows[:MAX_ROWS])}{axis}</div>'


def _bar(label: str, span: str, start: timedelta, end: timedelta, total: timedelta,
         css: str) -> str:
    left = 100 * (start / total)
    width = 100 * ((end - start) / total)
    return (f'<div class="row"><div class="label" title="{escape(label)}">{escape(label)}</div>'
            f'<div class="track"><div class="{css}" style="left:{left:.2f}%;width:{width:.2f}%" '
            f'title="{escape(label)}: {escape(span)}"></div></div></div>')


def _history(steps: list[Interaction]) -> str:
    shown: list[Interaction | None] = list(steps)
    if len(steps) > MAX_ROWS:
        head = MAX_ROWS // 2
        shown = [*steps[:head], None, *steps[len(steps) - (MAX_ROWS - head):]]
    rows = []
    for step in shown:
        if step is None:
            rows.append(f'<tr class="skipped"><td colspan="8">... {len(steps) - MAX_ROWS} events '
                        "left out ...</td></tr>")
            continue
        css = f"{step.direction}{' failed' if step.failed else ''}"
        task = "" if step.task_id is None else f"#{step.task_id}"
        rows.append(f'<tr class="{css}">'
                    + _cells(step.index, format_timestamp(step.at), elapsed(step.elapsed),
                             step.episode, step.event.name, step.participant.label)
                    + f'<td class="what">{escape(" ".join(filter(None, [step.label, task])))}</td>'
                    f'<td class="payload">{_payload(step.summary)}</td></tr>')
    return _table(["#", "virtual time", "elapsed", "episode", "event", "with", "what", "payload"],
                  rows, "history")


# --- agent conversations ---------------------------------------------------------------------


def _conversations(sessions: list[AgentSession], note: str | None) -> str:
    parts = ['<section class="panel" id="conversations"><h2>Agent conversations</h2>']
    if note:
        parts.append(f'<p class="muted">{escape(note)}</p>')
    for session in sessions:
        callers = sorted({t.orchestration_id for t in session.turns if t.orchestration_id})
        facts = [("session", session.key), ("turns", len(session.turns))]
        if callers:
            facts.append(("called by", ", ".join(callers)))
        parts.append(f'<article class="session"><h3>{escape(session.agent)}</h3>{_facts(facts)}'
                     + "".join(_turn(turn) for turn in session.turns) + "</article>")
    parts.append("</section>")
    return "\n".join(parts)


def _turn(turn: AgentTurn) -> str:
    messages = [_message(m) for m in turn.request + (turn.response or ())]
    if turn.response is None:
        messages.append('<div class="msg pending">no response yet</div>')
    if turn.usage:     # input_token_count in a run's response, inputTokenCount in stored state
        tokens = ", ".join(f"{re.sub(r'(_?[Tt]oken)?_?[Cc]ount$', '', k)} {v}"
                           for k, v in turn.usage.items() if isinstance(v, (int, float)))
        messages.append(f'<div class="muted">tokens: {escape(tokens)}</div>')
    return f'<div class="turn">{"".join(messages)}</div>'


def _message(message: AgentMessage) -> str:
    who = escape(message.author if message.role == "assistant" and message.author else message.role)
    bubbles = []
    for content in message.contents or ({"$type": "text", "text": message.text},):
        kind = content.get("$type")
        if kind == "text":
            css, text = message.role, content.get("text") or ""
        elif kind == "functionCall":
            arguments = _json_text(content.get("arguments"))
            css, text = "tool", f"calls {content.get('name')}({arguments})"
        elif kind == "functionResult":
            result = _json_text(content.get("result"))
            css, text = "tool", f"{content.get('callId')} returned {result}"
        elif kind == "error":
            code = f" {content['errorCode']}" if content.get("errorCode") else ""
            css, text = "error", f"error{code}: {content.get('message')}"
        else:
            continue
        bubbles.append(f'<div class="msg {escape(css)}"><span class="who">{who}</span>'
                       f"{escape(text)}</div>")
    return "".join(bubbles)
