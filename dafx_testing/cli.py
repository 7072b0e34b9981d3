"""The ``dafx`` command.

``dafx run APP ORCHESTRATOR`` starts an instance in the simulator, raises the
given events, optionally moves the virtual clock, and prints the instance's
status and a timeline of its history.

Exit codes: 0 the instance completed; 1 it failed or was terminated; 2 bad
usage or input; 3 it is still running (waiting for events or timers).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import warnings
from datetime import timedelta
from typing import List, Optional, Sequence, Tuple

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
               "exit codes: 0 completed, 1 failed/terminated, 2 usage error, 3 still running",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("app", help="function_app.py path, its folder, or pkg.module:app")
    run.add_argument("orchestrator", help="the orchestrator function's name")
    run.add_argument("--input", type=lambda t: parse_json(t, "--input"), default=None,
                     help="orchestration input as JSON")
    run.add_argument("--event", type=parse_event, action="append", default=[],
                     metavar="NAME=JSON", help="raise an external event (repeatable, in order)")
    run.add_argument("--advance", type=parse_duration, metavar="DURATION",
                     help="then move the virtual clock forward, e.g. 24h")
    run.add_argument("--seed", type=int, default=0, help="seed for generated ids (default 0)")
    run.add_argument("--start-time", help="virtual start time, ISO-8601 (default 2025-01-01Z)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    from .errors import DafxError
    from .simulator import Simulator

    # The SDK warns when an event arrives before its wait; the host buffers it. Noise here.
    warnings.filterwarnings("ignore", message="Potential duplicate Task completion")
    if os.getcwd() not in sys.path:   # let the app import project-local modules (fakes/...)
        sys.path.insert(0, os.getcwd())
    try:
        sim = Simulator(args.app, seed=args.seed, start_time=args.start_time)
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
