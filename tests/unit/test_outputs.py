"""Output types without an engine: parsing --output, whiteouts, and layouts assembled from synthetic archives."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from imgfront.cli.main import main
from imgfront.errors import EngineError, UsageError
from imgfront.images.blobs import OCI_INDEX, OCI_MANIFEST
from imgfront.model import BuildReport
from imgfront.outputs import OutputSpec, parse_outputs, wants_image
from imgfront.outputs.rootfs import apply_layer
from imgfront.outputs.write import write_outputs
from imgfront.platforms import Platform

AMD64, ARM64 = Platform.parse("linux/amd64"), Platform.parse("linux/arm64")


def tar_bytes(files: Mapping[str, bytes | None], symlinks: Mapping[str, str] | None = None) -> bytes:
    """A tar of files (None: a directory) and symlinks, in the order given."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return out.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def config_for(arch: str, layers: list[bytes]) -> bytes:
    diff_ids = [f"sha256:{sha(layer)}" for layer in layers]
    return json.dumps(
        {"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    ).encode()


def docker_archive(arch: str, layers: list[bytes]) -> bytes:
    """Docker's save format; a repeated layer is a symlink to the first, as `docker save` writes it."""
    config = config_for(arch, layers)
    files: dict[str, bytes | None] = {f"{sha(config)}.json": config}
    symlinks, names = {}, []
    for i, layer in enumerate(layers):
        name = f"v1id{i}/layer.tar"
        first = next((n for n, data in files.items() if data == layer), None)
        if first is None:
            files[name] = layer
        else:
            symlinks[name] = f"../{first}"
        names.append(name)
    manifest = [{"Config": f"{sha(config)}.json", "RepoTags": None, "Layers": names}]
    return tar_bytes({**files, "manifest.json": json.dumps(manifest).encode()}, symlinks)


def oci_archive(arch: str, layers: list[bytes]) -> bytes:
    config = config_for(arch, layers)
    blob = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": f"sha256:{sha(config)}"}
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {**blob, "size": len(config)},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": f"sha256:{sha(x)}", "size": len(x)}
                for x in layers
            ],
        }
    ).encode()
    index = {"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST, "digest": f"sha256:{sha(manifest)}"}]}
    files: dict[str, bytes | None] = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": b""}
    files["index.json"] = json.dumps(index).encode()
    for data in (manifest, config, *layers):
        files[f"blobs/sha256/{sha(data)}"] = data
    return tar_bytes(files)


def chunks(data: bytes, size: int = 7) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def report(platform: Platform, node: str = "local") -> BuildReport:
    return BuildReport(image_id=platform.slug, digest="", platform=platform, node=node, seconds=1.0)


# --- parsing ---------------------------------------------------------------------------------------


def test_output_types_parse_with_absolute_dests(tmp_path: Path) -> None:
    specs = parse_outputs(["type=image", f"type=oci-layout,dest={tmp_path}/l", "type=rootfs,dest=rel"])
    assert [s.type for s in specs] == ["image", "oci-layout", "rootfs"]
    assert specs[1].dest == tmp_path / "l"
    assert specs[2].dest is not None and specs[2].dest.is_absolute()
    assert specs[1].to_json() == {"type": "oci-layout", "dest": str(tmp_path / "l")}
    assert wants_image(()) and wants_image(specs) and not wants_image(specs[1:])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("type=zip,dest=x", "unknown output type 'zip': use one of image, oci-layout, oci-archive"),
        ("type=oci-layout", "--output type=oci-layout needs dest=PATH"),
        ("dest=x", "type= is missing"),
        ("type=image,dest=x", "--output type=image does not take dest="),
        ("type=rootfs,dest=x,compression=gzip", "does not take compression= (it takes dest)"),
        ("oci-layout", "write it as type=TYPE,dest=PATH"),
    ],
)
def test_bad_outputs_are_usage_errors_naming_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_outputs([text])


def test_layout_dest_must_be_empty_or_an_earlier_layout(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="exists and is not empty"):
        parse_outputs([f"type=oci-layout,dest={tmp_path}/full"])
    with pytest.raises(UsageError, match="exists and is not empty"):
        parse_outputs([f"type=rootfs,dest={tmp_path}/full"])
    (tmp_path / "layout").mkdir()
    (tmp_path / "layout" / "oci-layout").write_text("{}")
    (tmp_path / "rootfs" / "linux_arm64").mkdir(parents=True)
    (tmp_path / "empty").mkdir()
    parse_outputs([f"type=oci-layout,dest={tmp_path}/layout", f"type=rootfs,dest={tmp_path}/rootfs"])
    parse_outputs([f"type=oci-layout,dest={tmp_path}/empty"])
    with pytest.raises(UsageError, match="is a folder"):
        parse_outputs([f"type=oci-archive,dest={tmp_path}/empty"])
    with pytest.raises(UsageError, match="two --output values write to"):
        parse_outputs([f"type=oci-archive,dest={tmp_path}/a", f"type=docker-archive,dest={tmp_path}/a"])


def test_two_outputs_into_one_file_by_dots_or_a_symlinked_parent_are_refused(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "out")
    with pytest.raises(UsageError, match="two --output values write to"):
        parse_outputs(
            [f"type=oci-archive,dest={tmp_path}/out/a.tar", f"type=docker-archive,dest={tmp_path}/out/../out/a.tar"]
        )
    with pytest.raises(UsageError, match="two --output values write to"):
        parse_outputs(
            [f"type=oci-archive,dest={tmp_path}/out/a.tar", f"type=docker-archive,dest={tmp_path}/link/a.tar"]
        )
    parse_outputs([f"type=oci-archive,dest={tmp_path}/out/a.tar", f"type=docker-archive,dest={tmp_path}/out/b.tar"])


def test_cli_bad_output_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["build", "--output", "type=zip,dest=x", "."])
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "imgfront: unknown output type 'zip': use one of "
        "image, oci-layout, oci-archive, docker-archive, rootfs, local, tar"
    ]


# --- whiteouts -------------------------------------------------------------------------------------


def apply(root: Path, files: Mapping[str, bytes | None], symlinks: Mapping[str, str] | None = None) -> None:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes(files, symlinks))) as layer:
        apply_layer(layer, root)


def test_whiteouts_remove_lower_files_and_opaque_dirs_hide_lower_content(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    apply(root, {"etc/": None, "etc/gone": b"1", "etc/kept": b"2", "d/": None, "d/old": b"3", "d/sub/x": b"4"})
    apply(
        root,
        {"etc/.wh.gone": b"", "d/": None, "d/.wh..wh..opq": b"", "d/new": b"5", "etc/kept": b"6"},
        {"bin/sh": "/bin/busybox"},
    )
    assert sorted(p.name for p in (root / "etc").iterdir()) == ["kept"]
    assert (root / "etc" / "kept").read_bytes() == b"6"
    assert sorted(p.name for p in (root / "d").iterdir()) == ["new"]
    assert (root / "bin" / "sh").is_symlink()
    assert not any(p.name.startswith(".wh.") for p in root.rglob("*"))


def test_a_file_replacing_a_symlink_does_not_write_through_it(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.write_text("host")
    apply(root, {}, {"link": str(outside)})
    apply(root, {"link": b"image"})
    assert outside.read_text() == "host"
    assert (root / "link").read_bytes() == b"image" and not (root / "link").is_symlink()


def test_a_layer_cannot_write_through_a_symlink_out_of_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    apply(root, {}, {"etc": str(tmp_path)})
    with pytest.raises(EngineError, match="out of the image"):
        apply(root, {"etc/evil": b"x"})
    assert not (tmp_path / "evil").exists()


# --- layouts from synthetic archives ---------------------------------------------------------------


def test_docker_and_oci_archives_make_one_layout_with_every_platform(tmp_path: Path) -> None:
    shared, amd_top, arm_top = tar_bytes({"a": b"shared"}), tar_bytes({"b": b"amd"}), tar_bytes({"b": b"arm"})
    archives = {
        "amd": docker_archive("amd64", [shared, amd_top, shared]),
        "arm": oci_archive("arm64", [shared, arm_top]),
    }
    layout = tmp_path / "out" / "layout"
    write_outputs(
        [OutputSpec("oci-layout", layout)],
        [report(AMD64, "docker"), report(ARM64)],
        lambda r: chunks(archives["amd" if r.platform == AMD64 else "arm"]),
        (),
    )
    top = json.loads((layout / "index.json").read_text())
    assert [m["mediaType"] for m in top["manifests"]] == [OCI_INDEX]
    blobs = layout / "blobs" / "sha256"
    index = json.loads((blobs / top["manifests"][0]["digest"][7:]).read_bytes())
    assert [m["platform"] for m in index["manifests"]] == [
        {"os": "linux", "architecture": "amd64"},
        {"os": "linux", "architecture": "arm64", "variant": "v8"},
    ]
    for descriptor in index["manifests"]:
        manifest = json.loads((blobs / descriptor["digest"][7:]).read_bytes())
        assert manifest["mediaType"] == OCI_MANIFEST
        for blob in [manifest["config"], *manifest["layers"]]:
            assert sha((blobs / blob["digest"][7:]).read_bytes()) == blob["digest"][7:]
            assert blob["size"] == (blobs / blob["digest"][7:]).stat().st_size
    amd = json.loads((blobs / index["manifests"][0]["digest"][7:]).read_bytes())
    assert [layer["digest"][7:] for layer in amd["layers"]] == [sha(shared), sha(amd_top), sha(shared)]
    assert sorted(p.name for p in layout.parent.iterdir()) == ["layout"]  # nothing temporary left beside


def test_docker_archive_output_suffixes_tags_per_platform(tmp_path: Path) -> None:
    layers = [tar_bytes({"a": b"1"})]
    target = tmp_path / "img.tar"
    write_outputs(
        [OutputSpec("docker-archive", target)],
        [report(AMD64), report(ARM64)],
        lambda r: chunks(oci_archive(r.platform.arch.value, layers)),
        ("localhost/app:1",),
    )
    with tarfile.open(target) as archive:
        entries = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert [e["RepoTags"] for e in entries] == [["localhost/app:1-linux_amd64"], ["localhost/app:1-linux_arm64"]]
        for entry in entries:
            config = json.load(archive.extractfile(entry["Config"]))  # type: ignore[arg-type]
            assert [f"sha256:{sha(archive.extractfile(n).read())}" for n in entry["Layers"]] == config["rootfs"][
                "diff_ids"
            ]


def test_failed_export_leaves_the_previous_output_as_it_was(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    layout.mkdir()
    (layout / "oci-layout").write_text("previous")

    def broken(r: BuildReport) -> Iterator[bytes]:
        yield b"not a tar at all" * 100

    with pytest.raises(EngineError, match="exporting the image failed"):
        write_outputs([OutputSpec("oci-layout", layout)], [report(AMD64)], broken, ())
    assert [p.name for p in tmp_path.iterdir()] == ["layout"]
    assert (layout / "oci-layout").read_text() == "previous"


def test_rootfs_output_has_a_folder_per_platform(tmp_path: Path) -> None:
    layers = [tar_bytes({"etc/": None, "etc/x": b"1"}), tar_bytes({"etc/.wh.x": b"", "y": b"2"})]
    rootfs = tmp_path / "rootfs"
    write_outputs(
        [OutputSpec("rootfs", rootfs)],
        [report(AMD64), report(ARM64)],
        lambda r: chunks(docker_archive(r.platform.arch.value, layers)),
        (),
    )
    assert sorted(p.name for p in rootfs.iterdir()) == ["linux_amd64", "linux_arm64"]
    assert list((rootfs / "linux_arm64" / "etc").iterdir()) == []
    assert (rootfs / "linux_amd64" / "y").read_bytes() == b"2"


def test_local_output_is_the_root_for_one_platform_and_a_folder_each_for_several(tmp_path: Path) -> None:
    layers = [tar_bytes({"etc/": None, "etc/x": b"1"})]
    one, several = tmp_path / "one", tmp_path / "several"
    export = lambda r: chunks(docker_archive(r.platform.arch.value, layers))  # noqa: E731
    write_outputs([OutputSpec("local", one)], [report(ARM64)], export, ())
    write_outputs([OutputSpec("local", several)], [report(AMD64), report(ARM64)], export, ())
    assert (one / "etc" / "x").read_bytes() == b"1"
    assert sorted(p.name for p in several.iterdir()) == ["linux_amd64", "linux_arm64"]
    with pytest.raises(UsageError, match="one exists and is not empty"):
        parse_outputs([f"type=local,dest={one}"])  # never written into: imgfront cannot tell it is its own
    assert parse_outputs([f"type=local,dest={several}"])[0].dest == several  # its own folders: replaced


def test_tar_output_holds_what_local_writes(tmp_path: Path) -> None:
    layers = [tar_bytes({"etc/": None, "etc/x": b"1"})]
    export = lambda r: chunks(docker_archive(r.platform.arch.value, layers))  # noqa: E731
    one, several = tmp_path / "one.tar", tmp_path / "several.tar"
    write_outputs([OutputSpec("tar", one), OutputSpec("tar", several)], [report(AMD64)], export, ())
    write_outputs([OutputSpec("tar", several)], [report(AMD64), report(ARM64)], export, ())
    with tarfile.open(one) as archive:
        assert "etc/x" in archive.getnames()
    with tarfile.open(several) as archive:
        assert {"linux_amd64/etc/x", "linux_arm64/etc/x"} <= set(archive.getnames())
    with pytest.raises(UsageError, match=re.escape("dest=- (standard output) is not supported")):
        parse_outputs(["type=tar,dest=-"])


def test_load_is_type_image_besides_other_outputs(tmp_path: Path) -> None:
    from imgfront.run.invocation import resolve

    given = {"context": str(tmp_path), "load": True, "output": [f"type=tar,dest={tmp_path}/x.tar"]}
    assert [s.type for s in resolve(given).options.outputs] == ["tar", "image"]
    assert [s.type for s in resolve({"context": str(tmp_path), "load": True}).options.outputs] == ["image"]
