"""`config`: the image's run-time settings, as Containerfile instructions in their exec (JSON) form.

HEALTHCHECK exists only in the docker image format; podman build ignores it (with a warning) for OCI.
"""

from __future__ import annotations

from typing import Any, ClassVar

from imgfront.pipeline.containerfile import json_array
from imgfront.pipeline.stages.base import ABSOLUTE_PATH, CompileContext, Options, StageOutput, StageType

ARGV: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
DURATION: dict[str, Any] = {"type": "string", "pattern": "^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$"}


class Config(StageType):
    name = "org.imgfront.config"
    schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {
            "entrypoint": ARGV,
            "cmd": ARGV,
            "user": {"type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$"},
            # WORKDIR expands variables, so `$` and `\` are kept out rather than escaped.
            "workdir": {"type": "string", "pattern": "^/[^\n\r$\\\\]*$"},
            "exposed_ports": {
                "type": "array",
                "uniqueItems": True,
                "items": {
                    "oneOf": [
                        {"type": "integer", "minimum": 1, "maximum": 65535},
                        {"type": "string", "pattern": "^[0-9]{1,5}(/(tcp|udp|sctp))?$"},
                    ]
                },
            },
            "volumes": {"type": "array", "items": ABSOLUTE_PATH},
            "stop_signal": {"type": "string", "pattern": "^(SIG[A-Z0-9+-]+|[0-9]+)$"},
            "healthcheck": {
                "type": "object",
                "required": ["test"],
                "additionalProperties": False,
                "properties": {
                    "test": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                    "interval": DURATION,
                    "timeout": DURATION,
                    "start_period": DURATION,
                    "retries": {"type": "integer", "minimum": 0},
                },
            },
        },
    }

    def compile(self, options: Options, ctx: CompileContext) -> StageOutput:
        lines: list[str] = []
        if "workdir" in options:
            lines.append(f"WORKDIR {options['workdir']}")
        if "user" in options:
            lines.append(f"USER {options['user']}")
        if options.get("exposed_ports"):
            lines.append("EXPOSE " + " ".join(str(p) for p in options["exposed_ports"]))
        if options.get("volumes"):
            lines.append(f"VOLUME {json_array(options['volumes'])}")
        if "stop_signal" in options:
            lines.append(f"STOPSIGNAL {options['stop_signal']}")
        if "healthcheck" in options:
            lines.append(_healthcheck(options["healthcheck"]))
        # ENTRYPOINT before CMD: setting ENTRYPOINT clears an inherited CMD.
        if "entrypoint" in options:
            lines.append(f"ENTRYPOINT {json_array(options['entrypoint'])}")
        if "cmd" in options:
            lines.append(f"CMD {json_array(options['cmd'])}")
        return StageOutput(tuple(lines))


def _healthcheck(check: dict[str, Any]) -> str:
    flags = [
        f"--{key.replace('_', '-')}={check[key]}" for key in ("interval", "timeout", "start_period") if key in check
    ]
    if "retries" in check:
        flags.append(f"--retries={check['retries']}")
    return " ".join(["HEALTHCHECK", *flags, "CMD", json_array(check["test"])])
