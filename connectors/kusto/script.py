"""A KQL control-command script (``infra/fabric/eventhouse_schema.kql``) split into its commands."""

from __future__ import annotations

import re


def _code(block: str) -> str:
    """``block`` without its leading ``//`` comment lines."""
    lines = block.strip().splitlines()
    while lines and lines[0].lstrip().startswith("//"):
        lines.pop(0)
    return "\n".join(lines).strip()


def split_commands(text: str) -> list[str]:
    """A script's commands: blocks separated by blank lines, each starting with ``.``.

    A block that does not start with ``.`` continues the one before it (a blank line inside a
    function body), and blocks of comments alone are dropped.
    """
    commands: list[str] = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        code = _code(block)
        if not code:
            continue
        if code.startswith(".") or not commands:
            commands.append(code)
        else:
            commands[-1] += "\n\n" + block.strip()
    return commands
