"""One `imgfront build`: plan, build every platform, verify, and merge into a list, or leave nothing behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from imgfront.engines.base import (
    BuildReport,
    BuildRequest,
    Cancellation,
    ImageBuilder,
    ListInfo,
    NamedContext,
    NodeInfo,
    PackedContext,
)
from imgfront.engines.build_params import CACHE_ARG_LOOKUP_SINCE, version_tuple
from imgfront.engines.docker_scratch import read_containerfile
from imgfront.errors import (
    LOG_TAIL,
    BuildFailed,
    BuildInterrupted,
    ImgfrontError,
    Interrupted,
    PlatformBuildError,
    UsageError,
    signal_of,
)
from imgfront.images.blobs import BlobStore
from imgfront.model import Credentials, Preference, Secret
from imgfront.modes import PullPolicy, PushMode
from imgfront.oci.cache import args_inside_stages, cache_credentials, platform_repository
from imgfront.oci.push import Pushed, PushOptions, push_from_nodes, push_list, push_store
from imgfront.options import fit_engines
from imgfront.outputs import OutputSpec, wants_image
from imgfront.outputs.types import same_file
from imgfront.outputs.write import Export, write_outputs
from imgfront.platforms import Platform
from imgfront.run import context as build_context
from imgfront.run.attest import Attester, AttestRequest
from imgfront.run.context import ContextSource
from imgfront.run.lists import LocalListBuilder
from imgfront.run.metadata import metadata, write_metadata
from imgfront.run.plan import Assignment, Plan, UnbuildablePlatforms, make_plan
from imgfront.run.progress import Progress
from imgfront.run.reproducible import Normaliser, descriptors
from imgfront.run.scheduler import Outcome, run_plan
from imgfront.util import rundir, signals
from imgfront.util.files import write_atomically


@dataclass(frozen=True)
class BuildOptions:
    context: Path
    platforms: tuple[Platform, ...]
    tags: tuple[str, ...] = ()
    file: Path | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    pull: PullPolicy = PullPolicy.MISSING
    jobs: int | None = None
    keep_failed: bool = False
    cleanup: bool = False  # remove the images from remote nodes once they are home
    ignorefile: Path | None = None  # instead of the context's .containerignore / .dockerignore
    build_contexts: tuple[ContextSource, ...] = ()  # --build-context
    iidfile: Path | None = None
    metadata_file: Path | None = None
    # A compiled pipeline has one context and Containerfile per platform; they override context/file.
    contexts: Mapping[Platform, tuple[Path, Path]] = field(default_factory=dict)
    outputs: tuple[OutputSpec, ...] = ()  # --output; none means type=image
    push: PushOptions | None = None
    secrets: tuple[Secret, ...] = ()  # --secret, read on this host; their bytes never show in a repr
    # The registry build cache (--cache-from/--cache-to/--cache-ttl); the registry's TLS and auth file as for --push.
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    cache_ttl: str | None = None
    cache_tls_verify: bool | None = None
    cache_authfile: Path | None = None
    # The settings rows given (options.py's SETTING rows: --network, --ulimit, --squash...), by dest, as parsed;
    # every node's engine gets them as they are.
    settings: Mapping[str, object] = field(default_factory=dict)
    # Reproducible mode (--source-date-epoch, SOURCE_DATE_EPOCH, --reproducible): every image normalised for it.
    source_date_epoch: int | None = None
    # Attestations (--sbom, --provenance): an SBOM of each platform's image; provenance "min" or "max", or none.
    sbom: bool = False
    provenance: str | None = None

    @property
    def keeps_list(self) -> bool:
        """Whether the list is made in local storage: type=image, given or by default, or a push from here.

        Pushed from the nodes, only an explicit type=image brings the images home.
        """
        if self.push is not None and self.push.mode != PushMode.HERE:
            return any(s.type == "image" for s in self.outputs)
        return wants_image(self.outputs) or self.push is not None

    def source_for(self, platform: Platform) -> tuple[Path, Path | None]:
        return self.contexts.get(platform, (self.context, self.file))


@dataclass(frozen=True)
class BuildResult:
    plan: Plan
    reports: tuple[BuildReport, ...]
    image_list: ListInfo | None
    metadata: dict[str, object]


def automatic_args(target: Platform, build: Platform) -> dict[str, str]:
    return {**target.build_args("TARGET"), **build.build_args("BUILD")}


def _remove_built(outcomes: Sequence[Outcome], builders: Mapping[str, ImageBuilder]) -> None:
    """Remove the images these builds made themselves; one that existed before (a cached build's) stays."""
    for outcome in outcomes:
        if outcome.report is not None and outcome.report.created:
            # An image in use by a user's container stays, as podman would keep it.
            with contextlib.suppress(ImgfrontError):
                builders[outcome.report.node].remove_image(outcome.report.image_id, force=False)


def _failure_message(outcomes: Sequence[Outcome]) -> BuildFailed:
    failed = [o for o in outcomes if o.error is not None and not o.cancelled]
    failed = failed or [o for o in outcomes if o.error is not None]
    lines = []
    for o in failed:
        assert o.error is not None
        lines.append(o.error.message)
        tail = o.error.log_tail[-LOG_TAIL:] if isinstance(o.error, PlatformBuildError) else ()
        lines.extend(f"  | {line}" for line in tail)
    names = ", ".join(str(o.assignment.platform) for o in failed)
    hint = next((o.error.hint for o in failed if o.error is not None and o.error.hint), None)
    return BuildFailed(f"build failed for {names}\n" + "\n".join(lines), hint=hint)


class Build:
    """Carries out one build over a set of builders; the local one also holds the resulting list."""

    def __init__(
        self,
        options: BuildOptions,
        local: ImageBuilder,
        builders: Sequence[ImageBuilder],
        progress: Progress,
        *,
        infos: Mapping[str, NodeInfo] | None = None,
        preferences: Mapping[str, Preference] | None = None,
    ) -> None:
        self.options = options
        self.local = local
        self.builders = {b.name: b for b in builders}
        self.progress = progress
        self.infos = dict(infos) if infos is not None else {b.name: b.info() for b in builders}
        self.preferences = preferences or {}
        self._named: tuple[NamedContext, ...] = ()
        self._cache_credentials: Mapping[str, Credentials] = {}

    def plan(self) -> Plan:
        return make_plan(self.options.platforms, list(self.infos.values()), self.preferences)

    def _reassign(self, platform: Platform, lost: frozenset[str]) -> Assignment:
        """Another node for a platform whose node was lost."""
        nodes = [info for name, info in self.infos.items() if name not in lost]
        return make_plan([platform], nodes, self.preferences).assignments[0]

    def _pack_named(self, workdir: Path) -> tuple[NamedContext, ...]:
        """Each --build-context folder packed once, for every node; images and URLs go as they are."""
        epoch = self.options.source_date_epoch
        return tuple(build_context.pack_named(source, workdir, epoch) for source in self.options.build_contexts)

    def _pack(self, workdir: Path) -> dict[Platform, PackedContext]:
        """Pack each distinct context once, however many platforms build from it."""
        packed: dict[tuple[Path, Path], PackedContext] = {}
        by_platform = {}
        for platform in self.options.platforms:
            context, file = self.options.source_for(platform)
            containerfile = build_context.find_containerfile(context, file)
            if (context, containerfile) not in packed:
                packed[context, containerfile] = build_context.pack(
                    context, containerfile, workdir, self.options.ignorefile, self.options.source_date_epoch
                )
            by_platform[platform] = packed[context, containerfile]
        return by_platform

    def _request(self, packed: PackedContext, platform: Platform, node: str) -> BuildRequest:
        o = self.options
        args = {**automatic_args(platform, self.infos[node].native[0]), **o.build_args}
        return BuildRequest(
            context=packed,
            platform=platform,
            build_args=args,
            labels=o.labels,
            annotations=o.annotations,
            target=o.target,
            no_cache=o.no_cache,
            pull=o.pull,
            named_contexts=self._named,
            secrets=o.secrets,
            cache_from=tuple(platform_repository(r, platform) for r in o.cache_from),
            cache_to=tuple(platform_repository(r, platform) for r in o.cache_to),
            cache_ttl=o.cache_ttl,
            cache_tls_verify=o.cache_tls_verify,
            cache_credentials=self._cache_credentials,
            settings=o.settings,
        )

    def check(self) -> BuildOptions:
        """Every refusal that needs no build, before any starts; returns the options as they will be carried out."""
        infos = list(self.infos.values())
        o = fit_engines(self.options, self.local.driver, self.local.can_hold_lists, infos, self.progress.note)
        files = [("--iidfile", o.iidfile), ("--metadata-file", o.metadata_file)]
        for option, path in files:
            if path is not None:
                check_writable(path, option)
        named = [(option, path) for option, path in files if path] + [
            (f"--output type={s.type}", s.dest) for s in o.outputs if s.dest
        ]
        for i, (option, path) in enumerate(named):
            for other, earlier in named[:i]:
                if same_file(path, earlier):
                    raise UsageError(f"{other} and {option} both write to {path.resolve()}")
        for platform in o.platforms:
            build_context.find_containerfile(*o.source_for(platform))  # a missing file fails before the plan
        if o.ignorefile is not None and not o.ignorefile.is_file():
            raise UsageError(f"--ignorefile {o.ignorefile}: no such file")
        if o.cache_from:
            self._note_cache_args(o, infos)
        return o

    def _note_cache_args(self, o: BuildOptions, infos: Sequence[NodeInfo]) -> None:
        """Say where podman 4.3 will run steps again although the registry cache holds them (an ARG in a stage)."""
        fixed = CACHE_ARG_LOOKUP_SINCE
        old = [i.name for i in infos if i.driver == "podman" and version_tuple(i.server_version) < fixed]
        files = {build_context.find_containerfile(*o.source_for(p)) for p in o.platforms}
        if old and any(args_inside_stages(f.read_text(errors="replace")) for f in files):
            since = ".".join(map(str, fixed))
            self.progress.note(
                f"podman before {since} ({', '.join(old)}) does not look ARG steps up in the registry cache: "
                "on a store without them, each stage's steps from its first ARG on run again "
                f"(declare ARGs before the first FROM, or build on podman {since} or newer)"
            )

    def run(self) -> BuildResult:
        """Build, then write files, push, and only last move -t's names: a failure before that moves nothing."""
        o = self.options = self.check()
        self._cache_credentials = cache_credentials((*o.cache_from, *o.cache_to), o.cache_authfile)
        plan = self.plan()
        self.progress.plan(plan)
        cancel = Cancellation()
        with tempfile.TemporaryDirectory(prefix="build-", dir=rundir.current().path) as workdir:
            packed = self._pack(Path(workdir))
            self._named = self._pack_named(Path(workdir))
            try:
                outcomes = run_plan(
                    plan,
                    self.builders,
                    lambda a: self._request(packed[a.platform], a.platform, a.node),
                    self.progress,
                    o.jobs or len(plan.assignments),
                    cancel,
                    self._reassign,
                )
            except BuildInterrupted as interrupt:
                with signals.deferred():
                    left = self._clean(interrupt.outcomes, keep_built=False)
                raise Interrupted(_interrupted_message(left), signum=interrupt.signum) from None
            if any(outcome.error for outcome in outcomes):
                with signals.deferred():
                    self._clean(outcomes, keep_built=o.keep_failed)
                raise _failure_message(outcomes)
            built = tuple(outcome.report for outcome in outcomes if outcome.report is not None)
            try:
                # In the context's folder still: the SBOM builds the stages it copies from with it again.
                return self._finish(plan, built, outcomes, packed)
            except KeyboardInterrupt as interrupt:
                raise Interrupted(
                    "interrupted after the build: no name given with -t was moved",
                    signum=signal_of(interrupt),
                ) from None

    def _finish(
        self,
        plan: Plan,
        built: tuple[BuildReport, ...],
        outcomes: Sequence[Outcome],
        packed: Mapping[Platform, PackedContext],
    ) -> BuildResult:
        """Normalise, attest, bring home and stage the list, write files, push, write the id and metadata files,
        then name the list."""
        o = self.options
        attesting = o.sbom or o.provenance is not None
        if o.source_date_epoch is None and not attesting:
            return self._finish_with(plan, built, outcomes, None, None)
        with tempfile.TemporaryDirectory(prefix="images-", dir=rundir.current().path) as folder:
            store = BlobStore(Path(folder))
            normaliser = None
            if o.source_date_epoch is not None:
                normaliser = Normaliser(store, o.source_date_epoch, self.local, self.builders, self.progress.note)
            attester = None
            if attesting:
                attester = Attester(self._attest_request(packed), store, self.builders, self.infos, self.progress.note)
            return self._finish_with(plan, built, outcomes, normaliser, attester)

    def _attest_request(self, packed: Mapping[Platform, PackedContext]) -> AttestRequest:
        o = self.options
        texts = {p: read_containerfile(c.tar, c.containerfile) or "" for p, c in packed.items()}
        return AttestRequest(
            sbom=o.sbom,
            provenance=o.provenance,
            tags=o.tags,
            source_date_epoch=o.source_date_epoch,
            build_args=o.build_args,
            secrets=tuple(s.value for s in o.secrets),
            secret_ids=tuple(s.id for s in o.secrets),
            target=o.target,
            named_contexts=tuple(n.name for n in self._named),
            containerfiles=texts,
            packed=packed,
            requests=lambda r: self._request(packed[r.platform], r.platform, r.node),
        )

    def _finish_with(
        self,
        plan: Plan,
        built: tuple[BuildReport, ...],
        outcomes: Sequence[Outcome],
        normaliser: Normaliser | None,
        attester: Attester | None,
    ) -> BuildResult:
        o = self.options
        home = o.keeps_list
        lists = LocalListBuilder(self.local, self.builders, self.progress.note)
        staged: ListInfo | None = None
        keep_staged = False
        try:
            reports = built
            if normaliser is not None:
                # Before the list: it is made of the normalised images, which are loaded here directly.
                reports = normaliser.run(built, load=home)
            if attester is not None:
                images = normaliser.images if normaliser is not None else attester.export(built)
                attester.make([(b, images[r.image_id]) for b, r in zip(built, reports, strict=True)])
            if home:
                with signals.deferred():
                    staged, reports = self._merge(lists, reports, at_home=normaliser is not None)
            attach = attester.for_output if attester is not None else None
            write_outputs(o.outputs, reports, self._exporter(normaliser, attester, home), o.tags, attach)
            pushed: list[Pushed] = []
            if o.push is not None and o.push.mode == PushMode.HERE:
                assert staged is not None
                keep_staged = True  # a failed push keeps the new list, under its own name, for a retry
                if normaliser is not None:
                    pushed = push_store(normaliser.store, descriptors(normaliser, reports), o.tags, o.push)
                else:
                    pushed = push_list(self.local, staged.name, o.tags, o.push, self.progress.note)
                keep_staged = False
            elif o.push is not None:
                pushed = push_from_nodes(self.builders, built, o.tags, o.push, self.progress.note)
            if attester is not None:
                if pushed:
                    assert o.push is not None
                    attester.attach(pushed, o.push)
                if home:
                    attester.keep(reports)
            outputs = [s.to_json() for s in o.outputs or ((OutputSpec("image"),) if home else ())]
            data = metadata(o.tags, reports, staged, outputs, pushed, o.source_date_epoch)
            if attester is not None:
                data["imgfront.attestations"] = attester.records
            self._write_files(reports, staged, data)
            image_list = None
            if staged is not None:
                with signals.deferred():
                    image_list = lists.publish(staged, o.tags)
        except BaseException:
            with signals.deferred():
                if lists.unchanged:
                    staged = None  # the list under -t is the one it was: never the build's to drop
                if staged is not None and keep_staged:
                    # podman's own push compresses the layers again: a reproducible push is retried by building again.
                    retry = "run the build again" if normaliser else f"podman manifest push --all {staged.name} REF"
                    self.progress.note(
                        f"the new list is kept as {staged.name}; the names given with -t still name the old one "
                        f"(retry: {retry}; drop it: podman manifest rm {staged.name})"
                    )
                elif not o.keep_failed:
                    if staged is not None:
                        with contextlib.suppress(ImgfrontError):
                            self.local.drop_list(staged)
                    self._remove_everything(outcomes, lists)
                    if normaliser is not None:
                        normaliser.remove_imported()
            raise
        if o.cleanup:
            for report in built:
                if report.node != self.local.name:
                    with contextlib.suppress(ImgfrontError):
                        self.builders[report.node].remove_image(report.image_id, force=True)
        self.progress.summary(reports)
        return BuildResult(plan, reports, image_list, data)

    def _exporter(self, normaliser: Normaliser | None, attester: Attester | None, home: bool) -> Export:
        """Where file outputs read each image: the normalised store (local storage would compress the layers
        again), else the attestations' store (their subjects), else local storage for images at home, else the
        node that built it."""
        if normaliser is not None:
            return normaliser.archive
        if attester is not None:
            return attester.archive
        return lambda r: self._node_of(r, home).export_image(r.image_id, oci=True)

    def _node_of(self, report: BuildReport, home: bool) -> ImageBuilder:
        return self.local if home else self.builders[report.node]

    def _clean(self, outcomes: Sequence[Outcome], keep_built: bool) -> tuple[str, ...]:
        """After a failure or an interrupt: stop what cancelled builds left, and remove what they made.

        Returns what was left behind that imgfront could not attribute, each line also shown as a note.
        """
        left: list[str] = []
        for builder in self.builders.values():
            try:
                left.extend(builder.clean_cancelled())
            except ImgfrontError as e:
                left.append(e.message)
        for line in left:
            self.progress.note(line)
        if not keep_built:
            _remove_built(outcomes, self.builders)
        return tuple(left)

    def _remove_everything(self, outcomes: Sequence[Outcome], lists: LocalListBuilder) -> None:
        _remove_built(outcomes, self.builders)
        for image_id in lists.imported:
            with contextlib.suppress(ImgfrontError):
                self.local.remove_image(image_id, force=False)

    def _merge(
        self, lists: LocalListBuilder, reports: tuple[BuildReport, ...], at_home: bool = False
    ) -> tuple[ListInfo | None, tuple[BuildReport, ...]]:
        """Bring the images home (unless they are `at_home` already) and stage the list; the reports then name
        the images as they are here."""
        home = reports
        if not at_home:
            # Each node sends its own images at once; the local engine loads them side by side.
            with ThreadPoolExecutor(max_workers=max(1, len(reports))) as pool:
                home = tuple(pool.map(lists.bring_home, reports))
        if not self.options.tags:
            self.progress.note("no -t given: the images are left untagged and no list is made")
            return None, home
        return lists.stage(home, self.options.tags), home

    def _write_files(
        self, reports: Sequence[BuildReport], image_list: ListInfo | None, data: dict[str, object]
    ) -> None:
        o = self.options
        if o.iidfile:
            image_id = image_list.id if image_list else reports[0].image_id
            write_atomically(o.iidfile, f"sha256:{image_id}")
        if o.metadata_file:
            write_metadata(o.metadata_file, data)


def _interrupted_message(left: Sequence[str]) -> str:
    if left:
        return "interrupted: every build was cancelled; some of what they made could not be removed (see above)"
    return "interrupted: every build was cancelled and what they made was removed"


def check_writable(path: Path, option: str) -> None:
    """Refuse, before any build, a file that cannot be written: a folder there, or no writable folder above it."""
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder", hint=f"{option} names the file to write")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: {parent} is not writable", hint="name a file in a folder you can write")


def unbuildable_hint(error: UnbuildablePlatforms) -> UnbuildablePlatforms:
    from imgfront.emulation.qemu import fix_command

    return UnbuildablePlatforms(error.platforms, hint=f"run: {fix_command(error.platforms)}")
