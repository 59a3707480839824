"""The leaf file helpers: one atomic write that leaves nothing behind on error, one JSON reader, one config home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imgfront.util.files import config_home, write_atomically
from imgfront.util.jsonfile import JSONFileError, read_json_object, write_json


def test_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "metadata.json"
    target.write_text("old\n")
    with pytest.raises(UnicodeEncodeError):
        write_atomically(target, "half \udc80 written")  # a lone surrogate cannot be encoded: the write fails midway
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metadata.json"]


def test_write_replaces_whole_and_keeps_the_replaced_files_mode(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "conf.json"
    write_json(target, {"a": 1})
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert target.stat().st_mode & 0o777 == 0o600  # a new file is private
    os.chmod(target, 0o644)
    write_json(target, {"b": 2}, indent=None)
    assert target.read_text() == '{"b": 2}\n'
    assert target.stat().st_mode & 0o777 == 0o644
    write_atomically(target, b"{}", mode=0o640)
    assert (target.read_bytes(), target.stat().st_mode & 0o777) == (b"{}", 0o640)


def test_read_json_object_missing_empty_and_broken_files(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    assert read_json_object(path) == {}
    path.write_text("")
    assert read_json_object(path, empty_is_missing=True) == {}
    with pytest.raises(JSONFileError, match=r"f\.json is not JSON: Expecting value") as raised:
        read_json_object(path)
    assert raised.value.hint == "correct or remove it"
    path.write_text("[1]")
    with pytest.raises(JSONFileError, match="it is not a JSON object"):
        read_json_object(path)
    path.write_text('{"a": {"b": "x"}}')
    schema = {"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "integer"}}}}}
    with pytest.raises(JSONFileError, match=r"f\.json: \.a\.b: 'x' is not of type 'integer'"):
        read_json_object(path, schema)
    path.write_text('{"a": {"b": 1}}')
    assert read_json_object(path, schema) == {"a": {"b": 1}}


def test_config_home_follows_xdg(tmp_path: Path) -> None:
    assert config_home({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path
    assert config_home({}) == Path.home() / ".config"
