"""`users`: groups and users, on glibc distributions and on busybox alike.

Each entry is one shell `if` that picks what the image has: groupadd/useradd (Debian, Fedora...),
else busybox addgroup/adduser (Alpine), else it appends the line to /etc/group or /etc/passwd (a bare
busybox). An entry that already exists with the same id is left alone; with another id, the step fails.
"""

from __future__ import annotations

import shlex
from typing import Any, ClassVar

from imgfront.pipeline.containerfile import CONTINUE, run
from imgfront.pipeline.stages.base import CompileContext, Options, StageOutput, StageType

NAME: dict[str, Any] = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_.-]{0,31}$"}
ID: dict[str, Any] = {"type": "integer", "minimum": 0, "maximum": 2147483647}
FIELD_PATH: dict[str, Any] = {"type": "string", "pattern": "^/[^:\n\r]*$"}  # no ':' in a passwd field


def _ensure(file: str, name: str, number: int, kind: str, tools: list[tuple[str, str]], fallback: str) -> str:
    branches = [
        f"if grep -q '^{name}:[^:]*:{number}:' {file} 2>/dev/null; then :",
        f"elif grep -q '^{name}:' {file} 2>/dev/null; then echo '{kind} {name} exists with another id' >&2; exit 1",
        *(f"elif command -v {tool} >/dev/null 2>&1; then {command}" for tool, command in tools),
        f"else mkdir -p /etc && {fallback}",
    ]
    return (";" + CONTINUE).join(branches) + "; fi"


def group(name: str, gid: int) -> str:
    tools = [("groupadd", f"groupadd -g {gid} {name}"), ("addgroup", f"addgroup -g {gid} {name}")]
    return _ensure("/etc/group", name, gid, "group", tools, f"echo '{name}:x:{gid}:' >>/etc/group")


def user(name: str, uid: int, gid: int, home: str, shell: str) -> str:
    h, s = shlex.quote(home), shlex.quote(shell)
    # busybox adduser takes a group name, so look up the one that has this gid.
    group_name = f"\"$(grep '^[^:]*:[^:]*:{gid}:' /etc/group | cut -d: -f1 | head -n 1)\""
    tools = [
        ("useradd", f"useradd -l -m -N -u {uid} -g {gid} -d {h} -s {s} {name}"),
        ("adduser", f"adduser -D -u {uid} -G {group_name} -h {h} -s {s} {name}"),
    ]
    line = shlex.quote(f"{name}:x:{uid}:{gid}::{home}:{shell}")
    fallback = f"echo {line} >>/etc/passwd && mkdir -p {h} && chown {uid}:{gid} {h}"
    return _ensure("/etc/passwd", name, uid, "user", tools, fallback)


class Users(StageType):
    name = "org.imgfront.users"
    schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {
            "groups": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "gid"],
                    "additionalProperties": False,
                    "properties": {"name": NAME, "gid": ID},
                },
            },
            "users": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "uid"],
                    "additionalProperties": False,
                    "properties": {"name": NAME, "uid": ID, "gid": ID, "home": FIELD_PATH, "shell": FIELD_PATH},
                },
            },
        },
    }

    def compile(self, options: Options, ctx: CompileContext) -> StageOutput:
        groups = {g["name"]: g["gid"] for g in options.get("groups", [])}
        statements = [group(n, gid) for n, gid in groups.items()]
        for u in options.get("users", []):
            # Without a gid a user gets a group of its own name: the one listed above, else gid = uid.
            gid = u.get("gid", groups.get(u["name"], u["uid"]))
            if "gid" not in u and u["name"] not in groups:
                statements.append(group(u["name"], gid))
            home, shell = u.get("home", f"/home/{u['name']}"), u.get("shell", "/bin/sh")
            statements.append(user(u["name"], u["uid"], gid, home, shell))
        return StageOutput((run(statements),) if statements else ())
