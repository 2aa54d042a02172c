"""Find where in a Cedar policy text an error is, since Cedar's messages do not say.

Splits the text into statements (each ends with `;` outside strings and comments) and records
where each begins; the N-th statement is Cedar's `policyN`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Statement", "split_statements", "position_of"]


@dataclass(frozen=True, slots=True)
class Statement:
    text: str
    start: int  # offset of the first character that is not blank or comment
    end: int    # offset just past the statement's `;` (or the end of the text)
    line: int
    column: int


def position_of(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of `offset` in `text`."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def split_statements(text: str) -> tuple[list[Statement], Statement | None]:
    """Statements ending in `;`, and the trailing text after the last one (None if blank)."""
    statements: list[Statement] = []
    index = 0
    begin = -1
    piece_start = 0
    length = len(text)
    while index < length:
        char = text[index]
        if char == "/" and text.startswith("//", index):
            newline = text.find("\n", index)
            index = length if newline < 0 else newline + 1
            continue
        if char.isspace():
            index += 1
            continue
        if begin < 0:
            begin = index
        if char == '"':
            index += 1
            while index < length and text[index] != '"':
                index += 2 if text[index] == "\\" else 1
            index += 1
            continue
        if char == ";":
            line, column = position_of(text, begin)
            statements.append(Statement(text[piece_start:index + 1], begin, index + 1, line, column))
            begin = -1
            piece_start = index + 1
        index += 1
    trailing = None
    if begin >= 0:
        line, column = position_of(text, begin)
        trailing = Statement(text[piece_start:], begin, length, line, column)
    return statements, trailing


_TOKEN = re.compile(r"`([^`]{1,80})`")


def locate_token(text: str, statement: Statement, message: str) -> tuple[int, int]:
    """Line and column of the first token Cedar quotes in `message`, else of the statement."""
    match = _TOKEN.search(message)
    if match:
        offset = text.find(match.group(1), statement.start, statement.end)
        if offset >= 0:
            return position_of(text, offset)
    return statement.line, statement.column
