"""docs/build.md's options table and progress modes are the ones imgfront/options.py makes, and the table's rows
match BuildOptions and the output registry."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from imgfront.options import BUILD_OPTIONS, DOCS_BLOCKS, OPTIONS_BY_DEST, docs_block
from imgfront.outputs.types import OUTPUT_TYPES
from imgfront.run.build import BuildOptions

DOCS = Path(__file__).resolve().parents[2] / "docs" / "build.md"


def test_docs_blocks_are_what_the_table_makes() -> None:
    text = DOCS.read_text()
    for block, generate in DOCS_BLOCKS.items():
        assert docs_block(text, block) == generate(), (
            f"docs/build.md's {block} is stale: run python -m imgfront.options --write docs/build.md"
        )


def test_every_row_names_a_build_options_field_and_every_field_has_a_row() -> None:
    names = {f.name for f in fields(BuildOptions)}
    from_rows = {row.field_name for row in BUILD_OPTIONS if row.field_name}
    assert from_rows <= names
    # contexts are a compiled pipeline's; push is made of --push, --push-from-nodes, --tls-verify, ...;
    # the cache's registry access of --tls-verify and --authfile, when --cache-from or --cache-to is given
    assert names - from_rows == {"contexts", "cache_tls_verify", "cache_authfile"}


def test_output_help_names_every_registered_output_type() -> None:
    help_text = OPTIONS_BY_DEST["output"].help
    assert all(name in help_text for name in OUTPUT_TYPES)


def test_option_names_are_unique() -> None:
    flags = [name for row in BUILD_OPTIONS if not row.argument for name in row.names]
    assert len(flags) == len(set(flags))
