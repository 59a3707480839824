"""The benchmarks: each script times imgfront against the tool a user would otherwise use, in one run."""

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def record(lines: list[str]) -> None:
    """Append a bench's section of lines to bench/RESULTS.md (`--record`)."""
    with RESULTS.open("a") as results:
        results.write("\n".join(lines) + "\n")
