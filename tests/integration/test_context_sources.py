"""Where a build's Containerfile and context come from: a git URL, an http tarball, standard input, --ignorefile."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest
from conftest import BUSYBOX_CONTAINERFILE, imgfront_cmd
from integration.services.http_files import FileServer, run_file_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def file_server(tmp_path_factory: pytest.TempPathFactory) -> FileServer:
    base = tmp_path_factory.mktemp("files")
    (base / "root").mkdir()
    with run_file_server(base / "root", base / "server.log") as server:
        yield server


def add(archive: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    archive.addfile(info, io.BytesIO(data))


def served_tarball(server: FileServer, busybox: Path, containerfile: str, name: str) -> str:
    with tarfile.open(server.root / name, "w:gz") as archive:
        add(archive, "Containerfile", containerfile.encode())
        for arch in ("amd64", "arm64"):
            add(archive, f"busybox-{arch}", (busybox / f"busybox-{arch}").read_bytes(), 0o755)
        add(archive, "from-tarball", b"tarball\n")
    return f"{server.url}/{name}"


def served_repository(server: FileServer, source: Path, name: str) -> str:
    """A bare repository served over git's dumb http protocol; its branch `main` holds `source` under sub/."""
    work = source.parent / f"{name}-work"
    (work / "sub").mkdir(parents=True)
    for path in source.iterdir():
        (work / "sub" / path.name).write_bytes(path.read_bytes())
        (work / "sub" / path.name).chmod(path.stat().st_mode)

    def git(*args: str, cwd: Path = work) -> None:
        env = {
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@x",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@x",
        }
        subprocess.run(["git", *args], cwd=cwd, env={**env, "PATH": "/usr/bin:/bin"}, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("add", ".")
    git("commit", "-q", "-m", "context")
    bare = server.root / f"{name}.git"
    git("clone", "-q", "--bare", str(work), str(bare), cwd=source.parent)
    git("update-server-info", cwd=bare)
    return f"{server.url}/{name}.git"


def arch_files(node, image: str, path: str) -> str:
    return str(node.podman("run", "--rm", image, "cat", path).stdout)


def test_contexts_from_an_http_tarball_and_a_git_repository(
    podman_node, make_context, run_imgfront, emulation_ready, file_server, busybox_bins, tmp_path
) -> None:
    containerfile = BUSYBOX_CONTAINERFILE + "COPY from-* /\n"
    url = served_tarball(file_server, busybox_bins, containerfile, f"ctx-{podman_node.version}.tar.gz")
    tarball = run_imgfront(
        ["build", "--platform", "linux/amd64,linux/arm64", "-t", "localhost/from-url:1", url], podman_node.env
    )
    assert tarball.returncode == 0, tarball.stderr
    podman_node.podman("manifest", "inspect", "localhost/from-url:1")

    source = make_context(containerfile, {"from-git": "git\n"})
    repo = served_repository(file_server, source, f"repo-{podman_node.version}")
    iid = tmp_path / "iid"
    git = run_imgfront(["build", "--platform", "linux/arm64", "--iidfile", iid, f"{repo}#main:sub"], podman_node.env)
    assert git.returncode == 0, git.stderr
    image = iid.read_text().strip()
    assert arch_files(podman_node, image, "/from-git") == "git\n"  # run: under qemu, an arm64 image
    assert podman_node.podman("image", "inspect", "--format", "{{.Architecture}}", image).stdout.strip() == "arm64"

    missing = run_imgfront(["build", f"{repo}#no-such-branch"], podman_node.env)
    assert missing.returncode == 2
    assert missing.stderr.startswith(f"imgfront: could not fetch the git context {repo}#no-such-branch: ")
    gone = run_imgfront(["build", f"{file_server.url}/nothing.tar"], podman_node.env)
    assert (gone.returncode, gone.stderr.splitlines()[0]) == (
        2,
        f"imgfront: could not fetch the build context {file_server.url}/nothing.tar: HTTP 404",
    )


def test_containerfile_from_standard_input_and_an_ignorefile(podman_node, make_context, run_imgfront, tmp_path) -> None:
    ctx = make_context("FROM scratch\n", {"kept": "k\n", "dropped": "d\n", "secret.key": "s\n"})
    (ctx / ".containerignore").write_text("kept\n")  # replaced by --ignorefile: kept is sent
    ignore = tmp_path / "build.ignore"
    ignore.write_text("dropped\n*.key\n")
    iid = tmp_path / "iid"
    containerfile = BUSYBOX_CONTAINERFILE + "COPY . /ctx/\n"
    result = run_imgfront(
        ["build", "-f", "-", "--ignorefile", ignore, "--iidfile", iid, ctx], podman_node.env, input=containerfile
    )
    assert result.returncode == 0, result.stderr
    listing = podman_node.podman("run", "--rm", iid.read_text().strip(), "ls", "/ctx").stdout.split()
    assert "kept" in listing and "dropped" not in listing and "secret.key" not in listing

    missing = run_imgfront(["build", "--ignorefile", tmp_path / "nope", ctx], podman_node.env)
    assert (missing.returncode, missing.stderr.splitlines()) == (
        2,
        [f"imgfront: --ignorefile {tmp_path}/nope: no such file"],
    )


BOTH = "linux/amd64,linux/arm64"
NAMED = BUSYBOX_CONTAINERFILE + (
    "COPY --from=extra /data /from-folder\n"
    "RUN --mount=from=extra,target=/m cat /m/data > /mounted\n"
    "COPY --from=base /built-on /from-image\n"
    "COPY --from=remote /from-tarball /from-url\n"
)


def named_contexts_left(node) -> list[str]:
    listed = node.podman("images", "-a", "-q", "--filter", "label=imgfront.named-context").stdout.split()
    return [str(i) for i in listed]


def test_named_contexts_from_a_folder_an_image_and_a_url_on_every_platform(
    podman_node, make_context, run_imgfront, emulation_ready, file_server, busybox_bins, request
) -> None:
    base = make_context(BUSYBOX_CONTAINERFILE + "RUN uname -m > /built-on\n")
    built = run_imgfront(
        ["build", "--platform", "linux/amd64,linux/arm64", "-t", "localhost/named-base:1", base], podman_node.env
    )
    assert built.returncode == 0, built.stderr  # a list: each platform's build takes its own instance
    # Outside /tmp, which the podman 5.x test node shares with the host: that node cannot see this path, as a
    # remote node cannot, so the folder reaches it only as imgfront sends it.
    extra = Path(tempfile.mkdtemp(prefix="imgfront-named-", dir="/var/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(extra, ignore_errors=True))
    (extra / "data").write_text("from the folder\n")
    url = served_tarball(file_server, busybox_bins, "FROM scratch\n", f"named-{podman_node.version}.tar.gz")
    result = run_imgfront(
        [
            *("build", "--platform", "linux/amd64,linux/arm64", "-t", "localhost/named:1"),
            *("--build-context", f"extra={extra}", "--build-context", "base=docker-image://localhost/named-base:1"),
            *("--build-context", f"remote={url}", make_context(NAMED)),
        ],
        podman_node.env,
    )
    assert result.returncode == 0, result.stderr
    for platform, machine in (("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")):
        image = ["--platform", platform, "localhost/named:1"]
        files = podman_node.podman("run", "--rm", *image, "cat", "/from-folder", "/mounted", "/from-url").stdout
        assert files == "from the folder\nfrom the folder\ntarball\n"
        assert podman_node.podman("run", "--rm", *image, "cat", "/from-image").stdout == f"{machine}\n"
    assert named_contexts_left(podman_node) == []  # the folder's images on the node went with the build


def test_two_runs_at_once_with_one_folder_context_and_a_failed_one_leave_no_image_of_it(
    podman_node, make_context, run_imgfront, emulation_ready, tmp_path
) -> None:
    """Podman 4.3's layer cache would build one run's folder image on the other's; each run removes its own."""
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "data").write_text("shared\n")
    ctx = make_context(BUSYBOX_CONTAINERFILE + "COPY --from=extra /data /data\n")
    extra_arg = f"extra={extra}"
    runs = [
        subprocess.Popen(
            imgfront_cmd(
                "build", "--platform", BOTH, "-t", f"localhost/named-twice:{n}", "--build-context", extra_arg, ctx
            ),
            env=podman_node.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in (1, 2)
    ]
    errors = [run.communicate(timeout=300)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], errors
    for n in (1, 2):
        for platform in ("linux/amd64", "linux/arm64"):
            image = ["--platform", platform, f"localhost/named-twice:{n}"]
            assert podman_node.podman("run", "--rm", *image, "cat", "/data").stdout == "shared\n"
    failing = make_context(BUSYBOX_CONTAINERFILE + "COPY --from=extra /data /data\nRUN exit 3\n")
    failed = run_imgfront(["build", "--build-context", extra_arg, failing], podman_node.env)
    assert failed.returncode == 1, failed.stderr
    assert named_contexts_left(podman_node) == []


def test_named_context_refusals(podman_node, dockerd, make_context, run_imgfront, tmp_path) -> None:
    ctx = make_context(BUSYBOX_CONTAINERFILE)
    cases = [
        (["--build-context", "nameonly"], "imgfront: invalid --build-context 'nameonly'"),
        (["--build-context", f"x={tmp_path}/nope"], f"imgfront: --build-context x: {tmp_path}/nope is not a folder"),
        (
            ["--build-context", f"x={tmp_path}", "--build-context", f"x={tmp_path}"],
            "imgfront: --build-context x is given twice",
        ),
        (
            ["--no-local", "--node", f"docker+{dockerd.url}", "--build-context", f"x={tmp_path}"],
            "imgfront: --build-context is not supported on docker nodes",
        ),
    ]
    for args, first in cases:
        result = run_imgfront(["build", *args, ctx], podman_node.env)
        assert result.returncode == 2, result.stderr
        assert result.stderr.splitlines()[0].startswith(first), result.stderr
