"""The output types of `--output type=...`: one class each, in one registry that parsing and help are made from.

The writers are imported by each type's `write` only: parsing and `--help` (start-up) need just the table.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from imgfront.errors import UsageError
from imgfront.platforms import Platform

if TYPE_CHECKING:
    from imgfront.images.blobs import BlobStore, Descriptor


@dataclass(frozen=True)
class Staged:
    """Every platform's image in one blob store, the names given with -t, and the images' attestations."""

    store: BlobStore
    images: tuple[Descriptor, ...]  # manifests, each with its platform
    tags: tuple[str, ...]
    # Artifact manifests (images/artifacts.py) by the digest of the manifest they refer to. The layout and
    # oci-archive outputs carry them; docker-archive and the filesystem outputs have no place for them.
    artifacts: Mapping[str, tuple[Descriptor, ...]] = field(default_factory=dict)


class OutputType:
    """One kind of output: its name, the keys it takes, and how it writes itself to a new path."""

    name: ClassVar[str]
    keys: ClassVar[tuple[str, ...]] = ("dest",)
    directory: ClassVar[bool] = False  # dest is a folder, else a file
    carries_artifacts: ClassVar[bool] = False  # writes Staged.artifacts (attestations) beside the images
    help: ClassVar[str]

    def check_dest(self, dest: Path) -> None:
        """Refuse, before any build, a dest this output must not replace."""
        if self.directory:
            if dest.exists() and (not dest.is_dir() or (any(dest.iterdir()) and not self.replaceable(dest))):
                raise UsageError(
                    f"--output type={self.name}: {dest} exists and is not empty", hint=f"{self.help}; remove it first"
                )
        elif dest.is_dir():
            raise UsageError(f"--output type={self.name}: {dest} is a folder", hint="dest names the file to write")

    def replaceable(self, dest: Path) -> bool:
        """Whether a non-empty folder is this output's own, from an earlier build, and may be replaced."""
        return False

    def write(self, staged: Staged, target: Path) -> None:
        raise NotImplementedError


class ImageOutput(OutputType):
    name = "image"
    keys = ()
    help = "the manifest list named by -t, in local podman storage (the default)"


class OciLayoutOutput(OutputType):
    name = "oci-layout"
    directory = True
    help = "an OCI image layout folder; an earlier layout there is replaced"
    carries_artifacts = True

    def replaceable(self, dest: Path) -> bool:
        return (dest / "oci-layout").is_file()

    def write(self, staged: Staged, target: Path) -> None:
        from imgfront.outputs.layout import write_layout

        write_layout(staged.store, staged.images, target, staged.artifacts)


class OciArchiveOutput(OutputType):
    name = "oci-archive"
    help = "the OCI image layout as one tar file"
    carries_artifacts = True

    def write(self, staged: Staged, target: Path) -> None:
        from imgfront.outputs.layout import tar_directory, write_layout

        with tempfile.TemporaryDirectory(prefix=".layout-", dir=staged.store.root) as folder:
            write_layout(staged.store, staged.images, Path(folder) / "layout", staged.artifacts)
            tar_directory(Path(folder) / "layout", target)


class DockerArchiveOutput(OutputType):
    name = "docker-archive"
    help = "a tar for `docker load`, one image per platform"

    def write(self, staged: Staged, target: Path) -> None:
        from imgfront.outputs.layout import write_docker_archive

        write_docker_archive(staged.store, staged.images, staged.tags, target)


class RootfsOutput(OutputType):
    name = "rootfs"
    directory = True
    help = "each platform's flattened filesystem in DEST/<os>_<arch>[_<variant>]/; an earlier one is replaced"

    def replaceable(self, dest: Path) -> bool:
        def platform_folder(path: Path) -> bool:
            try:
                return path.is_dir() and Platform.parse(path.name.replace("_", "/")).slug == path.name
            except UsageError:
                return False

        return all(platform_folder(path) for path in dest.iterdir())

    def write(self, staged: Staged, target: Path) -> None:
        from imgfront.outputs.rootfs import write_rootfs

        target.mkdir()
        for image in staged.images:
            assert image.platform is not None
            write_rootfs(staged.store, image, target / image.platform.slug)


class LocalOutput(RootfsOutput):
    """buildx's `type=local`: one platform's filesystem in DEST itself; with several, one folder each as rootfs."""

    name = "local"
    help = (
        "the filesystem in DEST (buildx's local exporter); with several platforms, DEST/<os>_<arch>[_<variant>]/ "
        "each; an earlier multi-platform one is replaced"
    )

    def write(self, staged: Staged, target: Path) -> None:
        if len(staged.images) != 1:
            super().write(staged, target)
            return
        from imgfront.outputs.rootfs import write_rootfs

        write_rootfs(staged.store, staged.images[0], target)


class TarOutput(OutputType):
    """buildx's `type=tar`: what `local` writes, as one tar file."""

    name = "tar"
    help = "the filesystem as one tar file (buildx's tar exporter); with several platforms, a folder each inside"

    def check_dest(self, dest: Path) -> None:
        if dest.name == "-":
            raise UsageError("--output type=tar: dest=- (standard output) is not supported", hint="name a file")
        super().check_dest(dest)

    def write(self, staged: Staged, target: Path) -> None:
        from imgfront.outputs.layout import tar_directory

        with tempfile.TemporaryDirectory(prefix=".tar-", dir=staged.store.root) as folder:
            tree = Path(folder) / "tree"
            LocalOutput().write(staged, tree)
            tar_directory(tree, target)


OUTPUT_TYPES: dict[str, OutputType] = {
    kind.name: kind()
    for kind in (
        ImageOutput,
        OciLayoutOutput,
        OciArchiveOutput,
        DockerArchiveOutput,
        RootfsOutput,
        LocalOutput,
        TarOutput,
    )
}


@dataclass(frozen=True)
class OutputSpec:
    type: str
    dest: Path | None = None

    @property
    def kind(self) -> OutputType:
        return OUTPUT_TYPES[self.type]

    def to_json(self) -> dict[str, str | None]:
        return {"type": self.type, "dest": os.fspath(self.dest) if self.dest else None}


def parse_output(text: str) -> OutputSpec:
    """`type=NAME[,dest=PATH]`; every mistake is one line naming what is allowed."""
    fields: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value:
            raise UsageError(f"invalid --output {text!r}: write it as type=TYPE,dest=PATH")
        if key in fields:
            raise UsageError(f"invalid --output {text!r}: {key} is given twice")
        fields[key] = value
    name = fields.pop("type", None)
    if name is None:
        raise UsageError(f"invalid --output {text!r}: type= is missing (one of {', '.join(OUTPUT_TYPES)})")
    if name not in OUTPUT_TYPES:
        raise UsageError(f"unknown output type {name!r}: use one of {', '.join(OUTPUT_TYPES)}")
    kind = OUTPUT_TYPES[name]
    for key in fields:
        if key not in kind.keys:
            takes = f"it takes {', '.join(kind.keys)}" if kind.keys else "it takes no other key"
            raise UsageError(f"--output type={name} does not take {key}= ({takes})")
    if "dest" in kind.keys and "dest" not in fields:
        raise UsageError(f"--output type={name} needs dest=PATH ({kind.help})")
    dest = Path(fields["dest"]).absolute() if "dest" in fields else None
    if dest is not None:
        kind.check_dest(dest)
    return OutputSpec(name, dest)


def parse_outputs(texts: Sequence[str]) -> tuple[OutputSpec, ...]:
    """Repeated --output values; two outputs cannot share a dest, and image counts once."""
    specs: list[OutputSpec] = []
    for text in texts:
        spec = parse_output(text)
        if spec in specs and spec.dest is None:
            continue
        if spec.dest is not None and any(s.dest is not None and same_file(s.dest, spec.dest) for s in specs):
            raise UsageError(f"two --output values write to {spec.dest.resolve()}")
        specs.append(spec)
    return tuple(specs)


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file once `..` and symlinks (of the parents too) are followed."""
    return a.resolve() == b.resolve()


def wants_image(specs: Sequence[OutputSpec]) -> bool:
    """No --output means type=image."""
    return not specs or any(s.type == ImageOutput.name for s in specs)
