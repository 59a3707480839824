"""The build plan: a plain value saying which platform goes to which node, and why."""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imgfront.errors import UsageError
from imgfront.model import NodeInfo, Preference
from imgfront.platforms import Platform, host_platforms


class Mode(enum.Enum):
    NATIVE = "native"
    EMULATED = "emulated"


@dataclass(frozen=True)
class Assignment:
    platform: Platform
    node: str
    mode: Mode

    @property
    def label(self) -> str:
        return f"{self.platform}@{self.node}"


@dataclass(frozen=True)
class Plan:
    assignments: tuple[Assignment, ...]

    def describe(self) -> list[str]:
        return [f"{a.platform} -> {a.node} ({a.mode.value})" for a in self.assignments]

    def to_json(self) -> list[dict[str, Any]]:
        return [{"platform": str(a.platform), "node": a.node, "mode": a.mode.value} for a in self.assignments]


class UnbuildablePlatforms(UsageError):
    """No node can build these platforms, natively or through emulation."""

    def __init__(self, platforms: Sequence[Platform], hint: str | None = None) -> None:
        names = ", ".join(str(p) for p in platforms)
        super().__init__(f"no node can build {names}: it is neither native nor emulated", hint)
        self.platforms = tuple(platforms)


class CpuLacksVariant(UsageError):
    """A variant of this host's own architecture that its CPU cannot run: qemu-user does not emulate the host."""

    def __init__(self, platforms: Sequence[Platform], host: Sequence[Platform]) -> None:
        names = ", ".join(str(p) for p in platforms)
        best = max(host, key=lambda p: p.level)
        super().__init__(
            f"no node runs {names}: this host's CPU runs {best} at most, and emulation is for other architectures",
            hint=f"build {best} (or a lower variant) here, or add a node whose CPU has it with --node",
        )
        self.platforms = tuple(platforms)


def runs_natively(node: NodeInfo, platform: Platform, host: Sequence[Platform]) -> bool:
    """Whether the node's own CPU runs the platform. A node behind a unix socket runs on this host, so its CPU
    is this host's: `host`, every level of it (an engine reports only its architecture's baseline)."""
    cpus = [*node.native, *(host if node.address.startswith("unix://") else ())]
    return any(platform.runs_on(cpu) for cpu in cpus)


def make_plan(
    platforms: Sequence[Platform],
    nodes: Sequence[NodeInfo],
    preferences: Mapping[str, Preference] | None = None,
    host: Sequence[Platform] | None = None,
) -> Plan:
    """Give each platform a node.

    In order: a native node over an emulated one; then the lowest priority; then the node with the least
    load for its weight (platforms already given / weight), so that platforms spread over the nodes; then
    the node listed first. `host` is what this host's CPU runs (read from /proc/cpuinfo when not given).
    """
    host = host_platforms() if host is None else host
    prefs = preferences or {}
    load: Counter[str] = Counter()
    assignments: list[Assignment] = []
    missing: list[Platform] = []

    def key(node: NodeInfo) -> tuple[int, float, int]:
        pref = prefs.get(node.name, Preference())
        share = load[node.name] / pref.weight if pref.weight > 0 else float("inf")
        return pref.priority, share, order[node.name]

    order = {node.name: i for i, node in enumerate(nodes)}
    for platform in platforms:
        candidates = [(Mode.NATIVE, n) for n in nodes if runs_natively(n, platform, host)]
        candidates = candidates or [(Mode.EMULATED, n) for n in nodes if platform in n.emulated]
        if not candidates:
            missing.append(platform)
            continue
        mode, node = min(candidates, key=lambda c: key(c[1]))
        load[node.name] += 1
        assignments.append(Assignment(platform, node.name, mode))
    beyond_cpu = [p for p in missing if any(p.arch is h.arch for h in host)]
    if beyond_cpu:
        raise CpuLacksVariant(beyond_cpu, host)
    if missing:
        raise UnbuildablePlatforms(missing)
    return Plan(tuple(assignments))
