"""The root command lists its commands from a table and imports each one only to run it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from imgfront.cli.main import COMMANDS, app, load_command


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_table_short_help_is_the_command_own(name):
    command = load_command(name)
    assert command.name == name
    own = (command.help or "").strip().split("\n\n")[0].replace("\n", " ")
    assert COMMANDS[name].short == own


def test_root_help_lists_every_command_in_the_table_order(capsys):
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    listed = [line.split()[1] for line in result.output.splitlines() if line.startswith("│ ") and line[2] != " "]
    assert [n for n in listed if n in COMMANDS] == list(COMMANDS)


def test_version_and_root_help_import_no_command_module():
    probe = (
        "import sys\n"
        "from imgfront.cli.main import main\n"
        "for args in (['--version'], ['--help']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ('imgfront.options', 'imgfront.cli.', 'podman', 'docker')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(heavy) and m != 'imgfront.cli.main')\n"
        "print(loaded, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stderr.strip() == "[]"
    assert "imgfront 0.1.0" in result.stdout
