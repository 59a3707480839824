"""Which kept private service a run may use: one per user and storage settings, in a folder only the user owns."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from imgfront.engines.service import kept_folder, linger_seconds, settings_key

PODMAN = shutil.which("true") or "/bin/true"  # any binary: the key reads its path, size and time only


def test_the_key_changes_with_what_decides_the_storage(tmp_path: Path) -> None:
    storage = tmp_path / "storage.conf"
    storage.write_text('[storage]\ndriver = "overlay"\n')
    env = {"HOME": str(tmp_path), "CONTAINERS_STORAGE_CONF": str(storage)}
    key = settings_key(PODMAN, env)
    assert settings_key(PODMAN, dict(env)) == key
    storage.write_text('[storage]\ndriver = "vfs"\n')  # the same file, other settings
    assert settings_key(PODMAN, env) != key
    assert settings_key(PODMAN, {**env, "CONTAINERS_STORAGE_CONF": str(tmp_path / "other.conf")}) != key
    assert settings_key(PODMAN, {**env, "XDG_RUNTIME_DIR": str(tmp_path)}) != key
    assert settings_key(PODMAN, {**env, "CONTAINER_HOST": "unix:///x"}) == settings_key(PODMAN, env)


def test_the_folder_must_be_the_users_alone(tmp_path: Path) -> None:
    env = {"XDG_RUNTIME_DIR": str(tmp_path)}
    folder = kept_folder(env)
    assert folder == tmp_path / "imgfront"
    assert (folder.stat().st_mode & 0o777) == 0o700
    folder.chmod(0o755)  # another user could reach the socket
    assert kept_folder(env) is None
    folder.rmdir()
    os.symlink(tmp_path / "elsewhere", folder)
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    assert kept_folder(env) is None  # a link, whoever made it, is not the folder


@pytest.mark.parametrize(("text", "seconds"), [("", 60), ("0", 0), ("5", 5), ("-3", 0), ("soon", 60)])
def test_linger_comes_from_the_environment(text: str, seconds: int) -> None:
    assert linger_seconds({"IMGFRONT_SERVICE_LINGER": text} if text else {}) == seconds
