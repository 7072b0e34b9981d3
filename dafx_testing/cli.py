"""The ``dafx`` command: run, crash-sweep, replay and show Durable Functions apps in memory.

Commands::

    dafx run APP ORCHESTRATOR [--input JSON] [--event NAME=JSON]... [--advance 24h]
    dafx run APP --http POST /api/orchestrators/NAME [--body JSON]
    dafx sweep APP ORCHESTRATOR [--input JSON] [--reset M:F] [--effects M:F] [--once ACTIVITY...]
               [--no-prune] [--html OUT.html]
    dafx sweep APP ORCHESTRATOR --faults KIND... --fake-llm M:F [--expect survive] [--input JSON]
               [--isolation auto|fork|rerun] [--no-converge] [--html OUT.html]
    dafx replay --app APP FILES...
    dafx show FILES... [--format text|mermaid|html] [--html OUT.html]
    dafx --version

``run`` starts an instance in the simulator (or calls an HTTP starter and
follows the instance it returns), raises the events, moves the virtual clock
and prints the status and a timeline. ``sweep`` crashes the run at every
commit point and checks every recovery against the crash-free baseline; with
``--faults`` it fails each model call of the run each way instead, and judges
every run against the fault-free baseline.
``replay`` replays saved histories against the app's current code with the
host's non-determinism checks. ``show`` prints a saved history as a text
timeline, a Mermaid sequence diagram or a standalone HTML page.

Every command takes ``--json`` (one JSON document on stdout, see
:mod:`dafx_testing.reports.json_output`) and ``--debug`` (Python tracebacks instead of
one-line errors). Errors are one line, ``dafx: error: ...``, then a
``hint: ...`` line, on stderr.

Exit codes:

=====  =============================================================================
0      success: the instance completed; every crash recovered; no model fault
       broke the app; every history replays; the history was shown
1      the app misbehaved: the instance failed or was terminated; an invariant
       broke; a model fault broke a run (with ``--expect survive``: a run did not
       survive it); a history diverged or failed to replay; ``--http`` with no
       instance to follow got an HTTP status of 400 or more
2      bad usage or input: a bad option, an app that does not load, an unknown
       orchestrator, malformed JSON, an unreadable history file (or an
       unexpected error: rerun with ``--debug``)
3      ``run`` only: the instance is still running (waiting for an event or a timer)
130    interrupted (Ctrl-C)
141    stdout was closed early (e.g. piped into ``head``)
=====  =============================================================================
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import re
import shlex
import sys
import textwrap
import warnings
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NoReturn

from .checks.fault_sweep import FAULT_KINDS
from .checks.forks import ISOLATIONS
from .core.clock import DEFAULT_START, to_utc
from .core.crash import POINT_KINDS
from .core.errors import AppLoadError, DafxError, HistoryFormatError, UnknownFunctionError
from .core.payloads import loads_bounded
from .core.timeline import timeline
from .functions.app import HostJsonError
from .reports.agent_calls import conversations_in
from .reports.html_report import render_html, write_html
from .reports.json_output import (
    dumps,
    fault_sweep_json,
    instances_json,
    replay_json,
    replay_verdict,
    status_json,
    sweep_json,
)
from .reports.mermaid import sequence_diagram
from .reports.progress import ProgressBar
from .reports.recorded import RecordedInstance, read_instances
from .simulator import Simulator, replayer_for

EXIT_COMPLETED, EXIT_FAILED, EXIT_USAGE, EXIT_RUNNING = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 130, 141

APP_HELP = "function_app.py path, its folder, or package.module:app"
EXIT_CODES = {
    "run": "exit codes: 0 completed, 1 failed or terminated, 2 bad usage or input, 3 still "
           "running;\n  with --http and no instance to follow: 0 below HTTP 400, else 1",
    "sweep": "exit codes: 0 every crash recovered, 1 the app is wrong (an invariant broke after a "
             "crash,\n  or the crash-free baseline failed or was non-deterministic), 2 bad usage "
             "or input;\n  with --faults: 0 no run broken (--expect survive: every run survived), "
             "1 a run broken\n  (or not survived) or the fault-free baseline broken, 2 bad usage "
             "or input",
    "replay": "exit codes: 0 every history replays, 1 one diverged or failed, 2 bad usage or input "
              "(a history\n  or the app could not be read)",
    "show": "exit codes: 0 shown, 2 bad usage or a history file that cannot be read",
}
HINTS = {
    AppLoadError: f"APP is a {APP_HELP}; run dafx from your project's root so the app's own "
                  "imports resolve (--debug shows the import traceback)",
    HostJsonError: "fix it at that line and column: the Python worker fails to import "
                   "azure.durable_functions with it too (dafx reads the host.json beside APP "
                   "and, like the SDK, the one in the current directory)",
    UnknownFunctionError: "use one of the names listed: a function's name, or the name given to "
                          "its trigger (orchestration=..., activity=...)",
    HistoryFormatError: "a history file is what Simulator.save_history writes, or a JSON list of "
                        "host-format history events (EventType, EventId, Timestamp...)",
}

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


class UsageError(Exception):
    """A command line that cannot work, with the hint that fixes it."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


# --- argument types ---------------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """``"24h"``, ``"1d12h"``, ``"90s"``, ``"30m"`` -> timedelta."""
    compact = text.replace(" ", "").lower()
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}; use numbers with d/h/m/s units, e.g. 24h, 1d12h, 90s")
    try:
        return sum((timedelta(**{_UNITS[u]: float(n)}) for n, u in parts), timedelta())
    except OverflowError:
        raise argparse.ArgumentTypeError(
            f"duration {text!r} is too long: the virtual clock ends in the year "
            f"{datetime.max.year}") from None


def parse_start_time(text: str) -> datetime:
    """``--start-time``: an ISO-8601 instant (``Z`` or an offset; naive means UTC)."""
    try:
        return to_utc(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid start time {text!r}; use ISO-8601, e.g. 2025-01-01T09:00:00Z") from None


def parse_json(text: str, what: str) -> object:
    """Parse ``text`` as JSON; the error names ``what`` it was and where it broke."""
    try:
        return loads_bounded(text, allow_nan=False)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(
            f"{what} is not valid JSON ({exc.msg} at column {exc.colno}): {text!r}. Strings need "
            "JSON quotes, e.g. --input '\"hello\"'") from None
    except ValueError as exc:           # nested too deep, or NaN/Infinity
        raise argparse.ArgumentTypeError(f"{what} is not JSON the host accepts: {exc}") from None


def parse_event(text: str) -> tuple[str, object]:
    """``NAME=JSON`` -> (name, data)."""
    name, sep, payload = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(
            f"invalid --event {text!r}; use NAME=JSON, e.g. Approval=true")
    return name, parse_json(payload, f"the data of event {name!r}")


def parse_json_text(text: str) -> str:
    """Validate a ``--body`` and keep its text: it is sent as written."""
    parse_json(text, "--body")
    return text


def parse_callable(text: str) -> Callable[..., Any]:
    """Import ``module:function`` (the current directory is importable)."""
    module_name, sep, attr = text.partition(":")
    if not sep or not module_name or not attr:
        raise argparse.ArgumentTypeError(f"{text!r} is not MODULE:FUNCTION, e.g. fakes.shop:reset")
    _importable_cwd()
    try:
        function = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:     # ImportError, AttributeError, or the module's own code raising
        raise argparse.ArgumentTypeError(
            f"cannot load {text!r}: {type(exc).__name__}: {exc}") from None
    if not callable(function):
        raise argparse.ArgumentTypeError(f"{text!r} is not callable")
    return function


# --- the parser -------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, with a hint under its one-line error."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n"
                              f"hint: '{self.prog} --help' lists the options, with examples\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``dafx`` argument parser, with its four commands."""
    parser = _Parser(
        prog="dafx", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run Azure Durable Functions apps in memory, on a virtual clock.",
        epilog="examples:\n"
               "  dafx run function_app.py hello_orchestrator --input '\"Tokyo\"'\n"
               "  dafx sweep function_app.py place_order --input '{\"id\": 1}' --html sweep.html\n"
               "  dafx replay --app function_app.py histories/\n"
               "  dafx show histories/order-1.json --format mermaid\n\n"
               "exit codes: 0 success, 1 the app failed (instance failed, invariant broke, replay "
               "diverged),\n  2 bad usage or input, 3 (run) still running, 130 interrupted, "
               "141 output pipe closed\n"
               "'dafx COMMAND --help' shows each command's options, examples and exit codes.")
    parser.add_argument("--version", action="version", version=_version())
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true",
                        help="print one JSON document on stdout instead of text, for scripts")
    common.add_argument("--debug", action="store_true",
                        help="on errors, show the Python traceback instead of one line and a hint")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_run(commands, common)
    _add_sweep(commands, common)
    _add_replay(commands, common)
    _add_show(commands, common)
    return parser


def _command(commands: Any, common: argparse.ArgumentParser, name: str, summary: str,
             description: str, examples: Sequence[str]) -> argparse.ArgumentParser:
    epilog = "examples:\n" + "".join(f"  {line}\n" for line in examples) + "\n" + EXIT_CODES[name]
    command = commands.add_parser(name, help=summary, description=textwrap.fill(description, 80),
                                  epilog=epilog, parents=[common],
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    command.set_defaults(command_parser=command)     # for usage errors found after parsing
    return command


def _add_run(commands: Any, common: argparse.ArgumentParser) -> None:
    run = _command(
        commands, common, "run", "run one orchestration and print its timeline",
        "Start ORCHESTRATOR of APP in the simulator, raise events, advance the virtual clock, "
        "then print the status and a timeline. With --http, start it the way a user would, "
        "through one of the app's HTTP functions, and follow the instance it returns.",
        ["dafx run scenarios/content_approval/function_app.py content_approval \\",
         "    --input '{\"topic\": \"tides\"}' --event ApprovalDecision=true",
         "dafx run scenarios/content_approval/function_app.py content_approval --advance 24h",
         "dafx run scenarios/content_approval/function_app.py \\",
         "    --http POST /api/orchestrators/content_approval --body '{\"topic\": \"tides\"}'",
         "dafx run function_app.py hello --json | jq .runtimeStatus"])
    run.add_argument("app", metavar="APP", help=APP_HELP)
    run.add_argument("orchestrator", metavar="ORCHESTRATOR", nargs="?",
                     help="the orchestrator function's name (omit it with --http)")
    run.add_argument("--http", nargs=2, metavar=("METHOD", "PATH"),
                     help="start through an HTTP function instead, e.g. "
                          "--http POST /api/orchestrators/content_approval")
    run.add_argument("--body", type=parse_json_text, metavar="JSON",
                     help="JSON body of the --http request")
    _add_drive_arguments(run)
    run.add_argument("--seed", type=int, default=0, help="seed for generated ids (default 0)")
    run.add_argument("--start-time", type=parse_start_time, metavar="ISO-8601",
                     help="virtual start time, ISO-8601 (default 2025-01-01Z)")
    run.add_argument("--html", metavar="OUT.html",
                     help="also write a standalone HTML page of the run's instances")


def _add_sweep(commands: Any, common: argparse.ArgumentParser) -> None:
    sweep = _command(
        commands, common, "sweep",
        "crash the orchestration at every commit point, check it recovers",
        "Run ORCHESTRATOR of APP once without crashes, then once per commit point with a crash "
        "injected there, and compare every recovery with the baseline: statuses, outputs, "
        "entity states, history, the outside world (--effects). An activity that runs again "
        "after a crash (at-least-once delivery) is a failure only when that changes what is "
        "compared, or when it is named with --once; otherwise it is listed as information. "
        "A crash-free baseline that leaves an instance Failed or trips a check (non-determinism, "
        "a runaway orchestration) fails the sweep, with no crash runs. The scenario runs many "
        "times: give --reset so each run starts from a clean world. "
        "With --faults it makes no crashes: it fails model calls instead (a model-fault sweep). "
        "It runs the scenario once with no fault, numbering the model calls the fake model "
        "(--fake-llm) answers, then once per model call and fault kind with that one call "
        "failing that way, and prints each run's verdict as a matrix: survived (the baseline's "
        "statuses and outputs), failed cleanly (an instance failed, or waits for a retry timer), "
        "or broken (another output while nothing failed, an instance stuck with nothing to wake "
        "it, an entity left locked, a corrupt agent session, a changed outside world). A broken run fails the sweep "
        "(with --expect survive, any run that did not survive), and each failing run prints "
        "the FaultPlan that reproduces it.",
        ["dafx sweep scenarios/order_saga/function_app.py place_order \\",
         "    --input '{\"id\": \"o1\", \"item\": \"book\", \"amount\": 30}' \\",
         "    --idempotent reserve_inventory ship_order \\",
         "    --reset fakes.shop:reset --effects fakes.shop:snapshot --html sweep.html",
         "dafx sweep scenarios/order_saga/function_app.py place_order --kinds activity --json",
         "dafx sweep function_app.py draft --input '\"tides\"' --advance 1h \\",
         "    --faults rate_limit timeout --fake-llm fakes.model:writer --expect survive"])
    sweep.add_argument("app", metavar="APP", help=APP_HELP)
    sweep.add_argument("orchestrator", metavar="ORCHESTRATOR",
                       help="the orchestrator function's name")
    _add_drive_arguments(sweep)
    sweep.add_argument("--once", nargs="+", default=[], metavar="ACTIVITY",
                       help="activities whose repeated execution is a failure even when it "
                            "leaves no observable difference (e.g. it sends an email)")
    sweep.add_argument("--idempotent", nargs="+", default=[], metavar="ACTIVITY",
                       help="activities expected to run again: left out of the information "
                            "line on harmless re-runs")
    sweep.add_argument("--pairs", action="store_true", help="also crash at every pair of points")
    sweep.add_argument("--kinds", nargs="+", metavar="KIND",
                       help="only these kinds of points: dequeue episode activity entity "
                            "after-commit duplicate")
    sweep.add_argument("--reset", type=parse_callable, metavar="MODULE:FUNCTION",
                       help="called before every run to put the outside world (your fakes) back "
                            "in its initial state, e.g. fakes.shop:reset")
    sweep.add_argument("--effects", type=parse_callable, metavar="MODULE:FUNCTION",
                       help="returns a JSON-able snapshot of the outside world, which must match "
                            "the baseline's after every crash, e.g. fakes.shop:snapshot")
    sweep.add_argument("--isolation", choices=ISOLATIONS, default=None,
                       help="fork each crash run off one more run (fast), rerun the scenario from "
                            "the start for each (for apps with state outside the process: files, "
                            "a database), or auto (default): fork on Linux for scenarios of 150 worker "
                            "steps or more, else rerun")
    sweep.add_argument("--no-prune", action="store_true",
                       help="run every crash run, including those the sweep can decide without "
                            "a run because they provably converge (the verdicts are the same)")
    sweep.add_argument("--seed", type=int, default=0, help="seed for generated ids (default 0)")
    sweep.add_argument("--html", metavar="OUT.html",
                       help="also write a standalone HTML report: the verdict, every failure "
                            "with expected and actual (with --faults: the verdict matrix and "
                            "each failing run's FaultPlan), and the baseline's timelines")
    faults = sweep.add_argument_group("model-fault sweeps", textwrap.fill(
        "fail model calls instead of crashing; --once, --idempotent, --pairs and --kinds are "
        "for crash sweeps; --isolation makes the fault runs the same way (fork: off one more "
        "run, just before each model call)", 76))
    faults.add_argument("--faults", nargs="+", metavar="KIND",
                        help="fail each model call of the run with each of these kinds, one "
                             f"run per call and kind: {' '.join(FAULT_KINDS)}, or all")
    faults.add_argument("--fake-llm", type=parse_callable, metavar="MODULE:FUNCTION",
                        help="needed with --faults: returns the scripted dafx_testing.llm.FakeLLM "
                             "that answers the app's model calls (opened before the app loads; "
                             "its script is restored for every run), e.g. fakes.model:writer")
    faults.add_argument("--expect", choices=("survive",),
                        help="survive: also fail runs that only failed cleanly (for apps that "
                             "promise to retry model faults)")
    faults.add_argument("--no-converge", action="store_true",
                        help="run every fault run to the end, even once its state is the "
                             "baseline's (the verdicts are the same; for scenarios that read "
                             "how many model calls were made)")


def _add_replay(commands: Any, common: argparse.ArgumentParser) -> None:
    replay = _command(
        commands, common, "replay", "replay saved histories against the current code",
        "Replay each history (our history files, DTFx event lists, or status-API answers with "
        "historyEvents) through APP's current orchestrator code, with the host's "
        "non-determinism checks.",
        ["dafx replay --app scenarios/versioning/function_app_v2.py scenarios/versioning/histories",
         "dafx replay --app function_app.py order-1.json order-2.json --json"])
    replay.add_argument("--app", required=True, metavar="APP", help=APP_HELP)
    replay.add_argument("files", nargs="+", metavar="FILES",
                        help="history files, or folders replayed file by file (*.json)")


def _add_show(commands: Any, common: argparse.ArgumentParser) -> None:
    show = _command(
        commands, common, "show", "show saved histories: text timeline, Mermaid diagram, HTML page",
        "Show each history (a file written by Simulator.save_history, or a JSON list of "
        "host-format events; folders are read for *.json) as a text timeline, a Mermaid "
        "sequence diagram, or a standalone HTML page with every instance, its timeline in "
        "virtual time and the agent conversations its history recorded. A history file holds "
        "one orchestration's events: the messages it sent to agents and the replies it got are "
        "shown, the agents' own stored state is not in the file.",
        ["dafx show scenarios/versioning/histories/shipped.json",
         "dafx show scenarios/versioning/histories/shipped.json --format mermaid > shipped.mmd",
         "dafx show scenarios/versioning/histories --html histories.html",
         "dafx show shipped.json --json | jq '.instances[0].runtimeStatus'"])
    show.add_argument("files", nargs="+", metavar="FILES", help="history files, or folders of them")
    show.add_argument("--format", choices=("text", "mermaid", "html"),
                      help="text (default), mermaid (one instance), or html (printed, or written "
                           "with --html)")
    show.add_argument("--html", metavar="OUT.html", help="write the HTML page to this file")


def _add_drive_arguments(parser: argparse.ArgumentParser) -> None:
    """The input, events and clock moves that drive one run (``run`` and ``sweep``)."""
    parser.add_argument("--input", type=lambda t: parse_json(t, "--input"), default=None,
                        metavar="JSON", help="orchestration input as JSON")
    parser.add_argument("--event", type=parse_event, action="append", default=[],
                        metavar="NAME=JSON", help="raise an external event (repeatable, in order)")
    parser.add_argument("--advance", type=parse_duration, metavar="DURATION",
                        help="then move the virtual clock forward, e.g. 24h")


def _version() -> str:
    try:
        ours = version("dafx-testing")
    except PackageNotFoundError:
        ours = "(not installed)"
    try:
        sdk = f"azure-functions-durable {version('azure-functions-durable')}"
    except PackageNotFoundError:
        sdk = "azure-functions-durable missing"
    return f"dafx {ours} ({sdk}, Python {sys.version.split()[0]})"


# --- running a command ------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``dafx`` command line; returns the exit code (see the module docstring)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(arguments)
    if args.command is None:
        parser.error("give a command: run, sweep, replay or show")
    if args.command == "run":
        _check_run_arguments(args.command_parser, args)
    args.command_line = shlex.join(["dafx", *arguments])
    try:
        _check_before_work(args)
        return {"run": _run, "sweep": _sweep, "replay": _replay, "show": _show}[args.command](args)
    except KeyboardInterrupt:
        print("dafx: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:    # the reader went away (dafx show ... | head): stop quietly
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        if args.debug:
            raise
        _print_error(exc)
        return EXIT_USAGE


def _print_error(exc: Exception) -> None:
    """``dafx: error: ...`` and a ``hint: ...`` for it."""
    if isinstance(exc, UsageError):
        message, hint = str(exc), exc.hint
    elif isinstance(exc, DafxError):
        message = str(exc)
        hint = next((HINTS[kind] for kind in type(exc).__mro__ if kind in HINTS),
                    "rerun with --debug to see where it was raised")
    else:
        message = f"unexpected {type(exc).__name__}: {exc}"
        hint = ("this came from the app's code or from dafx itself; rerun with --debug for the "
                "traceback")
    print(f"dafx: error: {message}\nhint: {hint}", file=sys.stderr)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so Python's flush at exit does not fail on the closed pipe."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):      # not a real file (captured output): nothing to flush
        pass


def _check_run_arguments(run: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.http is None and args.orchestrator is None:
        run.error("give the ORCHESTRATOR to start, or --http METHOD PATH")
    if args.http is not None and (args.orchestrator is not None or args.input is not None):
        run.error("--http starts the instance through an HTTP function: drop ORCHESTRATOR "
                  "and --input, and send the input with --body")
    if args.body is not None and args.http is None:
        run.error("--body is the body of an --http request; use --input with ORCHESTRATOR")


def _check_before_work(args: argparse.Namespace) -> None:
    """What only shows late (a clock past the year 9999, an output that cannot be written), checked first.

    A sweep must not run for minutes and then fail to write its report.
    """
    advance = getattr(args, "advance", None)
    if advance is not None:
        start = getattr(args, "start_time", None) or DEFAULT_START
        try:
            start + advance
        except OverflowError:
            raise UsageError(f"--advance {advance} moves the virtual clock from {start.isoformat()} "
                             f"past the year {datetime.max.year}",
                             "give a shorter duration, e.g. --advance 24h") from None
    html = getattr(args, "html", None)
    if isinstance(html, str):
        _check_output(html, "--html")


def _check_output(path: str, option: str) -> None:
    """A file ``option`` can write (missing folders are made): not a folder, not under a file."""
    target = Path(path)
    if not path or path.endswith(("/", os.sep)) or target.is_dir():
        raise UsageError(f"{option} {path!r} is a folder; {option} takes the file to write",
                         f"name a file, e.g. {option} {Path(path or '.') / 'report.html'}")
    folder = next((p for p in target.parents if p.exists()), Path("."))
    if not folder.is_dir():
        raise UsageError(f"{option} {path!r}: {folder} is a file, so no folder can be made there",
                         f"name a file in a folder, e.g. {option} report.html")
    if not os.access(folder, os.W_OK | os.X_OK) or target.exists() and not os.access(target, os.W_OK):
        raise UsageError(f"{option} {path!r}: cannot write there (permission denied)",
                         f"name a file in a folder you can write to, e.g. {option} report.html")


def _importable_cwd() -> None:
    """Let the app and ``--reset``/``--effects`` import the project's own modules."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def _prepare() -> None:
    """Quiet the SDK's buffered-event warning; make the current directory importable."""
    warnings.filterwarnings("ignore", message="Potential duplicate Task completion")
    _importable_cwd()


def _wrote(path: str, what: str) -> None:
    print(f"dafx: wrote {what} to {path}", file=sys.stderr)


# --- dafx run ---------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    _prepare()
    sim = Simulator(args.app, seed=args.seed, start_time=args.start_time)
    _quiet_workers(sim)
    exchange = None
    if args.http is not None:
        method, path = args.http
        exchange = _call_http(sim, method, path, args.body)
        if not args.json:
            _print_exchange(exchange)
        instance_id = exchange.get("instanceId")
        if instance_id is None:
            if args.json:
                print(dumps(status_json(None, sim.now, exchange)))
            ok = "error" not in exchange and exchange["status"] < 400
            return EXIT_COMPLETED if ok else EXIT_FAILED
    else:
        instance_id = sim.start_new(args.orchestrator, args.input)
    sim.run_until_idle()
    for name, data in args.event:
        if sim.get_status(instance_id).runtime_status in ("Completed", "Failed", "Terminated"):
            print(f"dafx: instance finished before event {name!r} was raised", file=sys.stderr)
            break
        sim.raise_event(instance_id, name, data)
        sim.run_until_idle()
    if args.advance:
        sim.advance(args.advance)
    status = sim.get_status(instance_id)
    if args.html:
        write_html(args.html, title=f"dafx run {status.name}", simulator=sim,
                   context={"app": args.app, "command": args.command_line})
        _wrote(args.html, "the HTML report")
    if args.json:
        print(dumps(status_json(status, sim.now, exchange)))
    else:
        _print_status(status, sim.now)
    if status.runtime_status == "Completed":
        return EXIT_COMPLETED
    if status.runtime_status in ("Failed", "Terminated"):
        return EXIT_FAILED
    return EXIT_RUNNING


def _quiet_workers(sim: Any) -> None:
    """A durabletask worker logs every work item at INFO on its own handler: the run's report
    says what happened, so only its warnings and errors are shown."""
    for worker in getattr(sim.index, "workers", ()):
        worker._logger.setLevel(logging.WARNING)


def _call_http(sim: Any, method: str, path: str, body: str | None) -> dict[str, Any]:
    """One request to the app: the exchange, with the instance id a check-status answer names."""
    # Imported here, not at the top: it imports azure.durable_functions, which parses
    # ./host.json, and --version and --help must work beside a broken one.
    from .functions.http import HttpTestClient

    exchange: dict[str, Any] = {"method": method.upper(), "path": path}
    headers = {"Content-Type": "application/json"} if body is not None else None
    try:
        response = HttpTestClient(sim).request(method, path, data=body, headers=headers)
    except DafxError:
        raise
    except Exception as exc:   # the app's code failed: the host would answer 500
        return dict(exchange, status=500, error=f"{type(exc).__name__}: {exc}")
    try:
        payload = response.json()
    except ValueError:
        payload = None
    follows = isinstance(payload, dict) and "id" in payload and "statusQueryGetUri" in payload
    if not follows:
        sim.run_until_idle()
    return dict(exchange, status=response.status_code, note=response.note,
                body=response.text if response.get_body() else None,
                instanceId=payload["id"] if follows else None)


def _print_exchange(exchange: dict[str, Any]) -> None:
    if "error" in exchange:
        print(f"dafx: {exchange['method']} {exchange['path']} raised {exchange['error']} "
              "(the host answers 500)", file=sys.stderr)
        return
    print(f"HTTP {exchange['status']} {exchange['method']} {exchange['path']}")
    if exchange["note"]:
        print(f"note       {exchange['note']}")
    if exchange["body"] is not None:
        print(exchange["body"])
    print()


def _print_fields(fields: Sequence[tuple[str, Any]]) -> None:
    """``name       value`` lines; None values are left out, others shown as JSON unless text."""
    for name, value in fields:
        if value is not None:
            print(f"{name:<10} {value}")


def _print_status(status: Any, now: datetime) -> None:
    _print_fields([
        ("instance", status.instance_id), ("status", status.runtime_status),
        ("custom", _json_or_none(status.custom_status)), ("output", _json_or_none(status.output)),
        ("waiting", (f"for event(s): {', '.join(status.waiting_for)}"
                     if status.waiting_for else None)),
        ("clock", now.isoformat())])
    print()
    print(timeline(status.history))


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


# --- dafx sweep -------------------------------------------------------------------------------


def _sweep(args: argparse.Namespace) -> int:
    if args.faults is not None:
        return _fault_sweep(args)
    for given, option in ((args.fake_llm, "--fake-llm"), (args.expect, "--expect"),
                          (args.no_converge or None, "--no-converge")):
        if given is not None:
            raise UsageError(f"{option} is for model-fault sweeps, and no --faults were given",
                             "add --faults KIND... (e.g. --faults rate_limit timeout) to fail "
                             "model calls instead of crashing")
    unknown = set(args.kinds or ()) - set(POINT_KINDS)
    if unknown:
        raise UsageError(f"unknown --kinds {', '.join(sorted(unknown))}; valid: "
                         f"{', '.join(POINT_KINDS)}",
                         "name one or more kinds, e.g. --kinds activity episode")
    both = sorted({n.lower() for n in args.once} & {n.lower() for n in args.idempotent})
    if both:
        raise UsageError(f"{', '.join(both)} given to both --once and --idempotent",
                         "--once makes a re-run a failure, --idempotent expects re-runs: "
                         "name each activity in one of them")
    _prepare()
    baseline: list[Simulator] = []     # the crash-free run: its instances go into --html

    def scenario(sim: Simulator) -> None:
        if sim.crash_log.plan is None and not baseline:
            baseline.append(sim)
        _drive(sim, args)

    bar = ProgressBar("sweep", "crash runs")
    try:
        report = Simulator(args.app, seed=args.seed).crash_sweep(
            scenario, pairs=args.pairs, idempotent=args.idempotent, kinds=args.kinds,
            effects=args.effects, progress=bar, isolation=args.isolation or "auto",
            once=args.once, prune=not args.no_prune)
    finally:
        bar.close()
    return _sweep_result(args, report, baseline, sweep_json, "sweep", "crash-free", "")


def _drive(sim: Simulator, args: argparse.Namespace) -> None:
    """One run of a sweep's scenario: reset the world, start, raise the events, advance."""
    if args.reset is not None:
        args.reset()
    instance_id = sim.start_new(args.orchestrator, args.input, instance_id="sweep")
    sim.run_until_idle()
    for name, data in args.event:
        sim.raise_event(instance_id, name, data)
        sim.run_until_idle()
    if args.advance:
        sim.advance(args.advance)


def _fault_sweep(args: argparse.Namespace) -> int:
    """``dafx sweep --faults``: the same scenario, each model call failed each way."""
    crash_only = [option for option, given in (
        ("--once", args.once), ("--idempotent", args.idempotent), ("--pairs", args.pairs),
        ("--kinds", args.kinds is not None), ("--no-prune", args.no_prune)) if given]
    if crash_only:
        raise UsageError(f"{', '.join(crash_only)}: for crash sweeps; --faults makes a "
                         "model-fault sweep, which makes no crashes",
                         "drop them, or drop --faults to crash-sweep")
    kinds = [kind for given in args.faults
             for kind in (FAULT_KINDS if given.lower() == "all" else [given])]
    unknown = [kind for kind in kinds if kind not in FAULT_KINDS]
    if unknown:
        raise UsageError(f"unknown --faults {', '.join(unknown)}; valid: {', '.join(FAULT_KINDS)}"
                         " (or all)",
                         "name one or more fault kinds, e.g. --faults rate_limit timeout")
    if args.fake_llm is None:
        raise UsageError("--faults needs the fake model that answers the app's model calls: "
                         "give --fake-llm MODULE:FUNCTION",
                         "FUNCTION returns a scripted dafx_testing.llm.FakeLLM, e.g. "
                         "fake = FakeLLM(); fake.agent('Writer').reply('A draft.'); return fake")
    fake = args.fake_llm()
    if not all(hasattr(fake, name) for name in ("__enter__", "__exit__", "checkpoint", "clock")):
        raise UsageError(f"--fake-llm returned {type(fake).__name__}, not a FakeLLM",
                         "return a scripted dafx_testing.llm.FakeLLM (not entered: dafx opens "
                         "it), e.g. fake = FakeLLM(); fake.reply('...'); return fake")
    _prepare()
    current: list[Simulator] = []      # the run being driven: the fake stamps its virtual time
    baseline: list[Simulator] = []     # the fault-free run: its instances go into --html

    def scenario(sim: Simulator) -> None:
        current[:] = [sim]
        if not baseline and (sim.model_calls is None or not sim.model_calls.plan):
            baseline.append(sim)
        _drive(sim, args)

    with fake:                         # before the app loads: clients built at import see it
        sim = Simulator(args.app, seed=args.seed)
        fake.clock = lambda: (current[0] if current else sim).now
        report = sim.fault_sweep(scenario, faults=kinds, expect=args.expect,
                                 effects=args.effects, isolation=args.isolation or "auto",
                                 converge=not args.no_converge)
    return _sweep_result(args, report, baseline, fault_sweep_json, "fault_sweep", "fault-free",
                         " --faults")


def _sweep_result(args: argparse.Namespace, report: Any, baseline: list[Simulator],
                  to_json: Callable[[Any], Any], panel: str, clean: str, title: str) -> int:
    """A sweep's report, as --html, --json or text ask; exit 0 when it is ok, 1 when not.

    ``panel`` is the HTML report's keyword for the sweep; ``clean`` names its baseline run.
    """
    if args.html:
        write_html(args.html, title=f"dafx sweep {args.orchestrator}{title}",
                   simulator=baseline[0] if baseline else None,
                   context={"app": args.app, "command": args.command_line,
                            "instances shown": f"the {clean} baseline run"},
                   **{panel: report})
        _wrote(args.html, "the HTML report")
    if args.json:
        print(dumps(to_json(report)))
    else:
        print(report.explain())
    return EXIT_COMPLETED if report.ok else EXIT_FAILED


# --- dafx replay ------------------------------------------------------------------------------


def _replay(args: argparse.Namespace) -> int:
    _prepare()
    replayer = replayer_for(args.app)
    results: list[Any] = []
    unreadable: list[tuple[str, str]] = []
    for source in args.files:
        try:
            batch = (replayer.replay_dir(source) if Path(source).is_dir()
                     else [replayer.replay(source)])
        except HistoryFormatError as exc:
            unreadable.append((source, str(exc)))
            if not args.json:
                print(f"ERROR     {exc}")
            continue
        results += batch
        if not args.json:
            for result in batch:
                print(f"{replay_verdict(result).upper():<9} {result.source}  "
                      f"{result.orchestrator}  {result.events} events")
                details = result.explain().splitlines()[1:]
                if details:
                    print("\n".join(details))
    verdicts = [replay_verdict(result) for result in results]
    if args.json:
        print(dumps(replay_json(results, unreadable)))
    else:
        counts = {what: verdicts.count(what) for what in ("ok", "diverged", "failed")}
        counts["unreadable"] = len(unreadable)
        print(f"{len(results)} {'history' if len(results) == 1 else 'histories'} replayed: "
              + ", ".join(f"{n} {what}" for what, n in counts.items()
                          if n or what in ("ok", "diverged")))
    if unreadable:
        print(f"hint: {HINTS[HistoryFormatError]}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_COMPLETED if all(v == "ok" for v in verdicts) else EXIT_FAILED


# --- dafx show --------------------------------------------------------------------------------


def _show(args: argparse.Namespace) -> int:
    form = args.format or ("html" if args.html else "text")
    if args.json and args.format:
        raise UsageError(f"--json and --format {args.format} are two outputs; pick one",
                         "--json prints the histories as one JSON document for scripts")
    if args.html and form != "html":
        raise UsageError(f"--html writes an HTML page, but --format is {form}",
                         "drop --format, or use --format html")
    instances = read_instances(args.files)
    if args.json:
        print(dumps(instances_json(instances)))
    elif form == "mermaid":
        if len(instances) != 1:
            raise UsageError(
                f"--format mermaid draws one instance; FILES hold {len(instances)} "
                f"({', '.join(i.source or i.instance_id for i in instances[:3])}"
                f"{', ...' if len(instances) > 3 else ''})",
                "give one history file, or use --format html to see several")
        instance = instances[0]
        print(sequence_diagram(instance.history, title=f"{instance.name} ({instance.instance_id})"))
    elif form == "html":
        title = f"dafx show {' '.join(args.files)}"
        context = {"command": args.command_line}
        if args.html:
            write_html(args.html, title=title, instances=instances, context=context)
            _wrote(args.html, f"{len(instances)} instance(s)")
        else:
            sys.stdout.write(render_html(title=title, instances=instances, context=context))
    else:
        _print_instances(instances)
    return EXIT_COMPLETED


def _print_instances(instances: Sequence[RecordedInstance]) -> None:
    for number, instance in enumerate(instances):
        if number:
            print()
        _print_fields([
            ("instance", instance.instance_id), ("name", instance.name),
            ("status", instance.runtime_status), ("input", _json_or_none(instance.input)),
            ("output", _json_or_none(instance.output)), ("file", instance.source),
            ("events", len(instance.history))])
        print()
        print(timeline(instance.history))
        for session in conversations_in(instance.history):
            print()
            print(session.transcript())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
