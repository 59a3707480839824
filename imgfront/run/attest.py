"""Attestations of a build (--sbom, --provenance): made once per platform, attached wherever its image goes.

Each platform's image is read from a BlobStore: the normalised one in reproducible mode, else an export
from the node that built it. The SBOM lists what that image holds, with the packages of every build stage
the final stage copies from (each built again, from the cache, with `target=<stage>` on the same node). The
provenance statement is made for each subject it is attached to: a registry's manifest digest differs from
local storage's when podman's push compresses the layers again.

Where they go (docs/attestations.md):
- file outputs (`type=oci-layout`, `type=oci`): artifacts in the layout, by `subject` (outputs/layout.py);
- the registry on a push: the referrers API, or the `sha256-<hex>` tag (oci/referrers.py);
- local storage: kept under the user's data folder by the local manifest digest (images/kept.py).
"""

from __future__ import annotations

import datetime
import hashlib
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from imgfront import __version__
from imgfront.engines.base import (
    BuildReport,
    BuildRequest,
    Cancellation,
    ImageBuilder,
    NodeInfo,
    PackedContext,
    SilentEvents,
)
from imgfront.engines.docker_scratch import instructions
from imgfront.errors import EngineError, ImgfrontError
from imgfront.images.archive import archive_chunks
from imgfront.images.artifacts import KIND_ANNOTATION, KINDS, Attestation, add_artifact, document_digest
from imgfront.images.blobs import OCI_MANIFEST, BlobStore, Descriptor
from imgfront.images.kept import KeptAttestations
from imgfront.images.normalise import normalise
from imgfront.images.provenance import Base, BuildFacts, provenance_statement
from imgfront.images.sbom import image_sbom
from imgfront.oci.client import open_registry
from imgfront.oci.push import Pushed, PushOptions
from imgfront.oci.references import parse_reference
from imgfront.oci.referrers import push_artifacts
from imgfront.platforms import Platform
from imgfront.run.reproducible import export_into

_SCRATCH = "scratch"
_FROM_FLAG = re.compile(r"^--from=(.+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Stage:
    name: str  # as --target takes it
    base: str  # what its FROM names


def stages(containerfile: str, target: str | None = None) -> tuple[list[Stage], list[str]]:
    """The stages before the final one (the target's, else the last) that it copies from, and the images its
    stages build on (not scratch, not another stage): the SBOM's build stages and the provenance's bases."""
    named: dict[str, Stage] = {}
    bases: list[str] = []
    copied: list[str] = []
    final: list[str] = []
    try:
        commands = instructions(containerfile)
    except (ValueError, UnicodeError):
        return [], []
    for command, words, _, _ in commands:
        if command == "from":
            rest = [w for w in words if not w.startswith("--")]
            if not rest:
                continue
            if target is not None and final and final[0] == target.lower():
                break  # the stages after the target are not built
            image = rest[0]
            alias = rest[2] if len(rest) == 3 and rest[1].lower() == "as" else str(len(named))
            if image.lower() != _SCRATCH and image.lower() not in named and "$" not in image:
                bases.append(image)
            stage = Stage(alias, image)
            named[alias.lower()] = stage
            final = [alias.lower()]
            copied = []
        elif command in ("copy", "add"):
            for word in words:
                match = _FROM_FLAG.match(word)
                if match:
                    copied.append(match.group(1).lower())
    names = list(named)
    found = []
    for source in dict.fromkeys(copied):
        key = names[int(source)] if source.isdigit() and int(source) < len(names) else source
        copied_stage = named.get(key)
        # --target takes a name, so an unnamed stage cannot be built alone; one named twice (by name and index)
        # is scanned once.
        if (
            copied_stage is not None
            and key != final[0]
            and not copied_stage.name.isdigit()
            and copied_stage not in found
        ):
            found.append(copied_stage)
    return found, list(dict.fromkeys(bases))


@dataclass
class Made:
    """One platform's attestations: the SBOM's bytes, and the facts each subject's provenance is made of."""

    platform: Platform
    sbom: bytes | None = None
    facts: BuildFacts | None = None
    secrets: tuple[str, ...] = ()

    def for_subject(self, name: str, digest: str) -> list[Attestation]:
        found = []
        if self.sbom is not None:
            found.append(Attestation("sbom", KINDS["sbom"], self.sbom))
        if self.facts is not None:
            statement = provenance_statement(self.facts, name, digest, self.secrets)
            found.append(Attestation("provenance", KINDS["provenance"], statement))
        return found


@dataclass(frozen=True)
class AttestRequest:
    """What the attestations of one build need to know of it, from run/build.py."""

    sbom: bool
    provenance: str | None  # "min" | "max"
    tags: tuple[str, ...]
    source_date_epoch: int | None
    build_args: Mapping[str, str]
    secrets: tuple[bytes, ...]
    secret_ids: tuple[str, ...]
    target: str | None
    named_contexts: tuple[str, ...]
    containerfiles: Mapping[Platform, str]  # each platform's Containerfile text
    packed: Mapping[Platform, PackedContext]
    requests: Callable[[BuildReport], BuildRequest]  # the request a report's build was made with
    started: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.UTC))


class Attester:
    """Makes the attestations, then attaches them to the outputs, the pushed names and local storage."""

    def __init__(
        self,
        request: AttestRequest,
        store: BlobStore,
        builders: Mapping[str, ImageBuilder],
        infos: Mapping[str, NodeInfo],
        note: Callable[[str], None] = print,
    ) -> None:
        self.request = request
        self.store = store
        self.builders = builders
        self.infos = infos
        self.note = note
        self.made: dict[Platform, Made] = {}
        self.images: dict[Platform, Descriptor] = {}  # each platform's image in the store
        self.records: list[dict[str, Any]] = []  # the metadata file's imgfront.attestations
        self._invocation = uuid.uuid4().hex

    # -- making them --------------------------------------------------------------------------------

    def export(self, reports: Sequence[BuildReport]) -> dict[str, Descriptor]:
        """Each report's image exported from its node into the store (all at once), by image id."""

        def one(report: BuildReport) -> tuple[str, Descriptor]:
            return report.image_id, self._export(report)

        with ThreadPoolExecutor(max_workers=max(1, len(reports))) as pool:
            return dict(pool.map(one, reports))

    def _export(self, report: BuildReport) -> Descriptor:
        return export_into(self.store, self.builders[report.node], report)

    def make(self, pairs: Sequence[tuple[BuildReport, Descriptor]]) -> None:
        """Every platform's attestations, at once: each build as its node made it, with its image in the store
        (the normalised one in reproducible mode)."""
        with ThreadPoolExecutor(max_workers=max(1, len(pairs))) as pool:
            for (report, image), made in zip(pairs, pool.map(lambda p: self._make(*p), pairs), strict=True):
                self.made[report.platform] = made
                self.images[report.platform] = image

    def _make(self, report: BuildReport, image: Descriptor) -> Made:
        r = self.request
        text = r.containerfiles[report.platform]
        copied, bases = stages(text, r.target)
        made = Made(report.platform, secrets=tuple(s.decode(errors="replace") for s in r.secrets))
        if r.sbom:
            scanned = [(stage.name, self.store, self._stage_image(report, stage)) for stage in copied]
            made.sbom = image_sbom(
                self.store,
                image,
                name=r.tags[0] if r.tags else f"image-{report.platform.slug}",
                created=self._created(),
                tool=f"imgfront-{__version__}",
                stages=scanned,
            )
        if r.provenance:
            made.facts = self._facts(report, text, bases)
        what = " and ".join(k for k, v in (("SBOM", made.sbom), ("provenance", made.facts)) if v is not None)
        self.note(f"{report.platform}@{report.node}: {what} made")
        return made

    def _created(self) -> str:
        epoch = self.request.source_date_epoch
        when = datetime.datetime.fromtimestamp(epoch, datetime.UTC) if epoch is not None else self.request.started
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")

    def _stage_image(self, report: BuildReport, stage: Stage) -> Descriptor:
        """A stage the image copies from, built again from the cache on the report's node, and exported."""
        builder = self.builders[report.node]
        request = replace(self.request.requests(report), target=stage.name, no_cache=False, cache_to=())
        where = f"{report.platform}@{report.node}"
        try:
            built = builder.build(request, SilentEvents(), Cancellation())
        except ImgfrontError as e:
            raise EngineError(f"{where}: building stage {stage.name} for the SBOM failed: {e.message}") from e
        try:
            image = self._export(replace(built, platform=report.platform))
            epoch = self.request.source_date_epoch
            # Normalised as the image is, so that a reproducible build's SBOM names the same stage each time.
            return normalise(self.store, image, epoch) if epoch is not None else image
        finally:
            if built.created:
                try:
                    builder.remove_image(built.image_id, force=False)
                except ImgfrontError as e:
                    self.note(f"{where}: stage {stage.name}'s image {built.image_id[:12]} was left: {e.message}")

    def _facts(self, report: BuildReport, text: str, bases: Sequence[str]) -> BuildFacts:
        r = self.request
        packed = r.packed[report.platform]
        info = self.infos[report.node]
        builder = self.builders[report.node]
        resolved = []
        for base in bases:
            try:
                digest: str | None = builder.resolve_base(base, report.platform, pull="never")
            except ImgfrontError:
                digest = None  # an engine that cannot say (Docker), or a base named by a build arg
            resolved.append(Base(base, digest))
        epoch = r.source_date_epoch
        with packed.tar.open("rb") as tar:
            context = hashlib.file_digest(tar, "sha256").hexdigest()
        invocation = self._invocation
        if epoch is not None:  # the statement must not change from run to run
            invocation = hashlib.sha256(f"{context} {epoch}".encode()).hexdigest()[:32]
        return BuildFacts(
            platform=report.platform,
            containerfile=packed.containerfile,
            containerfile_digest=f"sha256:{hashlib.sha256(text.encode()).hexdigest()}",
            context_digest=f"sha256:{context}",
            node=report.node,
            engine=info.driver,
            engine_version=info.server_version,
            imgfront_version=__version__,
            invocation=invocation,
            build_args=dict(r.build_args),
            secret_ids=r.secret_ids,
            target=r.target,
            bases=tuple(resolved),
            named_contexts=r.named_contexts,
            started=r.started,
            finished=datetime.datetime.now(datetime.UTC),
            source_date_epoch=epoch,
            mode=r.provenance or "min",
        )

    # -- attaching them -----------------------------------------------------------------------------

    def _record(self, platform: Platform, subject: str, artifact: Descriptor, store: BlobStore, where: str) -> None:
        manifest = store.json(artifact.digest)
        self.records.append(
            {
                "platform": str(platform),
                "kind": (artifact.annotations or {}).get(KIND_ANNOTATION),
                "subject": subject,
                "artifact": artifact.digest,
                "document": document_digest(manifest),
                "where": where,
            }
        )

    def for_output(self, store: BlobStore, image: Descriptor) -> tuple[Descriptor, ...]:
        """What outputs/write.py calls for each staged image: its artifacts, added to the staged store."""
        assert image.platform is not None
        name = self.request.tags[0] if self.request.tags else f"image-{image.platform.slug}"
        artifacts = tuple(
            add_artifact(store, image, a) for a in self.made[image.platform].for_subject(name, image.digest)
        )
        for artifact in artifacts:
            self._record(image.platform, image.digest, artifact, store, "outputs")
        return artifacts

    def keep(self, reports: Sequence[BuildReport], kept: KeptAttestations | None = None) -> None:
        """Keep each image's attestations for local storage, by the manifest digest it has there."""
        kept = kept or KeptAttestations()
        for report in reports:
            if not report.digest:
                continue
            image = self.images[report.platform]
            size = image.size if image.digest == report.digest else 0  # local storage does not say its own size
            subject = Descriptor(image.media_type or OCI_MANIFEST, report.digest, size)
            name = self.request.tags[0] if self.request.tags else report.image_id
            for artifact in kept.add(subject, self.made[report.platform].for_subject(name, report.digest)):
                self._record(report.platform, report.digest, artifact, kept.store, "containers-storage")

    def attach(self, pushed: Sequence[Pushed], options: PushOptions) -> None:
        """Push each platform's artifacts next to its manifest in every repository pushed to (once each)."""
        done: set[tuple[str, str]] = set()
        for result in pushed:
            reference = parse_reference(result.name)
            with open_registry(reference, options.tls_verify, options.authfile) as client:
                for platform, digest in result.instances.items():
                    if (reference.repository, digest) in done or platform not in self.made:
                        continue
                    done.add((reference.repository, digest))
                    found = client.find_manifest(reference.path, digest)
                    if found is None:
                        raise EngineError(f"{result.name}: the registry lost {platform}'s manifest {digest}")
                    subject = Descriptor(found.media_type, digest, found.size)
                    name = f"{reference.domain}/{reference.path}"
                    artifacts = [
                        add_artifact(self.store, subject, a) for a in self.made[platform].for_subject(name, digest)
                    ]
                    push_artifacts(client, reference.path, self.store, artifacts)
                    for artifact in artifacts:
                        self._record(platform, digest, artifact, self.store, f"docker://{result.name}")
            self.note(f"{result.name}: attestations attached")

    def archive(self, report: BuildReport) -> Iterator[bytes]:
        """The exported image of a report, as an oci-archive stream (file outputs read it here, not again)."""
        path = self.store.root / f"{report.platform.slug}.out.tar"
        return archive_chunks(self.store, self.images[report.platform], path)
