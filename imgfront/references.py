"""Image references: validated and normalised as podman names local images."""

from __future__ import annotations

import re
from dataclasses import dataclass

from imgfront.errors import UsageError

# The grammar of github.com/distribution/reference, for name[:tag][@digest] (digests are not valid for -t).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:localhost|(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)"
_NAME = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN}(?::[0-9]+)?)/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>[\w][\w.-]{{0,127}}))?(?:@(?P<digest>sha256:[0-9a-f]{{64}}))?$"
)


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
    match = _NAME.match(text.strip())
    if not match or len(text) > 255 or (match["digest"] and not digest):
        raise UsageError(
            f"invalid image reference {text!r}",
            hint="use [registry/]name[:tag]"
            + ("[@sha256:DIGEST]" if digest else "")
            + " in lower case, e.g. localhost/hello:1",
        )
    domain, path = match["domain"], match["path"]
    if domain is None or ("." not in domain and ":" not in domain and domain != "localhost"):
        # A first component without a dot or port is part of the path, not a registry.
        path = f"{domain}/{path}" if domain else path
        domain = "localhost"
    return Reference(domain=domain, path=path, tag=match["tag"] or "latest", digest=match["digest"])
