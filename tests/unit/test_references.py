"""-t references: validated and normalised as podman names local images."""

import pytest

from imgfront.errors import UsageError
from imgfront.oci.references import parse_reference


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


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("app:" + "t" * 129, "is 129 characters long; a tag is at most 128"),
        ("reg.example/" + "a" * 250 + ":1", "is 262 characters long; a name with its registry is at most 255"),
        ("app@sha256:" + "ab" * 32, "a tag cannot name a digest"),
        ("app:1@sha256:" + "ab" * 32, "a tag cannot name a digest"),
        ("reg.example/App:1", "a repository name must be lower case"),
        ("app:-1", "invalid tag '-1'"),
        ("app:", "empty tag"),
    ],
)
def test_the_message_names_the_rule_broken(text: str, rule: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_reference(text)
    assert rule in e.value.message
    assert len(e.value.message) < 160


def test_the_longest_valid_tag_and_name_are_taken() -> None:
    name = "reg.example/" + "a" * (255 - len("reg.example/"))
    assert parse_reference(f"{name}:{'t' * 128}").tag == "t" * 128


def test_a_digest_hint_names_the_tag_to_use_instead() -> None:
    with pytest.raises(UsageError) as e:
        parse_reference("reg.example/app:1@sha256:" + "ab" * 32)
    assert e.value.hint is not None and "use reg.example/app:1" in e.value.hint
