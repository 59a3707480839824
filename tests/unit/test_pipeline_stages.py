"""What every stage type compiles into: the Containerfile lines and the context files."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from imgfront.errors import ImgfrontError, UsageError
from imgfront.pipeline.containerfile import quote, run
from imgfront.pipeline.stages import CompileContext, ContextDir, ContextFile, StageOutput, default_registry
from imgfront.platforms import Platform

STAGE_ID = "0123456789ab" + "c" * 52
PREFIX = "stages/0123456789ab"
AMD64 = Platform.parse("linux/amd64")
CHECKSUM = "sha256:" + "e" * 64


def compile_stage(name: str, options: dict[str, Any], folder: Path, platform: Platform | None = AMD64) -> StageOutput:
    ctx = CompileContext(STAGE_ID, folder, folder / "cache", platform)
    return default_registry().get(name).compile(options, ctx)


def lines(name: str, options: dict[str, Any], folder: Path) -> list[str]:
    return list(compile_stage(name, options, folder).lines)


def shell_of(line: str) -> str:
    """The command a shell-form RUN line hands to /bin/sh, continuations joined as the builder does."""
    return line.removeprefix("RUN ").replace(" \\\n", "")


def test_run_emits_one_plain_run_per_command(tmp_path: Path) -> None:
    assert lines("run", {"commands": ["make", "make install"]}, tmp_path) == ["RUN make", "RUN make install"]


def test_run_env_is_exported_for_each_command_only(tmp_path: Path) -> None:
    out = lines("run", {"commands": ["make"], "env": {"CC": "gcc -O2", "JOBS": 4}}, tmp_path)
    assert out == ["RUN export CC='gcc -O2' JOBS=4 && \\\n    make"]


def test_run_shell_uses_the_exec_form(tmp_path: Path) -> None:
    assert lines("run", {"commands": ["echo $0"], "shell": "/bin/bash"}, tmp_path) == [
        'RUN ["/bin/bash", "-c", "echo $0"]'
    ]
    assert lines("run", {"commands": ["x"], "shell": ["/bin/sh", "-eu", "-c"]}, tmp_path) == [
        'RUN ["/bin/sh", "-eu", "-c", "x"]'
    ]


@pytest.mark.parametrize("command", ["printf 'a\\nb'\necho two", "--help", "ends with \\", '["json"]'])
def test_run_falls_back_to_the_exec_form_where_the_shell_form_would_read_differently(command: str) -> None:
    assert run(command) == f'RUN ["/bin/sh", "-c", {__import__("json").dumps(command)}]'


def test_copy_puts_host_files_into_the_stage_folder_of_the_context(tmp_path: Path) -> None:
    (tmp_path / "hello.c").write_text("int main;")
    (tmp_path / "www" / "css").mkdir(parents=True)
    (tmp_path / "www" / "index.html").write_text("hi")
    (tmp_path / "www" / "run.sh").write_text("#!/bin/sh")
    (tmp_path / "www" / "run.sh").chmod(0o700)
    paths = [
        {"src": "hello.c", "dest": "/src/hello.c"},
        {"src": "www", "dest": "/srv/www", "owner": "1000:1000", "mode": "0750"},
    ]
    out = compile_stage("copy", {"paths": paths}, tmp_path)
    assert out.lines == (
        f'COPY ["{PREFIX}/0/hello.c", "/src/hello.c"]',
        f'COPY --chown=1000:1000 --chmod=0750 ["{PREFIX}/1/www", "/srv/www"]',
    )
    assert out.files == {
        f"{PREFIX}/0": ContextDir(),
        f"{PREFIX}/0/hello.c": ContextFile(0o644, origin=(tmp_path / "hello.c").resolve()),
        f"{PREFIX}/1": ContextDir(),
        f"{PREFIX}/1/www": ContextDir(),
        f"{PREFIX}/1/www/css": ContextDir(),
        f"{PREFIX}/1/www/index.html": ContextFile(0o644, origin=(tmp_path / "www" / "index.html").resolve()),
        f"{PREFIX}/1/www/run.sh": ContextFile(0o755, origin=(tmp_path / "www" / "run.sh").resolve()),
    }


def test_copy_keeps_a_links_own_name(tmp_path: Path) -> None:
    (tmp_path / "v2.conf").write_text("x")
    (tmp_path / "app.conf").symlink_to("v2.conf")
    out = compile_stage("copy", {"paths": [{"src": "app.conf", "dest": "/etc/"}]}, tmp_path)
    assert out.lines == (f'COPY ["{PREFIX}/0/app.conf", "/etc/"]',)


def test_copy_from_another_pipeline_reads_no_host_file(tmp_path: Path) -> None:
    options = {"from": "build", "paths": [{"src": "/out/hello", "dest": "/usr/local/bin/hello", "mode": "0755"}]}
    out = compile_stage("copy", options, tmp_path)
    assert out.lines == ('COPY --from=build --chmod=0755 ["/out/hello", "/usr/local/bin/hello"]',)
    assert out.files == {}


def test_files_are_written_into_the_context_and_copied(tmp_path: Path) -> None:
    files = [
        {"path": "/etc/motd", "content": "hello\n"},
        {"path": "/usr/local/bin/go*", "content": "#!/bin/sh\n", "mode": "0755", "owner": "web"},
    ]
    out = compile_stage("files", {"files": files}, tmp_path)
    assert out.lines == (
        f'COPY ["{PREFIX}/0/motd", "/etc/motd"]',
        f'COPY --chown=web --chmod=0755 ["{PREFIX}/1/go_", "/usr/local/bin/go*"]',
    )
    assert out.files[f"{PREFIX}/0/motd"] == ContextFile(0o644, b"hello\n")
    assert out.files[f"{PREFIX}/1/go_"] == ContextFile(0o755, b"#!/bin/sh\n")


def cache_file(folder: Path, data: bytes) -> Path:
    path = folder / "cache" / "sha256" / CHECKSUM.removeprefix("sha256:")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_source_is_copied_from_the_cache_by_checksum(tmp_path: Path) -> None:
    cached = cache_file(tmp_path, b"tool")
    out = compile_stage(
        "source", {"items": [{"checksum": CHECKSUM, "dest": "/usr/bin/tool", "mode": "0755"}]}, tmp_path
    )
    assert out.lines == (f'COPY --chmod=0755 ["sources/{"e" * 64}", "/usr/bin/tool"]',)
    assert out.files == {f"sources/{'e' * 64}": ContextFile(origin=cached)}


def test_source_extract_uses_add_on_a_tar_archive(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("a.txt")
        archive.addfile(info, io.BytesIO(b""))
    cache_file(tmp_path, buffer.getvalue())
    out = compile_stage("source", {"items": [{"checksum": CHECKSUM, "dest": "/opt/tool", "extract": True}]}, tmp_path)
    assert out.lines == (f'ADD ["sources/{"e" * 64}", "/opt/tool/"]',)


def test_source_extract_refuses_what_add_would_copy_silently(tmp_path: Path) -> None:
    cache_file(tmp_path, b"not an archive")
    with pytest.raises(UsageError, match="is not a tar archive"):
        compile_stage("source", {"items": [{"checksum": CHECKSUM, "dest": "/opt", "extract": True}]}, tmp_path)


def test_source_missing_from_the_cache_says_so(tmp_path: Path) -> None:
    with pytest.raises(ImgfrontError, match=f"source {CHECKSUM} is not in the cache"):
        compile_stage("source", {"items": [{"checksum": CHECKSUM, "dest": "/x"}]}, tmp_path)


def test_env_values_are_quoted_and_sorted(tmp_path: Path) -> None:
    out = lines("env", {"vars": {"Z": 'a "b" $c \\d', "A": 8080}}, tmp_path)
    assert out == ['ENV A="8080" Z="a \\"b\\" \\$c \\\\d"']


def test_labels_keys_and_values_are_quoted(tmp_path: Path) -> None:
    out = lines("labels", {"labels": {"org.opencontainers.image.title": "web $1", "b": True}}, tmp_path)
    assert out == ['LABEL "b"="true" "org.opencontainers.image.title"="web \\$1"']


def test_quote_refuses_a_line_break() -> None:
    with pytest.raises(ValueError):
        quote("a\nb")


def test_config_emits_exec_forms_in_a_fixed_order(tmp_path: Path) -> None:
    options = {
        "cmd": ["--port", "8080"],
        "entrypoint": ["/usr/bin/web"],
        "user": "web:web",
        "workdir": "/srv/www",
        "exposed_ports": [8080, "53/udp"],
        "volumes": ["/data", "/var/log"],
        "stop_signal": "SIGINT",
        "healthcheck": {"test": ["/usr/bin/web", "--check"], "interval": "30s", "start_period": "5s", "retries": 3},
    }
    assert lines("config", options, tmp_path) == [
        "WORKDIR /srv/www",
        "USER web:web",
        "EXPOSE 8080 53/udp",
        'VOLUME ["/data", "/var/log"]',
        "STOPSIGNAL SIGINT",
        'HEALTHCHECK --interval=30s --start-period=5s --retries=3 CMD ["/usr/bin/web", "--check"]',
        'ENTRYPOINT ["/usr/bin/web"]',
        'CMD ["--port", "8080"]',
    ]


def test_users_try_shadow_tools_then_busybox_then_plain_lines(tmp_path: Path) -> None:
    out = lines("users", {"groups": [{"name": "web", "gid": 1000}], "users": [{"name": "web", "uid": 1000}]}, tmp_path)
    assert len(out) == 1
    script = shell_of(out[0])
    assert (
        script.index("groupadd -g 1000 web")
        < script.index("addgroup -g 1000 web")
        < script.index("echo 'web:x:1000:' >>/etc/group")
    )
    assert "useradd -l -m -N -u 1000 -g 1000 -d /home/web -s /bin/sh web" in script
    assert "adduser -D -u 1000 -G" in script
    assert "echo web:x:1000:1000::/home/web:/bin/sh >>/etc/passwd" in script
    assert script.count("groupadd -g") == 1  # the user's group of its name is the listed one


def test_a_user_without_gid_gets_a_group_of_its_own_name(tmp_path: Path) -> None:
    script = shell_of(lines("users", {"users": [{"name": "app", "uid": 990, "shell": "/sbin/nologin"}]}, tmp_path)[0])
    assert "groupadd -g 990 app" in script
    assert "useradd -l -m -N -u 990 -g 990 -d /home/app -s /sbin/nologin app" in script


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("users", {"groups": [{"name": "g", "gid": 5}], "users": [{"name": "u", "uid": 6, "home": "/h h"}]}),
        ("apt", {"packages": ["curl"], "repositories": ["deb http://x bookworm main"]}),
        ("dnf", {"packages": ["curl"], "repositories": [{"id": "x", "baseurl": "http://x", "gpgkey": "http://k"}]}),
        ("apk", {"packages": ["curl"], "repositories": ["http://x/main"]}),
        ("run", {"commands": ["echo 'a b'"], "env": {"A": "it's"}}),
    ],
)
def test_generated_shell_is_valid_sh(tmp_path: Path, name: str, options: dict[str, Any]) -> None:
    line = lines(name, options, tmp_path)[-1]
    command = shell_of(line)
    while command.startswith("--mount="):
        command = command.split(" ", 1)[1].lstrip()
    subprocess.run(["sh", "-n", "-c", command], check=True)


def test_apt_installs_with_cache_mounts_per_platform(tmp_path: Path) -> None:
    apt = "apt-get -o Dir::Cache=/tmp/imgfront-cache/apt -o Dir::State::Lists=/tmp/imgfront-cache/apt-lists"
    assert lines("apt", {"packages": ["gcc", "libc6-dev"]}, tmp_path) == [
        "RUN --mount=type=cache,id=imgfront-apt-linux_amd64,target=/tmp/imgfront-cache/apt,sharing=shared \\\n"
        "    --mount=type=cache,id=imgfront-apt-lists-linux_amd64,target=/tmp/imgfront-cache/apt-lists,"
        "sharing=shared \\\n"
        f"    {apt} update && \\\n"
        f"    DEBIAN_FRONTEND=noninteractive {apt} -o APT::Keep-Downloaded-Packages=true"
        " install -y --no-install-recommends gcc libc6-dev"
    ]


def test_apt_repositories_go_into_a_list_named_by_content(tmp_path: Path) -> None:
    out = lines("apt", {"packages": ["x"], "repositories": ["deb http://deb.example.org bookworm main"]}, tmp_path)
    assert "printf '%s\\n' 'deb http://deb.example.org bookworm main' >/etc/apt/sources.list.d/imgfront-" in out[0]


def test_dnf_keeps_packages_on_the_cache_and_drops_its_logs(tmp_path: Path) -> None:
    out = lines("dnf", {"packages": ["gcc"], "repositories": [{"id": "extra", "baseurl": "http://x/"}]}, tmp_path)
    assert "id=imgfront-dnf-linux_amd64,target=/tmp/imgfront-cache/dnf" in out[0]
    assert "--setopt=cachedir=/tmp/imgfront-cache/dnf --setopt=system_cachedir=/tmp/imgfront-cache/dnf" in out[0]
    assert "--setopt=keepcache=True --setopt=install_weak_deps=False gcc" in out[0]
    assert "'[extra]' name=extra baseurl=http://x/ gpgcheck=0 >/etc/yum.repos.d/imgfront-" in out[0]
    assert "rm -rf /var/log/dnf*.log /var/log/hawkey.log" in out[0]


def test_apk_adds_repositories_and_uses_its_cache(tmp_path: Path) -> None:
    out = lines("apk", {"packages": ["curl"], "repositories": ["http://x/main"]}, tmp_path)
    assert "id=imgfront-apk-linux_amd64,target=/tmp/imgfront-cache/apk" in out[0]
    assert "printf '%s\\n' http://x/main >>/etc/apk/repositories && \\\n" in out[0]
    assert out[0].endswith("apk add --cache-dir /tmp/imgfront-cache/apk --update-cache curl")


def test_package_caches_without_a_platform_are_shared(tmp_path: Path) -> None:
    out = compile_stage("apk", {"packages": ["curl"]}, tmp_path, platform=None)
    assert "id=imgfront-apk-any," in out.lines[0]


def test_remove_passes_each_path_as_one_argument(tmp_path: Path) -> None:
    assert lines("remove", {"paths": ["/var/cache/a b", "/tmp/*"]}, tmp_path) == [
        'RUN ["rm", "-rf", "--", "/var/cache/a b", "/tmp/*"]'
    ]
