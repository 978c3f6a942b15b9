"""`python -m bench`: how much agenthost adds on top of the model.

Starts a fixed-timing fake upstream, an `agenthost serve` against it and a load generator,
each in its own process, and measures the same load through agenthost and straight at the
upstream in one run. Prints one table and the target checks; writes everything as JSON.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench import report
from bench.oidc import Signer
from bench.procs import ROOT, LoadGenerator, Monitor, Pinning, upstream
from bench.runs import Plan, run_scaleout, run_single

SCENARIOS = ("overhead", "streaming", "streams1000", "credentials", "growth")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short durations (CI smoke)")
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"comma list of {', '.join(SCENARIOS)}"
    )
    parser.add_argument("--mode", choices=("single", "scaleout"), default="single")
    parser.add_argument("--concurrency", default=None, help="comma list (default 1,16,64,256)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    parser.add_argument("--seconds", type=float, default=None, help="override cell duration")
    parser.add_argument("--open-streams", type=int, default=None, help="streams1000: how many")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    parser.add_argument(
        "--tracing", action="store_true", help="export a trace of every request (OTLP/HTTP)"
    )
    parser.add_argument(
        "--oidc", action="store_true", help="call with an OIDC bearer token, not an API key"
    )
    parser.add_argument(
        "--no-metrics", action="store_true", help="Prometheus metrics off (they are on by default)"
    )
    parser.add_argument(
        "--postgres",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
        help="scaleout: server URL (a fresh database is created on it and dropped after)",
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/9", help="scaleout: Redis URL")
    args = parser.parse_args(argv)
    unknown = set(args.scenarios.split(",")) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return args


def build_plan(args: argparse.Namespace) -> Plan:
    concurrency = (
        [int(c) for c in args.concurrency.split(",")] if args.concurrency else [1, 16, 64, 256]
    )
    return Plan(
        scenarios=args.scenarios.split(","),
        concurrency=concurrency,
        overhead_seconds=args.seconds or (1.0 if args.quick else 3.0),
        streaming_seconds=args.seconds or (2.0 if args.quick else 4.0),
        open_streams=args.open_streams or (100 if args.quick else 1000),
        seed_responses=2_000 if args.quick else 100_000,
        seed_transactions=20_000 if args.quick else 1_000_000,
        growth_streaming_concurrency=min(max(concurrency), 256),
        metrics=not args.no_metrics,
        tracing=args.tracing,
        oidc=args.oidc,
    )


def _meta(args: argparse.Namespace, pin: Pinning, plan: Plan) -> dict[str, Any]:
    return {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "mode": args.mode,
        "quick": args.quick,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "pinning": pin.describe(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "plan": plan.as_dict(),
    }


def _warn_if_busy() -> None:
    load = os.getloadavg()[0]
    if load > 0.5 * (os.cpu_count() or 1):
        print(f"warning: load average {load:.1f} before starting: other work competes for CPU")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = build_plan(args)
    pin = Pinning.choose(enabled=not args.no_pin and args.mode == "single")
    out = args.out or ROOT / "bench" / "results" / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    results: dict[str, Any] = {"meta": _meta(args, pin, plan)}
    print(f"agenthost bench: {args.mode} mode, {pin.describe()}", flush=True)
    _warn_if_busy()
    with tempfile.TemporaryDirectory(prefix="agenthost-bench-") as scratch:
        signer = Signer(Path(scratch))  # the fake upstream also publishes OIDC keys
        with upstream(pin.tools, signer.jwks_path) as (upstream_url, upstream_pid):
            load = LoadGenerator(pin.tools)
            try:
                port = int(upstream_url.rsplit(":", 1)[1].split("/")[0])
                direct = Monitor(upstream_pid)
                if args.mode == "single":
                    results.update(
                        run_single(
                            plan, Path(scratch), upstream_url, port, direct, load, pin, signer
                        )
                    )
                else:
                    results.update(
                        run_scaleout(
                            plan, Path(scratch), upstream_url, load, args.postgres, args.redis
                        )
                    )
            finally:
                load.close()
    _finish(results, out)
    return 0


def _finish(results: dict[str, Any], out: Path) -> None:
    paired = report.pair(results.get("rows", []))
    results["paired"] = paired
    results["checks"] = report.checks(paired, results.get("streams", []))
    print()
    print("cells show `agenthost | direct`; added = agenthost - direct (TTFT when streaming)")
    print(report.table(paired))
    if results.get("streams"):
        print()
        print(report.streams_table(results["streams"]))
    if results.get("scaleout"):
        print()
        print(report.scaleout_table(results["scaleout"]))
    if results.get("credentials"):
        print()
        print("API key against OIDC bearer token, one server, alternating cells at c=1:")
        print(report.credentials_table(results["credentials"]))
    if results["checks"]:
        print()
        print(report.checks_table(results["checks"]))
    results["meta"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(f"\n{results['meta']['pinning']}; figures are bounded by that split.")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
