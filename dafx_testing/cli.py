"""The ``dafx`` command.

``dafx run APP ORCHESTRATOR`` starts an instance in the simulator, raises the
given events, optionally moves the virtual clock, and prints the instance's
status and a timeline of its history. ``dafx run APP --http POST /api/...``
starts it the way a user would instead, through one of the app's HTTP
functions: it prints the HTTP status and body, then follows the instance whose
check-status payload the function returned.

Exit codes: 0 the instance completed; 1 it failed or was terminated; 2 bad
usage or input; 3 it is still running (waiting for events or timers). With
``--http`` and no instance to follow: 0 for an HTTP status below 400, else 1.

``dafx sweep APP ORCHESTRATOR`` crashes the run at every commit point and
checks each recovery against the crash-free baseline: exit 0 when every crash
recovered, 1 when an invariant broke, 2 for bad usage.

``dafx replay --app APP FILES...`` replays saved histories (files, or folders
of ``*.json``) against the app's current code with the host's checks: exit 0
when all replay, 1 when any diverges or fails, 2 for unreadable histories.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
import warnings
from datetime import timedelta
from typing import Optional, Sequence, Tuple, Union

EXIT_COMPLETED, EXIT_FAILED, EXIT_USAGE, EXIT_RUNNING = 0, 1, 2, 3

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(text: str) -> timedelta:
    """``"24h"``, ``"1d12h"``, ``"90s"``, ``"30m"`` -> timedelta."""
    compact = text.replace(" ", "").lower()
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}; use numbers with d/h/m/s units, e.g. 24h, 1d12h, 90s")
    return sum((timedelta(**{_UNITS[u]: float(n)}) for n, u in parts), timedelta())


def parse_json(text: str, what: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(
            f"{what} is not valid JSON ({exc.msg} at column {exc.colno}): {text!r}. Strings need "
            "JSON quotes, e.g. --input '\"hello\"'") from None


def parse_event(text: str) -> Tuple[str, object]:
    name, sep, payload = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"invalid --event {text!r}; use NAME=JSON, e.g. Approval=true")
    return name, parse_json(payload, f"the data of event {name!r}")


def parse_json_text(text: str) -> str:
    """Validate a ``--json`` body and keep its text: it is sent as written."""
    parse_json(text, "--json")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dafx", description="Run Azure Durable Functions apps in memory, on a virtual clock.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run", help="run one orchestration and print its timeline",
        description="Start ORCHESTRATOR of APP in the simulator, raise events, advance the "
                    "clock, then print the status and a timeline.",
        epilog="example: dafx run scenarios/content_approval/function_app.py content_approval "
               "--input '{\"topic\": \"tides\"}' --event ApprovalDecision=true\n"
               "         dafx run scenarios/content_approval/function_app.py "
               "--http POST /api/orchestrators/content_approval --json '{\"topic\": \"tides\"}'\n"
               "exit codes: 0 completed, 1 failed/terminated, 2 usage error, 3 still running; "
               "--http without an instance: 0 below HTTP 400, else 1",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("app", help="function_app.py path, its folder, or pkg.module:app")
    run.add_argument("orchestrator", nargs="?",
                     help="the orchestrator function's name (omit it with --http)")
    run.add_argument("--http", nargs=2, metavar=("METHOD", "PATH"),
                     help="start through an HTTP function instead, e.g. "
                          "--http POST /api/orchestrators/content_approval")
    run.add_argument("--json", type=parse_json_text, metavar="BODY",
                     help="JSON body of the --http request")
    _add_drive_arguments(run)
    run.add_argument("--seed", type=int, default=0, help="seed for generated ids (default 0)")
    run.add_argument("--start-time", help="virtual start time, ISO-8601 (default 2025-01-01Z)")

    sweep = commands.add_parser(
        "sweep", help="crash the orchestration at every commit point and check it recovers",
        description="Run ORCHESTRATOR of APP once without crashes, then once per commit point "
                    "with a crash injected there, and compare every recovery with the baseline: "
                    "statuses, outputs, entity states, history, repeated activities.",
        epilog="example: dafx sweep scenarios/order_saga/function_app.py place_order "
               "--input '{\"id\": \"o1\", \"item\": \"book\", \"amount\": 30}' "
               "--idempotent reserve_inventory ship_order --reset fakes.shop:reset "
               "--effects fakes.shop:snapshot\n"
               "The scenario runs many times: give --reset so each run starts from a clean world.\n"
               "exit codes: 0 every crash recovered, 1 an invariant broke, 2 usage error",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sweep.add_argument("app", help="function_app.py path, its folder, or pkg.module:app")
    sweep.add_argument("orchestrator", help="the orchestrator function's name")
    _add_drive_arguments(sweep)
    sweep.add_argument("--idempotent", nargs="+", default=[], metavar="ACTIVITY",
                       help="activities whose repeated execution is not a failure")
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
    sweep.add_argument("--seed", type=int, default=0, help="seed for generated ids (default 0)")

    replay = commands.add_parser(
        "replay", help="replay saved histories against the current code",
        description="Replay each history (our history files, DTFx event lists, or status-API "
                    "answers with historyEvents) through APP's current orchestrator code, with "
                    "the host's non-determinism checks.",
        epilog="example: dafx replay --app scenarios/versioning/function_app_v2.py "
               "scenarios/versioning/histories\n"
               "exit codes: 0 every history replays, 1 one diverged or failed, 2 a history or "
               "the app could not be read",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    replay.add_argument("--app", required=True,
                        help="function_app.py path, its folder, or pkg.module:app")
    replay.add_argument("files", nargs="+", metavar="FILES",
                        help="history files, or folders replayed file by file (*.json)")
    return parser


def _add_drive_arguments(parser: argparse.ArgumentParser) -> None:
    """The input, events and clock moves that drive one run (``run`` and ``sweep``)."""
    parser.add_argument("--input", type=lambda t: parse_json(t, "--input"), default=None,
                        help="orchestration input as JSON")
    parser.add_argument("--event", type=parse_event, action="append", default=[],
                        metavar="NAME=JSON", help="raise an external event (repeatable, in order)")
    parser.add_argument("--advance", type=parse_duration, metavar="DURATION",
                        help="then move the virtual clock forward, e.g. 24h")


def _prepare() -> None:
    """Quiet the SDK's buffered-event warning and let the app import project-local modules."""
    warnings.filterwarnings("ignore", message="Potential duplicate Task completion")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def parse_callable(text: str):
    """Import ``module:function`` (the current directory is importable)."""
    module_name, sep, attr = text.partition(":")
    if not sep or not module_name or not attr:
        raise argparse.ArgumentTypeError(f"{text!r} is not MODULE:FUNCTION, e.g. fakes.shop:reset")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        function = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise argparse.ArgumentTypeError(f"cannot load {text!r}: {exc}") from None
    if not callable(function):
        raise argparse.ArgumentTypeError(f"{text!r} is not callable")
    return function


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "sweep":
        return _sweep(args)
    if args.command == "replay":
        return _replay(args)
    if args.http is None and args.orchestrator is None:
        parser.error("give the ORCHESTRATOR to start, or --http METHOD PATH")
    if args.http is not None and (args.orchestrator is not None or args.input is not None):
        parser.error("--http starts the instance through an HTTP function: drop ORCHESTRATOR "
                     "and --input, and send the input with --json")
    if args.json is not None and args.http is None:
        parser.error("--json is the body of an --http request; use --input with ORCHESTRATOR")
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    from .errors import DafxError
    from .simulator import Simulator

    _prepare()
    try:
        sim = Simulator(args.app, seed=args.seed, start_time=args.start_time)
        if args.http is not None:
            answer = _start_over_http(sim, *args.http, args.json)
            if isinstance(answer, int):
                return answer
            instance_id = answer
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
    except DafxError as exc:
        print(f"dafx: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    status = sim.get_status(instance_id)
    _print_status(status, sim.now)
    if status.runtime_status == "Completed":
        return EXIT_COMPLETED
    if status.runtime_status in ("Failed", "Terminated"):
        return EXIT_FAILED
    return EXIT_RUNNING


def _sweep(args: argparse.Namespace) -> int:
    from .crash import POINT_KINDS
    from .errors import DafxError
    from .simulator import Simulator

    unknown = set(args.kinds or ()) - set(POINT_KINDS)
    if unknown:
        print(f"dafx: error: unknown --kinds {', '.join(sorted(unknown))}; valid: "
              f"{', '.join(POINT_KINDS)}", file=sys.stderr)
        return EXIT_USAGE
    _prepare()

    def scenario(sim: Simulator) -> None:
        if args.reset is not None:
            args.reset()
        instance_id = sim.start_new(args.orchestrator, args.input, instance_id="sweep")
        sim.run_until_idle()
        for name, data in args.event:
            sim.raise_event(instance_id, name, data)
            sim.run_until_idle()
        if args.advance:
            sim.advance(args.advance)

    def progress(done: int, planned: int) -> None:
        if sys.stderr.isatty():
            print(f"\rsweep: {done}/{planned} crash runs", end="", file=sys.stderr, flush=True)

    try:
        sim = Simulator(args.app, seed=args.seed)
        report = sim.crash_sweep(scenario, pairs=args.pairs, idempotent=args.idempotent,
                                 kinds=args.kinds, effects=args.effects, progress=progress)
    except DafxError as exc:
        print(f"dafx: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(report.explain())
    return EXIT_COMPLETED if report.ok else EXIT_FAILED


def _replay(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .errors import DafxError, HistoryFormatError
    from .replayer import Replayer

    if os.getcwd() not in sys.path:   # let the app import project-local modules
        sys.path.insert(0, os.getcwd())
    try:
        replayer = Replayer(args.app)
    except DafxError as exc:
        print(f"dafx: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    counts = {"ok": 0, "diverged": 0, "failed": 0, "unreadable": 0}
    for source in args.files:
        try:
            results = (replayer.replay_dir(source) if Path(source).is_dir()
                       else [replayer.replay(source)])
        except HistoryFormatError as exc:
            counts["unreadable"] += 1
            print(f"ERROR     {exc}")
            continue
        for result in results:
            verdict = ("ok" if result.ok else "diverged" if result.divergence else "failed")
            counts[verdict] += 1
            print(f"{verdict.upper():<9} {result.source}  {result.orchestrator}  "
                  f"{result.events} events")
            details = result.explain().splitlines()[1:]
            if details:
                print("\n".join(details))
    total = counts["ok"] + counts["diverged"] + counts["failed"]
    print(f"{total} {'history' if total == 1 else 'histories'} replayed: "
          + ", ".join(f"{n} {what}" for what, n in counts.items() if n or what in ("ok", "diverged")))
    if counts["unreadable"]:
        return EXIT_USAGE
    return EXIT_FAILED if counts["diverged"] or counts["failed"] else EXIT_COMPLETED


def _start_over_http(sim, method: str, path: str, body: Optional[str]) -> Union[str, int]:
    """Send the request, print status and body; the instance id to follow, or an exit code."""
    from .errors import DafxError
    from .http import HttpTestClient

    headers = {"Content-Type": "application/json"} if body is not None else None
    try:
        response = HttpTestClient(sim).request(method, path, data=body, headers=headers)
    except DafxError:
        raise
    except Exception as exc:   # the app's code failed: the host would answer 500
        print(f"dafx: {method.upper()} {path} raised {type(exc).__name__}: {exc} "
              "(the host answers 500)", file=sys.stderr)
        return EXIT_FAILED
    print(f"HTTP {response.status_code} {method.upper()} {path}")
    if response.note:
        print(f"note       {response.note}")
    if response.get_body():
        print(response.text)
    print()
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and "id" in payload and "statusQueryGetUri" in payload:
        return payload["id"]
    sim.run_until_idle()
    return EXIT_COMPLETED if response.status_code < 400 else EXIT_FAILED


def _print_status(status, now) -> None:
    from .report import timeline

    print(f"instance   {status.instance_id}")
    print(f"status     {status.runtime_status}")
    if status.custom_status is not None:
        print(f"custom     {json.dumps(status.custom_status)}")
    if status.output is not None:
        print(f"output     {json.dumps(status.output)}")
    if status.waiting_for:
        print(f"waiting    for event(s): {', '.join(status.waiting_for)}")
    print(f"clock      {now.isoformat()}")
    print()
    print(timeline(status.history))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
