"""-t references: validated and normalised as podman names local images."""

import pytest

from imgfront.errors import UsageError
from imgfront.references import parse_reference


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", "localhost/hello:latest"),
        ("hello:1", "localhost/hello:1"),
        ("localhost/hello:1", "localhost/hello:1"),
        ("team/app:v1.2", "localhost/team/app:v1.2"),
        ("registry.example/app:1", "registry.example/app:1"),
        ("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest"),
        ("localhost:5000/a/b:c", "localhost:5000/a/b:c"),
    ],
)
def test_reference_normalises(text: str, expected: str) -> None:
    assert str(parse_reference(text)) == expected


@pytest.mark.parametrize("text", ["Hello:1", "hello:", "hello::1", "-x", "a b", "app@sha256:abc", "", "x:" + "t" * 200])
def test_invalid_reference_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError):
        parse_reference(text)


def test_digest_references_only_where_asked_for():
    digest = "sha256:" + "ab" * 32
    ref = parse_reference(f"reg.example:5000/team/app@{digest}", digest=True)
    assert (ref.domain, ref.path, ref.digest) == ("reg.example:5000", "team/app", digest)
    assert str(ref) == f"reg.example:5000/team/app@{digest}"
    with pytest.raises(UsageError):
        parse_reference(f"reg.example/app@{digest}")  # -t takes no digest
    with pytest.raises(UsageError):
        parse_reference("reg.example/app@sha256:short", digest=True)
