"""Run a composite GitHub Action's `run:` steps here, the way a GitHub runner does, for the action's tests.

What it does, as the runner does it:

- inputs: the given values, else each input's `default:` (expressions in it evaluated), else "";
- steps in order; a step runs when its `if:` holds (an `if:` without a status function means
  `success() && (...)`), and after a failed step only `always()`/`failure()` steps run;
- a `run:` step runs under `bash --noprofile --norc -eo pipefail SCRIPT` with its `env:` and
  `working-directory:`, and fresh GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH and GITHUB_STEP_SUMMARY files
  (without GITHUB_STEP_SUMMARY when asked to run as Forgejo's and Gitea's runners do, which have none);
  what it writes to GITHUB_ENV and GITHUB_PATH reaches the steps after it; its outputs become
  `steps.<id>.outputs`, also when it fails;
- workflow commands in a step's output are taken out of the log: `::add-mask::VALUE` records a mask,
  `::error::`/`::warning::`/`::notice::` an annotation;
- a `uses:` step is not run: it is recorded as skipped (its outputs stay empty);
- the action's `outputs:` are evaluated at the end.

The expression language is the part of GitHub's that the actions here use: literals ('text', numbers,
true, false, null), contexts (`inputs`, `github`, `runner`, `env`, `steps`) with `.name` and `['name']`,
`!`, `==`, `!=`, `<`, `<=`, `>`, `>=`, `&&`, `||`, parentheses, and the status functions `success()`,
`always()`, `failure()`, `cancelled()`. Comparisons follow GitHub: strings ignore case, mixed types
compare as numbers. Anything else is an ExpressionError, so an action cannot quietly rely on more.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import uuid
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

STEP_TIMEOUT = 540.0
STATUS_FUNCTIONS = ("success", "always", "failure", "cancelled")
_EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
_COMMAND = re.compile(r"^::([A-Za-z-]+)(?: [^:]*)?::(.*)$")


class ExpressionError(ValueError):
    """An expression this evaluator does not accept."""


# --- expressions ---------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<number>-?(?:0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?))
      | (?P<op>==|!=|<=|>=|&&|\|\||[!<>().\[\],])
      | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str  # string, number, op, name, end
    text: str


def _tokens(expression: str) -> list[_Token]:
    tokens, position = [], 0
    while position < len(expression):
        if expression[position:].strip() == "":
            break
        match = _TOKEN.match(expression, position)
        if match is None or match.end() == position:
            raise ExpressionError(f"cannot read {expression[position:]!r} in {expression!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append(_Token(kind, match.group(kind)))
        position = match.end()
    tokens.append(_Token("end", ""))
    return tokens


class _CaseInsensitive(dict[str, Any]):
    """Context objects: GitHub looks property names up ignoring case."""

    def lookup(self, name: str) -> Any:
        if name in self:
            return self[name]
        lowered = name.lower()
        return next((v for k, v in self.items() if k.lower() == lowered), None)


def _lookup(value: Any, name: Any) -> Any:
    if isinstance(value, _CaseInsensitive):
        return value.lookup(str(name))
    if isinstance(value, Mapping):
        lowered = str(name).lower()
        return next((v for k, v in value.items() if str(k).lower() == lowered), None)
    if isinstance(value, list) and isinstance(name, int | float) and 0 <= int(name) < len(value):
        return value[int(name)]
    return None


def truthy(value: Any) -> bool:
    """GitHub's truthiness: false, 0, -0, NaN, "" and null are falsy."""
    if value is None or value is False or value == "":
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value != 0 and not math.isnan(value)
    return True


def _number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return 0.0
        try:
            return float(int(text, 16)) if text.lower().startswith("0x") else float(text)
        except ValueError:
            return math.nan
    return math.nan


def _equal(left: Any, right: Any) -> bool:
    if type(left) is type(right) or (left is None and right is None):
        if isinstance(left, str):
            return bool(left.lower() == str(right).lower())
        if isinstance(left, dict | list):
            return left is right
        return bool(left == right)
    return _number(left) == _number(right)


def _order(left: Any, right: Any, op: str) -> bool:
    a: Any
    b: Any
    if isinstance(left, str) and isinstance(right, str):
        a, b = left.lower(), right.lower()
    else:
        a, b = _number(left), _number(right)
        if math.isnan(a) or math.isnan(b):
            return False
    return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])


def to_text(value: Any) -> str:
    """How `${{ }}` puts a value into a string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2)
    return str(value)


class _Parser:
    """Recursive descent over: or := and ('||' and)*; and := eq ('&&' eq)*; eq := cmp (('=='|'!=') cmp)*;
    cmp := unary (('<'|'<='|'>'|'>=') unary)*; unary := '!' unary | primary; primary := literal | call |
    name ('.' name | '[' or ']')* | '(' or ')'."""

    def __init__(self, expression: str, contexts: Mapping[str, Any], status: Mapping[str, bool]) -> None:
        self.expression = expression
        self.tokens = _tokens(expression)
        self.position = 0
        self.contexts = _CaseInsensitive(contexts)
        self.status = status

    def parse(self) -> Any:
        value = self._or()
        if self._peek().kind != "end":
            raise ExpressionError(f"unexpected {self._peek().text!r} in {self.expression!r}")
        return value

    def _peek(self) -> _Token:
        return self.tokens[self.position]

    def _next(self) -> _Token:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def _accept(self, *ops: str) -> str | None:
        token = self._peek()
        if token.kind == "op" and token.text in ops:
            self.position += 1
            return token.text
        return None

    def _expect(self, op: str) -> None:
        if self._accept(op) is None:
            raise ExpressionError(f"expected {op!r}, found {self._peek().text!r} in {self.expression!r}")

    def _or(self) -> Any:
        value = self._and()
        while self._accept("||"):
            right = self._and()
            value = value if truthy(value) else right
        return value

    def _and(self) -> Any:
        value = self._equality()
        while self._accept("&&"):
            right = self._equality()
            value = right if truthy(value) else value
        return value

    def _equality(self) -> Any:
        value = self._comparison()
        while op := self._accept("==", "!="):
            right = self._comparison()
            value = _equal(value, right) == (op == "==")
        return value

    def _comparison(self) -> Any:
        value = self._unary()
        while op := self._accept("<", "<=", ">", ">="):
            value = _order(value, self._unary(), op)
        return value

    def _unary(self) -> Any:
        if self._accept("!"):
            return not truthy(self._unary())
        return self._primary()

    def _primary(self) -> Any:
        token = self._next()
        if token.kind == "string":
            return token.text[1:-1].replace("''", "'")
        if token.kind == "number":
            number = _number(token.text)
            return int(number) if number.is_integer() else number
        if token.kind == "op" and token.text == "(":
            value = self._or()
            self._expect(")")
            return value
        if token.kind != "name":
            raise ExpressionError(f"unexpected {token.text or 'end'!r} in {self.expression!r}")
        word = token.text
        if word in ("true", "false"):
            return word == "true"
        if word == "null":
            return None
        if self._accept("("):
            if word not in STATUS_FUNCTIONS:
                raise ExpressionError(f"function {word}() is not supported here (in {self.expression!r})")
            self._expect(")")
            return self.status[word]
        if word.lower() not in (k.lower() for k in self.contexts):
            raise ExpressionError(f"unknown context {word!r} in {self.expression!r}")
        value = self.contexts.lookup(word)
        while True:
            if self._accept("."):
                name = self._next()
                if name.kind != "name":
                    raise ExpressionError(f"expected a property name after '.', found {name.text!r}")
                value = _lookup(value, name.text)
            elif self._accept("["):
                index = self._or()
                self._expect("]")
                value = _lookup(value, index)
            else:
                return value


def evaluate(expression: str, contexts: Mapping[str, Any], status: Mapping[str, bool] | None = None) -> Any:
    """The value of one expression (the text inside `${{ }}`)."""
    status = status or {"success": True, "always": True, "failure": False, "cancelled": False}
    return _Parser(expression, contexts, status).parse()


def substitute(text: str, contexts: Mapping[str, Any]) -> str:
    """text with every `${{ expression }}` replaced by its value as text."""
    return _EXPRESSION.sub(lambda m: to_text(evaluate(m.group(1), contexts)), text)


def expressions(text: str) -> list[str]:
    """The expressions inside `${{ }}` in text."""
    return [m.group(1).strip() for m in _EXPRESSION.finditer(text)]


def condition(text: str | bool | None, contexts: Mapping[str, Any], failed: bool) -> bool:
    """Whether a step with this `if:` runs; without a status function it is `success() && (text)`."""
    if text is None:
        text = "success()"
    if isinstance(text, bool):
        return text and not failed
    stripped = text.strip()
    whole = _EXPRESSION.fullmatch(stripped)
    if whole:
        stripped = whole.group(1).strip()
    status = {"success": not failed, "always": True, "failure": failed, "cancelled": False}
    if not any(t.kind == "name" and t.text in STATUS_FUNCTIONS for t in _tokens(stripped)):
        stripped = f"success() && ({stripped})"
    return truthy(evaluate(stripped, contexts, status))


# --- workflow files and commands -----------------------------------------------------------------


def read_file_command(path: Path) -> dict[str, str]:
    """NAME=VALUE lines and NAME<<DELIMITER blocks, as GITHUB_OUTPUT and GITHUB_ENV hold them."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    lines = iter(path.read_text().splitlines())
    for line in lines:
        if not line:
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block: list[str] = []
            for body in lines:
                if body == delimiter:
                    break
                block.append(body)
            else:
                raise ValueError(f"{path}: no closing delimiter {delimiter!r} for {name!r}")
            values[name] = "\n".join(block)
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
        else:
            raise ValueError(f"{path}: cannot read line {line!r}")
    return values


def _unescape(data: str) -> str:
    return data.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


@dataclass
class StepResult:
    """One step: `status` is success, failure or skipped; `reason` says why a step was skipped."""

    index: int
    id: str | None
    name: str
    uses: str | None
    status: str
    reason: str = ""
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    env: dict[str, str] = field(default_factory=dict)  # the step's own `env:`, evaluated


@dataclass
class ActionResult:
    steps: list[StepResult]
    outputs: dict[str, str]
    masks: list[str]
    annotations: list[tuple[str, str]]  # (error|warning|notice, message)
    summary: str  # every step's GITHUB_STEP_SUMMARY, in order
    env: dict[str, str]  # what the steps wrote to GITHUB_ENV
    path: list[str]  # what the steps wrote to GITHUB_PATH, latest first
    scanned: tuple[Path, ...]  # the folders whose files `leaks` reads

    @property
    def ok(self) -> bool:
        return all(s.status != "failure" for s in self.steps)

    @property
    def exit_code(self) -> int:
        """0, or the exit code of the first step that failed."""
        return next((s.exit_code or 1 for s in self.steps if s.status == "failure"), 0)

    def step(self, key: str) -> StepResult:
        """The step with this id, or else this name."""
        found = [s for s in self.steps if s.id == key] or [s for s in self.steps if s.name == key]
        if not found:
            raise KeyError(f"no step {key!r}: {[s.id or s.name for s in self.steps]}")
        return found[0]

    def log(self) -> str:
        """What the GitHub log would show of the steps' output: commands taken out, masks applied."""
        lines: list[str] = []
        for step in self.steps:
            for stream in (step.stdout, step.stderr):
                lines.extend(self.mask(line) for line in stream.splitlines() if not _COMMAND.match(line))
        return "\n".join(lines)

    def mask(self, text: str) -> str:
        for secret in sorted(self.masks, key=len, reverse=True):
            if secret:
                text = text.replace(secret, "***")
        return text

    def leaks(self, secret: str) -> list[str]:
        """Every place secret appears unmasked: a step's stdout or stderr (the `::add-mask::` command that
        masks it aside), a step's outputs, the summary, the action's outputs, or any file in `scanned`."""
        found = []
        for step in self.steps:
            label = step.id or step.name
            visible = [ln for ln in step.stdout.splitlines() if not ln.startswith("::add-mask::")]
            if any(secret in ln for ln in visible):
                found.append(f"stdout of step {label}")
            if secret in step.stderr:
                found.append(f"stderr of step {label}")
            if any(secret in v for v in step.outputs.values()):
                found.append(f"outputs of step {label}")
        if secret in self.summary:
            found.append("the step summary")
        found.extend(f"action output {k}" for k, v in self.outputs.items() if secret in v)
        needle = secret.encode()
        for folder in self.scanned:
            for path in _files(folder):
                try:
                    if needle in path.read_bytes():
                        found.append(os.fspath(path))
                except OSError:
                    continue
        return found


def _files(folder: Path) -> Iterator[Path]:
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root) / name
            if path.is_file() and not path.is_symlink():
                yield path


# --- the runner ----------------------------------------------------------------------------------


def load_action(action_dir: Path) -> dict[str, Any]:
    for name in ("action.yml", "action.yaml"):
        if (action_dir / name).is_file():
            data = yaml.safe_load((action_dir / name).read_text())
            if not isinstance(data, dict) or data.get("runs", {}).get("using") != "composite":
                raise ValueError(f"{action_dir / name} is not a composite action")
            return data
    raise FileNotFoundError(f"no action.yml in {action_dir}")


def _input_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


@dataclass
class _Job:
    """What the steps of one run share: the job's environment and what earlier steps added to it."""

    action_dir: Path
    workspace: Path
    runner_temp: Path
    env: dict[str, str]
    timeout: float
    step_summary: bool = True
    file_env: dict[str, str] = field(default_factory=dict)
    path_entries: list[str] = field(default_factory=list)

    def contexts(self, base: Mapping[str, Any]) -> dict[str, Any]:
        return {**base, "env": _CaseInsensitive({**self.env, **self.file_env})}

    def run_step(self, step: Mapping[str, Any], result: StepResult, contexts: Mapping[str, Any]) -> None:
        shell = step.get("shell")
        if shell != "bash":
            raise ValueError(f"step {result.name!r}: shell {shell!r}; this runner runs `shell: bash` only")
        result.env = {str(k): substitute(_input_text(v), contexts) for k, v in (step.get("env") or {}).items()}
        commands_dir = self.runner_temp / "_runner_file_commands"
        commands_dir.mkdir(exist_ok=True)
        script = commands_dir / f"script_{uuid.uuid4()}.sh"
        script.write_text(substitute(str(step["run"]), contexts))
        kinds = ["GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH"] + (["GITHUB_STEP_SUMMARY"] if self.step_summary else [])
        files = {kind: commands_dir / f"{kind.lower()}_{uuid.uuid4()}" for kind in kinds}
        for path in files.values():
            path.touch()
        process_env = {**self.env, **self.file_env}
        process_env.pop("GITHUB_STEP_SUMMARY", None)
        process_env["PATH"] = os.pathsep.join([*self.path_entries, process_env.get("PATH", os.defpath)])
        process_env.update(
            {k: os.fspath(v) for k, v in files.items()},
            GITHUB_ACTIONS="true",
            CI="true",
            GITHUB_ACTION_PATH=os.fspath(self.action_dir),
            GITHUB_WORKSPACE=os.fspath(self.workspace),
            RUNNER_TEMP=os.fspath(self.runner_temp),
            RUNNER_OS="Linux",
        )
        process_env.update(result.env)
        cwd = self.workspace
        if step.get("working-directory"):
            cwd = self.workspace / substitute(str(step["working-directory"]), contexts)
        try:
            proc = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", os.fspath(script)],
                env=process_env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
            result.exit_code, result.stdout, result.stderr = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as e:
            result.exit_code = 124
            result.stdout = _text(e.stdout)
            result.stderr = _text(e.stderr) + f"\n(timed out after {self.timeout:.0f} s)"
        result.status = "success" if result.exit_code == 0 else "failure"
        result.outputs = read_file_command(files["GITHUB_OUTPUT"])
        self.file_env.update(read_file_command(files["GITHUB_ENV"]))
        added = [line for line in files["GITHUB_PATH"].read_text().splitlines() if line]
        self.path_entries[:0] = reversed(added)
        result.summary = files["GITHUB_STEP_SUMMARY"].read_text() if self.step_summary else ""


def _text(output: str | bytes | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def run_action(
    action_dir: Path,
    inputs: Mapping[str, object],
    *,
    env: Mapping[str, str],
    workspace: Path,
    runner_temp: Path,
    only: Collection[str] | None = None,
    timeout: float = STEP_TIMEOUT,
    step_summary: bool = True,
    stand_in: Mapping[str, Mapping[str, str]] | None = None,
) -> ActionResult:
    """Run the composite action in action_dir with inputs (values as a `with:` block gives them).

    env is the job's environment; workspace is GITHUB_WORKSPACE (the steps' working folder); runner_temp
    is RUNNER_TEMP. With only, the steps whose ids are not in it are skipped (reason "not selected"); stand_in
    gives such a step's outputs by its id, as if it had run (an install step's path, for the steps after it).
    Without step_summary, steps get no GITHUB_STEP_SUMMARY, as on Forgejo's and Gitea's runners.
    """
    action_dir = action_dir.resolve()
    action = load_action(action_dir)
    declared = action.get("inputs") or {}
    unknown = {k.lower() for k in inputs} - {k.lower() for k in declared}
    if unknown:
        raise ValueError(f"inputs the action does not declare: {sorted(unknown)}")
    workspace.mkdir(parents=True, exist_ok=True)
    runner_temp.mkdir(parents=True, exist_ok=True)
    job = _Job(action_dir, workspace, runner_temp, dict(env), timeout, step_summary)

    base: dict[str, Any] = {
        "github": _CaseInsensitive(
            action_path=os.fspath(action_dir),
            workspace=os.fspath(workspace),
            action="__run",
            event_name="push",
        ),
        "runner": _CaseInsensitive(temp=os.fspath(runner_temp), os="Linux", arch="X64", name="action_runner"),
        "inputs": _CaseInsensitive(),
        "steps": _CaseInsensitive(),
        "env": _CaseInsensitive(env),
    }
    given = {k.lower(): _input_text(v) for k, v in inputs.items()}
    for name, spec in declared.items():
        if name.lower() in given:
            base["inputs"][name] = given[name.lower()]
        else:
            base["inputs"][name] = substitute(_input_text((spec or {}).get("default")), base)

    masks: list[str] = []
    annotations: list[tuple[str, str]] = []
    results: list[StepResult] = []
    failed = False
    for index, step in enumerate(action["runs"].get("steps") or []):
        step_id = step.get("id")
        name = step.get("name") or step.get("uses") or f"step {index}"
        result = StepResult(index, step_id, name, step.get("uses"), "skipped")
        contexts = job.contexts(base)
        if only is not None and step_id not in only:
            result.reason = "not selected"
            result.outputs = dict((stand_in or {}).get(step_id or "", {}))
        elif not condition(step.get("if"), contexts, failed):
            result.reason = f"if: {step.get('if')}"
        elif "uses" in step:
            result.reason = "uses: not run by this runner"
        else:
            job.run_step(step, result, contexts)
            for stream in (result.stdout, result.stderr):
                for line in stream.splitlines():
                    command = _COMMAND.match(line)
                    if command is None:
                        continue
                    kind, data = command.group(1), _unescape(command.group(2))
                    if kind == "add-mask" and data:
                        masks.append(data)
                    elif kind in ("error", "warning", "notice"):
                        annotations.append((kind, data))
            failed = failed or result.status == "failure"
        if step_id:
            base["steps"][step_id] = _CaseInsensitive(
                outputs=_CaseInsensitive(result.outputs), outcome=result.status, conclusion=result.status
            )
        results.append(result)

    final = job.contexts(base)
    outputs = {
        name: substitute(_input_text((spec or {}).get("value")), final)
        for name, spec in (action.get("outputs") or {}).items()
    }
    return ActionResult(
        steps=results,
        outputs=outputs,
        masks=masks,
        annotations=annotations,
        summary="".join(s.summary for s in results),
        env=job.file_env,
        path=job.path_entries,
        scanned=(runner_temp, workspace),
    )
