#!/usr/bin/env python3
"""Time `imgfront --version` and `imgfront --help` against `podman --version`: the start-up a user waits for.

Each command runs `--rounds` times, alternating; the medians and the ratio to podman's are printed as JSON,
written to bench/out/startup.json, and appended to bench/RESULTS.md as a section with --record. imgfront runs
as `python -m imgfront` with this tree first on the path.

    .venv/bin/python bench/bench_startup.py [--rounds 15] [--record]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import record  # noqa: E402


def _seconds(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": os.fspath(ROOT)}
    podman = shutil.which("podman")
    commands = {
        "imgfront --version": [sys.executable, "-m", "imgfront", "--version"],
        "imgfront --help": [sys.executable, "-m", "imgfront", "--help"],
    }
    if podman:
        commands["podman --version"] = [podman, "--version"]
    for command in commands.values():  # warm the page cache and the bytecode once
        _seconds(command, env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.rounds):
        for name, command in commands.items():
            times[name].append(_seconds(command, env))
    medians = {name: round(statistics.median(t), 3) for name, t in times.items()}
    result: dict[str, object] = {"rounds": args.rounds, "median_seconds": medians}
    ratios: dict[str, float] = {}
    if "podman --version" in medians:
        reference = medians["podman --version"]
        ratios = {name: round(m / reference, 2) for name, m in medians.items() if name.startswith("imgfront")}
        result["ratio_to_podman_version"] = ratios
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "startup.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if args.record:
        record(
            [
                "\n## Start-up: `imgfront --version` and `--help` vs `podman --version`",
                f"{time.strftime('%Y-%m-%d')}; `python -m imgfront` with this tree first on the path; "
                f"median of {args.rounds} rounds in one run.\n",
                "| command | median (s) | ratio to `podman --version` |",
                "| --- | --- | --- |",
                *(f"| `{name}` | {m} | {ratios.get(name, '')} |" for name, m in medians.items()),
            ]
        )


if __name__ == "__main__":
    main()
