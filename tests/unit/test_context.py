"""What a build context argument names: a folder, or else one line saying what it is instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgfront.errors import UsageError
from imgfront.run.context import _GIT, context_folder, ignore_patterns


def test_a_folder_is_the_context(tmp_path: Path) -> None:
    assert context_folder(str(tmp_path)) == tmp_path


def test_a_missing_folder_is_named_as_missing(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as e:
        context_folder(f"{tmp_path}/nope")
    assert e.value.message == f"context folder {tmp_path}/nope does not exist"


def test_a_file_is_not_a_folder_and_the_hint_names_the_fix(tmp_path: Path) -> None:
    (tmp_path / "Containerfile").write_text("FROM scratch\n")
    with pytest.raises(UsageError) as e:
        context_folder(f"{tmp_path}/Containerfile")
    assert e.value.message == f"{tmp_path}/Containerfile is a file, not a folder"
    assert e.value.hint is not None and f"-f {tmp_path}/Containerfile" in e.value.hint


@pytest.mark.parametrize(
    ("url", "git"),
    [
        ("https://github.com/example/app.git#main:docker", True),
        ("git://example.com/app.git", True),
        ("git@github.com:example/app.git", True),
        ("github.com/example/app", True),
        ("http://example.com/app.git", True),
        ("http://example.com/context.tar.gz", False),
        ("https://example.com/Containerfile", False),
    ],
)
def test_git_urls_are_told_from_downloads_as_podman_does(url: str, git: bool) -> None:
    assert bool(_GIT.match(url)) is git


def test_another_scheme_is_refused_without_its_token() -> None:
    with pytest.raises(UsageError) as e:
        context_folder("ftp://bot:s3cr3t-token@example.com/app.tar")
    assert "s3cr3t-token" not in e.value.message
    assert e.value.message == "a build context from a ftp:// URL is not supported: ftp://bot:***@example.com/app.tar"


def test_standard_input_is_refused_by_name_and_the_hint_names_f_dash() -> None:
    with pytest.raises(UsageError, match=r"standard input \('-'\) is not supported") as e:
        context_folder("-")
    assert e.value.hint is not None and "-f -" in e.value.hint


def test_ignorefile_replaces_the_context_own(tmp_path: Path) -> None:
    (tmp_path / ".containerignore").write_text("a\n")
    own = tmp_path / "other.ignore"
    own.write_text("# comment\n\nb\n!b/keep\n")
    assert ignore_patterns(tmp_path) == ["a"]
    assert ignore_patterns(tmp_path, own) == ["b", "!b/keep", ".containerignore", ".dockerignore"]
    with pytest.raises(UsageError, match="no such file"):
        ignore_patterns(tmp_path, tmp_path / "missing")


@pytest.mark.parametrize("own_filter", [True, False], ids=["python-data-filter", "without-it"])
def test_a_downloaded_tar_unpacks_as_the_data_filter_does(tmp_path: Path, monkeypatch, own_filter: bool) -> None:
    import io
    import tarfile

    from imgfront.run.context import _extract_data

    if not own_filter:  # Debian 12's python3 (3.11.2) predates tarfile's filters
        monkeypatch.delattr(tarfile, "data_filter", raising=False)

    def archive(*members: tuple[str, bytes, int]) -> tarfile.TarFile:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name, data, mode in members:
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), mode
                tar.addfile(info, io.BytesIO(data))
        buffer.seek(0)
        return tarfile.open(fileobj=buffer)

    (tmp_path / "ok").mkdir()
    _extract_data(archive(("Containerfile", b"FROM scratch\n", 0o4755)), tmp_path / "ok")
    assert (tmp_path / "ok" / "Containerfile").read_bytes() == b"FROM scratch\n"
    assert (tmp_path / "ok" / "Containerfile").stat().st_mode & 0o7777 == 0o755  # setuid dropped
    (tmp_path / "bad").mkdir()
    with pytest.raises(tarfile.TarError):
        _extract_data(archive(("../escape", b"x", 0o644)), tmp_path / "bad")
    assert not (tmp_path / "escape").exists()
