"""File outputs of a build (`--output type=...`): export each platform's image, stage it, write each atomically."""

from __future__ import annotations

from typing import Any

from imgfront.outputs.types import OUTPUT_TYPES, OutputSpec, OutputType, parse_outputs, wants_image

__all__ = ["OUTPUT_TYPES", "OutputSpec", "OutputType", "parse_outputs", "wants_image", "write_outputs"]


def __getattr__(name: str) -> Any:
    """`write_outputs` is loaded on first use: parsing and help (start-up) need only the types."""
    if name == "write_outputs":
        from imgfront.outputs.write import write_outputs

        return write_outputs
    raise AttributeError(name)
