"""What a build context argument names: a folder, or else one line saying what it is instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgfront.errors import UsageError
from imgfront.run.context import context_folder


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
    "url",
    [
        "https://github.com/example/app.git#main:docker",
        "git://example.com/app.git",
        "git@github.com:example/app.git",
        "github.com/example/app",
        "http://example.com/context.tar.gz",
    ],
)
def test_a_url_is_refused_as_given(url: str) -> None:
    with pytest.raises(UsageError) as e:
        context_folder(url)
    assert e.value.message == f"a build context from a URL is not supported yet: {url}"
    assert e.value.hint is not None and "clone" in e.value.hint


def test_a_url_is_shown_without_its_token() -> None:
    with pytest.raises(UsageError) as e:
        context_folder("https://bot:s3cr3t-token@example.com/app.git")
    assert "s3cr3t-token" not in e.value.message
    assert e.value.message.endswith("https://bot:***@example.com/app.git")


def test_standard_input_is_refused_by_name() -> None:
    with pytest.raises(UsageError, match=r"standard input \('-'\) is not supported yet"):
        context_folder("-")
