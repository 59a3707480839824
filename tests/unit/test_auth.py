"""Registry credentials: where they are looked for, how they are matched, written and removed."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from imgfront.errors import ImgfrontError, UsageError
from imgfront.model import Credentials
from imgfront.oci import auth
from imgfront.oci.auth import find_credentials, remove_credentials, store_credentials
from imgfront.oci.client import insecure_registries, push_failure, redact, verifies_tls


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user with no auth file anywhere yet."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    for name in ("REGISTRY_AUTH_FILE", "DOCKER_CONFIG", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def write(path: Path, auths: dict[str, dict[str, str]], **extra: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"auths": auths, **extra}))
    return path


def basic(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_search_order_is_podmans_then_dockers(home: Path, tmp_path: Path) -> None:
    assert auth.auth_files() == [
        tmp_path / "run" / "containers" / "auth.json",
        home / ".config" / "containers" / "auth.json",
        home / ".docker" / "config.json",
        home / ".dockercfg",
    ]


def test_first_file_holding_the_registry_wins(home: Path, tmp_path: Path) -> None:
    write(home / ".docker" / "config.json", {"reg.example": basic("docker", "d")})
    assert find_credentials("reg.example/app:1") == Credentials("docker", "d")
    write(tmp_path / "run" / "containers" / "auth.json", {"reg.example": basic("podman", "p")})
    assert find_credentials("reg.example/app:1") == Credentials("podman", "p")
    assert find_credentials("other.example/app") is None


def test_authfile_then_registry_auth_file_replace_the_defaults(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(home / ".docker" / "config.json", {"reg.example": basic("docker", "d")})
    env_file = write(tmp_path / "env.json", {"reg.example": basic("env", "e")})
    flag_file = write(tmp_path / "flag.json", {})
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(env_file))
    assert find_credentials("reg.example/app") == Credentials("env", "e")
    assert find_credentials("reg.example/app", flag_file) is None  # --authfile alone, nothing else


def test_repository_keys_match_before_the_registry(home: Path, tmp_path: Path) -> None:
    write(
        tmp_path / "run" / "containers" / "auth.json",
        {
            "reg.example": basic("all", "a"),
            "reg.example/team": basic("team", "t"),
            "reg.example/team/app": basic("app", "x"),
        },
    )
    assert find_credentials("reg.example/team/app:1").username == "app"
    assert find_credentials("reg.example/team/other@sha256:" + "0" * 64).username == "team"
    assert find_credentials("reg.example/solo").username == "all"


def test_docker_hub_aliases_and_legacy_url_keys(home: Path) -> None:
    write(home / ".docker" / "config.json", {"https://index.docker.io/v1/": basic("hub", "h")})
    assert find_credentials("docker.io/library/busybox").username == "hub"


def test_identity_tokens_are_credentials_too(home: Path) -> None:
    write(home / ".docker" / "config.json", {"reg.example": {"identitytoken": "tok"}})
    found = find_credentials("reg.example/app")
    assert found is not None and found.identity_token == "tok" and found.secrets == ("tok",)


def test_a_broken_auth_file_is_one_clear_error(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "run" / "containers" / "auth.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(ImgfrontError, match="cannot read the auth file"):
        find_credentials("reg.example/app")


def test_login_writes_as_podman_does_and_logout_removes(home: Path, tmp_path: Path) -> None:
    written = store_credentials("https://reg.example/", Credentials("me", "s3cret"))
    assert written == tmp_path / "run" / "containers" / "auth.json"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert json.loads(written.read_text()) == {"auths": {"reg.example": basic("me", "s3cret")}}
    store_credentials("other.example", Credentials("you", "x"))
    assert remove_credentials("reg.example") == ["reg.example"]
    assert list(json.loads(written.read_text())["auths"]) == ["other.example"]
    with pytest.raises(ImgfrontError, match=r"not logged in to reg\.example"):
        remove_credentials("reg.example")
    assert remove_credentials(None) == ["other.example"]


def test_logout_points_at_docker_when_the_login_is_dockers(home: Path) -> None:
    write(home / ".docker" / "config.json", {"reg.example": basic("docker", "d")})
    with pytest.raises(ImgfrontError) as caught:
        remove_credentials("reg.example")
    assert "docker logout" in (caught.value.hint or "")


def test_secrets_stay_out_of_reprs_and_messages() -> None:
    creds = Credentials("me", "s3cret-pw")
    assert "s3cret-pw" not in repr(creds)
    header = json.loads(base64.urlsafe_b64decode(creds.header("reg.example")))
    assert header == {"username": "me", "password": "s3cret-pw", "serveraddress": "reg.example"}
    error = push_failure("reg.example/app:1", "local", "denied for me:s3cret-pw", creds.secrets)
    assert "s3cret-pw" not in error.message
    assert redact("a s3cret-pw b", ("s3cret-pw", "")) == "a *** b"


@pytest.mark.parametrize(
    ("cause", "hint"),
    [
        ("unauthorized: authentication required", "imgfront login reg.example"),
        ('Get "https://reg.example/v2/": http: server gave HTTP response to HTTPS client', "--tls-verify=false"),
        ("name unknown: repository name not known to registry", "does not exist"),
        ("denied: requested access to the resource is denied", "refused"),
    ],
)
def test_push_failures_name_their_fix(cause: str, hint: str) -> None:
    error = push_failure("reg.example/app:1", "node1", cause)
    assert error.message.startswith("pushing reg.example/app:1 from node1 failed: ")
    assert "\n" not in error.message
    assert hint in (error.hint or "")


def test_registries_conf_insecure_entries(tmp_path: Path) -> None:
    conf, folder = tmp_path / "registries.conf", tmp_path / "registries.conf.d"
    folder.mkdir()
    conf.write_text('unqualified-search-registries = []\n[[registry]]\nlocation = "a.example:5000"\ninsecure = true\n')
    (folder / "50-b.conf").write_text('[[registry]]\nlocation = "b.example"\ninsecure = false\n')
    (folder / "60-broken.conf").write_text("[[registry\n")
    assert insecure_registries((conf, folder)) == ["a.example:5000"]
    assert verifies_tls("anything", False) is False
    assert verifies_tls("anything", True) is True


def test_password_stdin_and_option_exclude_each_other(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError):
        auth.read_password("x", stdin=True)
    with pytest.raises(UsageError):
        auth.read_password(None, stdin=False)
    assert auth.read_password("pw", stdin=False) == "pw"
