"""Reproducible mode's options: --source-date-epoch, SOURCE_DATE_EPOCH, --reproducible; and the context's mtimes."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from imgfront.cli import main as cli
from imgfront.run import context as build_context
from imgfront.run.invocation import resolve


def epoch_of(context: Path, **given: object) -> int | None:
    return resolve({"context": str(context), **given}).options.source_date_epoch


def refusal(capsys: pytest.CaptureFixture[str], argv: list[str]) -> list[str]:
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    return capsys.readouterr().err.splitlines()


def git_context(tmp_path: Path, when: int) -> Path:
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "Containerfile").write_text("FROM scratch\n")
    env = {**os.environ, "GIT_AUTHOR_DATE": f"@{when} +0000", "GIT_COMMITTER_DATE": f"@{when} +0000"}
    for step in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", "-C", folder, *step], check=True, env=env)
    return folder


def test_no_option_and_no_variable_is_not_reproducible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert epoch_of(tmp_path) is None


def test_the_option_wins_over_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "5")
    assert epoch_of(tmp_path) == 5
    assert epoch_of(tmp_path, source_date_epoch="1700000000") == 1700000000
    assert epoch_of(tmp_path, source_date_epoch="0") == 0


def test_an_empty_variable_is_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "")
    assert epoch_of(tmp_path) is None


@pytest.mark.parametrize("value", ["-1", "1.5", "soon", "\uff11\uff12", ""])
def test_a_bad_option_value_is_one_line_and_exit_2(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    lines = refusal(capsys, ["build", "--source-date-epoch", value, str(tmp_path)])
    assert len(lines) == 1 and "--source-date-epoch must be a whole number of seconds" in lines[0]


def test_a_bad_variable_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    lines = refusal(capsys, ["build", str(tmp_path)])
    assert len(lines) == 1 and "SOURCE_DATE_EPOCH must be a whole number" in lines[0] and "yesterday" in lines[0]


def test_reproducible_takes_the_latest_commit_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "5")  # an explicit option wins over the environment
    assert epoch_of(git_context(tmp_path, 1600000000), reproducible=True) == 1600000000


def test_reproducible_outside_a_git_work_tree_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    lines = refusal(capsys, ["build", "--reproducible", str(tmp_path)])
    assert "is not in a git work tree" in lines[0]


@pytest.mark.parametrize("context", ["-", "https://example.invalid/repo.git", "github.com/o/r"])
def test_reproducible_with_a_url_or_stdin_context_is_refused(context: str, capsys: pytest.CaptureFixture[str]) -> None:
    lines = refusal(capsys, ["build", "--reproducible", context])
    assert "--reproducible takes its time from the context's git history" in lines[0]


def test_reproducible_and_an_epoch_together_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = refusal(capsys, ["build", "--reproducible", "--source-date-epoch", "1", str(tmp_path)])
    assert "both give the epoch" in lines[0]


@pytest.mark.parametrize("push", ["--push-from-nodes", "--push-by-digest"])
def test_pushing_from_the_nodes_is_refused(push: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["build", "--source-date-epoch", "1", "--push", push, "-t", "r.example/a:1", str(tmp_path)]
    lines = refusal(capsys, argv)
    assert f"{push} cannot push reproducible images" in lines[0]


def test_packed_context_has_whole_second_mtimes_clamped_to_the_epoch(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Containerfile").write_text("FROM scratch\nCOPY . /\n")
    (context / "old").write_text("old")
    (context / "new").write_text("new")
    os.utime(context / "old", (1000.75, 1000.75))
    os.utime(context / "new", (2_000_000_000.5, 2_000_000_000.5))
    packed = build_context.pack(context, context / "Containerfile", tmp_path, epoch=1_500_000_000)
    with tarfile.open(packed.tar) as archive:
        members = {m.name: m for m in archive.getmembers()}
        assert members["old"].mtime == 1000 and "mtime" not in members["old"].pax_headers
        assert members["new"].mtime == 1_500_000_000
        assert all(isinstance(m.mtime, int) and m.mtime <= 1_500_000_000 for m in members.values())
        assert archive.extractfile(members["old"]).read() == b"old"  # type: ignore[union-attr]
    plain = build_context.pack(context, context / "Containerfile", tmp_path)
    with tarfile.open(plain.tar) as archive:
        assert archive.getmember("new").mtime > 1_500_000_000


def test_a_reproducible_push_with_a_local_docker_engine_is_refused(tmp_path: Path) -> None:
    from imgfront.errors import UsageError
    from imgfront.options import fit_engines

    options = resolve(
        {"context": str(tmp_path), "source_date_epoch": "1", "push": True, "tag": ["r.example/a:1"]}
    ).options
    with pytest.raises(UsageError, match="cannot hold the list a reproducible --push is made from"):
        fit_engines(options, "docker", False, [], lambda _: None)


def test_a_named_context_folder_is_clamped_too(tmp_path: Path) -> None:
    folder = tmp_path / "named"
    folder.mkdir()
    (folder / "f").write_text("x")
    os.utime(folder / "f", (2_000_000_000.25, 2_000_000_000.25))
    source = build_context.parse_build_contexts([f"extra={folder}"])[0]
    named = build_context.pack_named(source, tmp_path, epoch=1_500_000_000)
    assert named.folder is not None
    with tarfile.open(named.folder.tar) as archive:
        assert {m.mtime for m in archive.getmembers() if m.name.endswith("/f")} == {1_500_000_000}
