"""The shipped experiment configs explain every choice: a reader (or a reviewer of a result)
relies on each ``key = value`` line of ``experiments/configs/*.toml`` carrying a comment of
its own, inline or on the line directly above, saying why that value was chosen."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "experiments" / "configs").glob("*.toml"))

# A bare or quoted key (dotted keys too) followed by '='.
KEY_LINE = re.compile(r"""\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*[^=\s]+)*\s*=""")
# Top-level keys that explain themselves: the experiment's description is its own prose.
EXEMPT_TOP_LEVEL = {"description"}


def _scan(text: str) -> list[tuple[int, str, bool, bool]]:
    """Per line: (number, the key if the line starts a ``key = value`` outside any array
    or multi-line string else "", whether it has a comment after its code, whether it is
    a comment line of its own). A small TOML lexer: strings (basic, literal, multi-line),
    brackets and comments."""
    out = []
    string = ""  # the open string's delimiter: ", ', \"\"\" or '''
    depth = 0  # open [ and { of values (a table header closes on its line)
    for number, line in enumerate(text.splitlines(), start=1):
        at_top = not string and depth == 0
        match = KEY_LINE.match(line) if at_top else None
        key = match.group(0).rstrip("= \t").strip() if match else ""
        own_comment = not string and line.lstrip().startswith("#")
        comment = False
        i = 0
        while i < len(line):
            if string:
                if string.startswith('"') and line[i] == "\\":  # an escape in a basic string
                    i += 2
                    continue
                if line.startswith(string, i):
                    i += len(string)
                    string = ""
                    continue
                i += 1
                continue
            if line[i] == "#":
                comment = True
                break
            for quote in ('"""', "'''", '"', "'"):
                if line.startswith(quote, i):
                    string = quote
                    i += len(quote)
                    break
            else:
                if line[i] in "[{":
                    depth += 1
                elif line[i] in "]}":
                    depth -= 1
                i += 1
        if len(string) == 1:  # a one-line string cannot span lines: a syntax error
            string = ""
        out.append((number, key, comment and not own_comment, own_comment))
    return out


def _uncommented(text: str) -> list[str]:
    lines = _scan(text)
    missing = []
    top_level = True
    for index, (number, key, inline, _) in enumerate(lines):
        raw = text.splitlines()[number - 1].strip()
        if raw.startswith("["):
            top_level = False
        if not key or inline or (index > 0 and lines[index - 1][3]):
            continue
        if top_level and key in EXEMPT_TOP_LEVEL:
            continue
        missing.append(f"line {number}: {raw}")
    return missing


# The check itself must be able to fail: what it flags and what it lets pass.
SAMPLE = """# the header
name = "x"
description = \"\"\"a = b
# not a comment
c = d\"\"\"
[protocol]
seeds = [1]
tag = "a # b"
folds = [0, 1]   # two folds
# why these
reference = [
    "a",
]
description = "not top-level"
"""


def test_every_config_choice_has_a_comment() -> None:
    assert _uncommented(SAMPLE) == [
        "line 7: seeds = [1]",
        'line 8: tag = "a # b"',
        'line 14: description = "not top-level"',
    ]
    assert CONFIGS, "no experiment configs found"
    missing = [
        f"{path.name} {line}"
        for path in CONFIGS
        for line in _uncommented(path.read_text(encoding="utf-8"))
    ]
    assert not missing, "settings without a comment (inline or on the line above):\n" + (
        "\n".join(missing)
    )
