"""Helpers shared by the data tests: run the CLI, assert a clean user-error failure."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from innpar_freia.cli import cli


def run_cli(*args: object) -> Result:
    """``innpar ARGS`` in-process; exceptions other than user errors propagate."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def assert_clean_failure(result: Result, out: Path, *fragments: str) -> None:
    """A user error: exit code 1, one 'Error:' message with every fragment, no traceback,
    and no output (or temporary) file left behind."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.splitlines()
    assert sum(line.startswith("Error:") for line in lines) == 1, result.output
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.*"))
