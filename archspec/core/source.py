"""Source text and spans: where every piece of a spec came from."""

# No `from __future__ import annotations`: pydantic would compile each of Span's field
# annotations from its string at every start.
import bisect
import re
from pathlib import Path
from typing import BinaryIO

from archspec.core.limits import MAX_SOURCE_BYTES
from archspec.core.model import Frozen, made

_NEWLINE = re.compile("\n")


class Span(Frozen):
    """A half-open range of a source file, with 1-based line and column of both ends."""

    start: int
    end: int
    line: int
    col: int
    end_line: int
    end_col: int


class Source:
    """A spec's text with its path, able to turn offsets into spans and lines."""

    def __init__(self, text: str, path: str = "<input>") -> None:
        # A UTF-8 byte-order mark (editors on Windows write one) is not part of the text.
        self.text = text.removeprefix("\ufeff")
        text = self.text
        self.path = path
        self._line_starts = [0]
        self._line_starts.extend(m.end() for m in _NEWLINE.finditer(text))

    @classmethod
    def read(cls, path: str | Path) -> "Source":
        """Read a file as UTF-8; undecodable bytes become U+FFFD (reported by the parser).

        At most one byte past the size limit is read: the parser rejects the file for its
        size, and a huge file is never held in memory.
        """
        with Path(path).open("rb") as handle:
            return cls.read_stream(handle, str(path))

    @classmethod
    def read_stream(cls, handle: BinaryIO, path: str) -> "Source":
        """Read an open binary stream (standard input) as `read` reads a file."""
        data = handle.read(MAX_SOURCE_BYTES + 1)
        return cls(data.decode("utf-8", errors="replace"), path)

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of an offset."""
        offset = max(0, min(offset, len(self.text)))
        index = bisect.bisect_right(self._line_starts, offset) - 1
        return index + 1, offset - self._line_starts[index] + 1

    def span(self, start: int, end: int | None = None) -> Span:
        end = start if end is None else end
        line, col = self.position(start)
        starts = self._line_starts
        if 0 <= start <= end <= len(self.text) and (line == len(starts) or end < starts[line]):
            end_line, end_col = line, col + end - start  # on the same line: no second search
        else:
            end_line, end_col = self.position(end)
        return made(Span, {"start": start, "end": end, "line": line, "col": col,
                           "end_line": end_line, "end_col": end_col})

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its newline (`\n` or `\r\n`)."""
        if line < 1 or line > len(self._line_starts):
            return ""
        start = self._line_starts[line - 1]
        end = self.text.find("\n", start)
        return self.text[start : end if end >= 0 else len(self.text)].removesuffix("\r")
