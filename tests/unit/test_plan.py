"""The plan: which platform goes to which node, and why."""

import pytest

from imgfront.model import NodeInfo, Preference
from imgfront.platforms import Platform
from imgfront.run.plan import CpuLacksVariant, Mode, UnbuildablePlatforms, make_plan

AMD64, ARM64, RISCV = (Platform.parse(p) for p in ("linux/amd64", "linux/arm64", "linux/riscv64"))


def node(name: str, native: list[Platform], emulated: list[Platform] = ()) -> NodeInfo:  # type: ignore[assignment]
    return NodeInfo(name, "podman", "4.3.1", "4.3.1", tuple(native), tuple(emulated))


def test_native_node_is_preferred_over_emulation() -> None:
    plan = make_plan([ARM64], [node("x86", [AMD64], [ARM64]), node("pi", [ARM64])])
    assert [(a.node, a.mode) for a in plan.assignments] == [("pi", Mode.NATIVE)]


def test_one_local_node_builds_foreign_platforms_emulated() -> None:
    plan = make_plan([AMD64, ARM64], [node("local", [AMD64], [ARM64])])
    assert plan.describe() == ["linux/amd64 -> local (native)", "linux/arm64 -> local (emulated)"]


def test_platforms_spread_over_equally_able_nodes() -> None:
    nodes = [node("a", [AMD64], [ARM64]), node("b", [AMD64], [ARM64])]
    plan = make_plan([AMD64, ARM64], nodes)
    assert sorted(a.node for a in plan.assignments) == ["a", "b"]


def test_platform_no_node_can_build_fails_before_any_build() -> None:
    with pytest.raises(UnbuildablePlatforms) as info:
        make_plan([AMD64, RISCV], [node("local", [AMD64], [ARM64])])
    assert info.value.platforms == (RISCV,)
    assert info.value.exit_code == 2
    assert "linux/riscv64" in info.value.message


def test_plan_is_plain_json() -> None:
    plan = make_plan([AMD64], [node("local", [AMD64])])
    assert plan.to_json() == [{"platform": "linux/amd64", "node": "local", "mode": "native"}]


def test_weight_gives_a_node_its_share_of_platforms() -> None:
    plats = [Platform.parse(p) for p in ("linux/amd64", "linux/arm64", "linux/arm/v7")]
    nodes = [node("big", [AMD64], plats), node("small", [AMD64], plats)]
    plan = make_plan(plats, nodes, {"big": Preference(weight=2), "small": Preference(weight=1)})
    assert sorted(a.node for a in plan.assignments) == ["big", "big", "small"]


def test_lower_priority_is_used_first_and_higher_only_when_needed() -> None:
    nodes = [node("laptop", [AMD64], [ARM64]), node("server", [AMD64], [ARM64]), node("pi", [ARM64])]
    prefs = {"laptop": Preference(priority=10), "server": Preference(priority=0)}
    plan = make_plan([AMD64, ARM64], nodes, prefs)
    assert [(a.node, a.mode) for a in plan.assignments] == [("server", Mode.NATIVE), ("pi", Mode.NATIVE)]
    only_laptop_left = make_plan([AMD64], [nodes[0]], prefs)
    assert only_laptop_left.assignments[0].node == "laptop"


def test_weight_zero_node_builds_only_when_no_other_can() -> None:
    nodes = [node("spare", [AMD64]), node("main", [AMD64])]
    prefs = {"spare": Preference(weight=0)}
    assert {a.node for a in make_plan([AMD64, AMD64], nodes, prefs).assignments} == {"main"}
    assert make_plan([AMD64], [nodes[0]], prefs).assignments[0].node == "spare"


def test_two_nodes_able_to_build_both_platforms_get_one_each() -> None:
    nodes = [node("a", [AMD64], [ARM64]), node("b", [ARM64], [AMD64])]
    plan = make_plan([AMD64, ARM64], nodes)
    assert [(a.node, a.mode) for a in plan.assignments] == [("a", Mode.NATIVE), ("b", Mode.NATIVE)]


V2, V3, V4 = (Platform.parse(f"linux/amd64/{v}") for v in ("v2", "v3", "v4"))
THIS_V3_HOST = (AMD64, V2, V3)  # what host_platforms() gives on an x86-64-v3 CPU


def local_node(name: str = "local") -> NodeInfo:
    return NodeInfo(name, "podman", "4.3.1", "4.3.1", (AMD64,), (ARM64,), address="unix:///run/podman/podman.sock")


def test_a_variant_this_hosts_cpu_runs_is_native_on_a_node_on_this_host() -> None:
    plan = make_plan([V2, V3, ARM64], [local_node()], host=THIS_V3_HOST)
    assert plan.describe() == [
        "linux/amd64/v2 -> local (native)",
        "linux/amd64/v3 -> local (native)",
        "linux/arm64 -> local (emulated)",
    ]


def test_a_variant_beyond_this_hosts_cpu_names_the_cpus_level_not_emulation() -> None:
    with pytest.raises(CpuLacksVariant) as e:
        make_plan([V4], [local_node()], host=THIS_V3_HOST)
    assert "this host's CPU runs linux/amd64/v3 at most" in e.value.message
    assert e.value.hint is not None and "emulation install" not in e.value.hint


def test_a_remote_node_reporting_only_its_baseline_does_not_take_a_higher_variant_natively() -> None:
    remote = NodeInfo("far", "podman", "5.4.2", "5.4.2", (AMD64,), (), address="ssh://root@far/run/podman.sock")
    plan = make_plan([V2], [remote, local_node()], host=THIS_V3_HOST)
    assert [(a.node, a.mode) for a in plan.assignments] == [("local", Mode.NATIVE)]
    remote_v3 = NodeInfo("far", "podman", "5.4.2", "5.4.2", (V3,), (), address="tcp://far:8080")
    assert make_plan([V2], [remote_v3], host=(ARM64,)).assignments[0].node == "far"
