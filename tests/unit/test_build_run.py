"""A whole `Build.run` over the fake engine: what a failure, an interrupt or a failed push keeps, and in what order."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from fakes import AMD64, ARM64, FakeEngine, Script

from imgfront.errors import BuildFailed, EngineError, Interrupted, UsageError
from imgfront.oci.push import PushOptions
from imgfront.run.build import Build, BuildOptions
from imgfront.run.progress import QuietProgress

TAG = "localhost/app:1"


class Notes(QuietProgress):
    def __init__(self) -> None:
        super().__init__()
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        self.notes.append(message)


@pytest.fixture
def context(tmp_path: Path) -> Path:
    folder = tmp_path / "context"
    folder.mkdir()
    (folder / "Containerfile").write_text("FROM scratch\n")
    return folder


def options(context: Path, **kwargs: object) -> BuildOptions:
    settings: dict[str, object] = {"platforms": (AMD64, ARM64), "tags": (TAG,), **kwargs}
    return BuildOptions(context=context, **settings)  # type: ignore[arg-type]


def run(engine: FakeEngine, opts: BuildOptions, progress: Notes | None = None) -> None:
    Build(opts, engine, [engine], progress or Notes()).run()


def first_list(engine: FakeEngine, context: Path) -> str:
    """Build the previous list under TAG; return its id."""
    run(engine, options(context))
    made = engine.list_named(TAG)
    assert made is not None
    return made.id


def test_success_names_the_list_last_and_drops_the_temporary_name(context: Path) -> None:
    engine = FakeEngine()
    old = first_list(engine, context)
    run(engine, options(context))
    new = engine.list_named(TAG)
    assert new is not None and new.id != old
    assert new.names == {TAG}
    assert old not in engine.lists  # left nameless, so removed
    assert engine.runnable(TAG, AMD64) and engine.runnable(TAG, ARM64)


def test_failed_platform_keeps_previous_list_and_the_cached_instance_it_names(context: Path) -> None:
    engine = FakeEngine()
    old = first_list(engine, context)
    engine.script = {AMD64: Script.CACHED, ARM64: Script.FAIL}
    with pytest.raises(BuildFailed) as failed:
        run(engine, options(context))
    assert "build failed for linux/arm64" in failed.value.message
    assert engine.list_named(TAG) is not None and engine.list_named(TAG).id == old  # type: ignore[union-attr]
    assert engine.runnable(TAG, AMD64) and engine.runnable(TAG, ARM64)
    assert engine.removed == []  # the cached amd64 image was the old list's: not this build's to remove


def test_failed_platform_removes_the_image_this_build_made(context: Path) -> None:
    engine = FakeEngine(script={ARM64: Script.FAIL})
    with pytest.raises(BuildFailed):
        run(engine, options(context))
    assert len(engine.removed) == 1
    assert engine.images == {}
    assert engine.lists == {}


def test_keep_failed_keeps_what_did_build(context: Path) -> None:
    engine = FakeEngine(script={ARM64: Script.FAIL})
    with pytest.raises(BuildFailed):
        run(engine, options(context, keep_failed=True))
    assert engine.removed == [] and len(engine.images) == 1


def test_interrupt_removes_only_what_the_build_made_and_keeps_the_list(context: Path) -> None:
    engine = FakeEngine()
    old = first_list(engine, context)
    before = set(engine.images)
    engine.script = {AMD64: Script.OK, ARM64: Script.INTERRUPT}
    with pytest.raises(Interrupted) as interrupted:
        run(engine, options(context))
    assert interrupted.value.exit_code == 130
    assert "what they made was removed" in interrupted.value.message
    assert set(engine.images) == before
    assert engine.list_named(TAG).id == old  # type: ignore[union-attr]
    assert engine.runnable(TAG, AMD64) and engine.runnable(TAG, ARM64)


def test_sigterm_and_sighup_exit_as_shells_report_them() -> None:
    assert Interrupted("x", signum=signal.SIGTERM).exit_code == 143
    assert Interrupted("x", signum=signal.SIGHUP).exit_code == 129
    assert Interrupted("x").exit_code == 130


@pytest.mark.parametrize("option", ["metadata_file", "iidfile"])
def test_a_file_that_cannot_be_written_fails_before_any_build(context: Path, tmp_path: Path, option: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    engine = FakeEngine()
    with pytest.raises(UsageError) as refused:
        run(engine, options(context, **{option: blocker / "out.json"}))
    assert "is not a folder" in refused.value.message
    assert engine.builds == []
    with pytest.raises(UsageError):
        run(engine, options(context, **{option: tmp_path}))  # a folder where the file would go
    assert engine.builds == []


def test_failed_push_keeps_the_old_list_and_says_where_the_new_one_is(context: Path) -> None:
    engine = FakeEngine()
    old = first_list(engine, context)
    engine.push_fails = True
    notes = Notes()
    with pytest.raises(EngineError):
        run(engine, options(context, push=PushOptions("here")), notes)
    assert engine.list_named(TAG).id == old  # type: ignore[union-attr]
    assert engine.runnable(TAG, AMD64) and engine.runnable(TAG, ARM64)
    kept = [n for n in notes.notes if n.startswith("the new list is kept as")]
    assert kept, notes.notes
    temporary = kept[0].split()[6].rstrip(";")
    assert engine.list_named(temporary) is not None


def test_metadata_is_written_before_the_names_move(context: Path, tmp_path: Path) -> None:
    engine = FakeEngine()
    old = first_list(engine, context)
    seen: list[str | None] = []
    original = engine.name_list

    def name_list(made, names):  # type: ignore[no-untyped-def]
        seen.append((tmp_path / "meta.json").read_text() if (tmp_path / "meta.json").exists() else None)
        assert engine.list_named(TAG).id == old  # type: ignore[union-attr]
        return original(made, names)

    engine.name_list = name_list  # type: ignore[method-assign]
    run(engine, options(context, metadata_file=tmp_path / "meta.json", iidfile=tmp_path / "iid"))
    assert seen and seen[0] is not None and '"containerimage.digest"' in seen[0]
    assert engine.list_named(TAG).id != old  # type: ignore[union-attr]


def test_metadata_file_and_an_output_in_one_place_are_refused_before_any_build(context: Path, tmp_path: Path) -> None:
    from imgfront.outputs import parse_outputs

    engine = FakeEngine()
    outputs = parse_outputs([f"type=oci-archive,dest={tmp_path}/x/../out.tar"])
    with pytest.raises(UsageError, match="both write to"):
        run(engine, options(context, metadata_file=tmp_path / "out.tar", outputs=outputs))
    assert engine.builds == []


def test_an_unchanged_rebuild_keeps_the_list_it_finds_and_makes_none(context: Path) -> None:
    engine = FakeEngine()
    old = first_list(engine, context)
    engine.script = {AMD64: Script.CACHED, ARM64: Script.CACHED}
    lists_before = set(engine.lists)
    run(engine, options(context))
    assert set(engine.lists) == lists_before  # no list made, none dropped
    assert engine.list_named(TAG).id == old  # type: ignore[union-attr]
    assert engine.runnable(TAG, AMD64) and engine.runnable(TAG, ARM64)

    engine.push_fails = True  # a failed push of the unchanged list leaves it as it was, under its name
    with pytest.raises(EngineError):
        run(engine, options(context, push=PushOptions()))
    assert engine.list_named(TAG).id == old  # type: ignore[union-attr]


def test_a_rebuild_with_one_platform_changed_makes_a_new_list(context: Path) -> None:
    engine = FakeEngine()
    old = first_list(engine, context)
    engine.script = {AMD64: Script.CACHED, ARM64: Script.OK}
    run(engine, options(context))
    assert engine.list_named(TAG).id != old  # type: ignore[union-attr]
