"""Image references: validated and normalised as podman names local images."""

from __future__ import annotations

import re
from dataclasses import dataclass

from imgfront.errors import UsageError

# The grammar of github.com/distribution/reference: name[:tag][@digest]. Each rule is checked on its own so
# that the message can name the one broken.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:localhost|(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)"
_NAME = re.compile(rf"^(?:(?P<domain>{_DOMAIN}(?::[0-9]+)?)/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)$")
_TAG = re.compile(r"^\w[\w.-]*$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
NAME_MAX = 255  # the whole name, registry included, as distribution's NameTotalLengthMax
TAG_MAX = 128
_EXAMPLE = "e.g. localhost/hello:1"


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str
    digest: str | None = None

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}"

    def by_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, self.tag, digest)

    def __str__(self) -> str:
        return f"{self.repository}@{self.digest}" if self.digest else f"{self.repository}:{self.tag}"


def parse_reference(text: str, *, digest: bool = False) -> Reference:
    """Parse a tag as `podman build -t` takes it; a name without a registry is local (`localhost/`).

    With `digest`, a reference may also name a manifest by digest: `registry/name@sha256:...`.
    """
    given = text.strip()
    rest, at, by_digest = given.partition("@")
    if at and not digest:
        raise UsageError(
            f"a tag cannot name a digest (@...): {_short(given)!r}",
            hint="a tag names what this writes, whose digest is known only then; "
            + (f"use {_short(rest)}" if rest else f"use [registry/]name[:tag], {_EXAMPLE}"),
        )
    if at and not _DIGEST.match(by_digest):
        raise UsageError(f"invalid digest in {given!r}", hint="write @sha256: and 64 lower-case hex digits")
    name, colon, tag = rest.rpartition(":")
    if not colon or "/" in tag:  # no tag, only a registry's port
        name, tag = rest, ""
    elif not tag:
        raise UsageError(f"empty tag in {given!r}", hint=f"write name:tag, or name alone for :latest, {_EXAMPLE}")
    elif len(tag) > TAG_MAX:
        raise UsageError(f"the tag in {_short(given)!r} is {len(tag)} characters long; a tag is at most {TAG_MAX}")
    elif not _TAG.match(tag):
        raise UsageError(
            f"invalid tag {tag!r} in {given!r}",
            hint="a tag is letters, digits, '_', '.' and '-', and does not start with '.' or '-'",
        )
    if not name:
        raise UsageError(f"no image name in {given!r}", hint=f"use [registry/]name[:tag], {_EXAMPLE}")
    if len(name) > NAME_MAX:
        raise UsageError(
            f"the name {_short(name)!r} is {len(name)} characters long; a name with its registry is at most {NAME_MAX}"
        )
    match = _NAME.match(name) or _NAME.match(_lower_path(name))
    if match is None:
        raise UsageError(
            f"invalid image name {name!r}",
            hint="a name is components of lower-case letters and digits, joined by '.', '_', '__' or '-', "
            f"separated by '/' and after an optional registry[:port]/, {_EXAMPLE}",
        )
    if match.string != name:
        raise UsageError(f"invalid image name {name!r}: a repository name must be lower case", hint=_EXAMPLE)
    domain, path = match["domain"], match["path"]
    if domain is None or ("." not in domain and ":" not in domain and domain != "localhost"):
        # A first component without a dot or port is part of the path, not a registry.
        path = f"{domain}/{path}" if domain else path
        domain = "localhost"
    return Reference(domain=domain, path=path, tag=tag or "latest", digest=by_digest or None)


def _lower_path(name: str) -> str:
    """The name with its repository path in lower case, its registry as it was: to tell case from other faults."""
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return f"{first}/{rest.lower()}"
    return name.lower()


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."
