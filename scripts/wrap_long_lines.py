"""Wrap the lines over LIMIT characters, so that E501 can be switched on (issue 18), in one of two ways:

    python scripts/wrap_long_lines.py --keep-layout $(git ls-files '*.py')      # the code's own layout
    ruff format . && python scripts/wrap_long_lines.py $(git ls-files '*.py')  # ruff's layout
    python scripts/wrap_long_lines.py --check $(git ls-files '*.py')   # meaning unchanged against HEAD

It rewrites, found with the tokenize module (never regexes over code):
* string literals (plain, f, r, b; single-quoted, on one line) that make a line long: split at spaces outside
  any `{...}` replacement field (else at a field's edge; between any characters only where there is no
  space at all, as in a base64 constant; never inside an escape) into implicitly concatenated literals
  with the same prefix and quote, parenthesised where the literal is not already inside brackets;
* full-line comments and docstring lines: re-wrapped with the rest of their paragraph; a trailing comment
  moves above its line (a `noqa`, `type:` or other pragma stays where it is);
* without --keep-layout, `ruff format` (run on the files changed) lays out the split literals; with it,
  long code lines are broken in place between two tokens inside their brackets (after a comma by
  preference, aligned with the opening bracket), continuation lines move left inside their bracket and a
  one-line statement without brackets gets its value parenthesised: about one new line per long line.
Passes repeat until nothing changes. Before writing a file it compares the file's AST with the one it read
(docstring whitespace and the split of string constants aside) and refuses the edit if the meaning differs;
`--check` makes the same comparison against a git revision for every file named, formatting included.
The long lines it cannot fix are printed (an f-string replacement field longer than a line, a line inside a
non-docstring triple-quoted string): they need a hand edit or a `# noqa: E501` with a reason.
"""

from __future__ import annotations

import argparse
import ast
import io
import re
import shutil
import subprocess
import sys
import textwrap
import tokenize
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

LIMIT = 110
PASSES = 20
MIN_ROOM = 40  # a string part or a broken line's second part gets at least this many characters
PRAGMA = re.compile(r"#\s*(noqa|type:|pragma|fmt:|pyright:|nosec|pylint:|mypy:|isort:|ruff:)", re.IGNORECASE)
OPEN, CLOSE = "([{", ")]}"


def width(line: str) -> int:
    """Display width as ruff's E501 counts it (East Asian wide characters count 2, combining marks 0)."""
    total = 0
    for ch in line:
        if unicodedata.combining(ch):
            continue
        total += 2 if unicodedata.east_asian_width(ch) in "WF" else 1
    return total


def string_statements(tree: ast.AST) -> Iterator[ast.Expr]:
    """Every statement that is a string alone: docstrings (module, class, function, attribute)."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            yield node


# ---------------------------------------------------------------- meaning: the AST, normalised


class _Normalise(ast.NodeTransformer):
    """Join adjacent string constants inside f-strings; an f-string without fields is its constant."""

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        self.generic_visit(node)
        values: list[ast.expr] = []
        for value in node.values:
            if isinstance(value, ast.Constant) and not value.value:
                continue
            if values and isinstance(value, ast.Constant) and isinstance(values[-1], ast.Constant):
                values[-1] = ast.Constant(values[-1].value + value.value)
            else:
                values.append(value)
        if all(isinstance(v, ast.Constant) for v in values):
            return ast.Constant("".join(v.value for v in values))  # type: ignore[attr-defined]
        node.values = values
        return node


def meaning(source: str) -> str:
    """The AST dump with docstring whitespace collapsed and string constants joined (raises SyntaxError)."""
    tree = ast.parse(source)
    for node in string_statements(tree):
        node.value.value = " ".join(node.value.value.split())  # type: ignore[attr-defined]
    return ast.dump(_Normalise().visit(tree))


# ---------------------------------------------------------------- splitting one string literal


def _escape_end(body: str, i: int, raw: bool) -> int:
    """Index just after the escape sequence that starts at body[i] == '\\'."""
    if raw or i + 1 >= len(body):
        return min(i + 2, len(body))
    kind = body[i + 1]
    if kind == "x":
        return min(i + 4, len(body))
    if kind == "u":
        return min(i + 6, len(body))
    if kind == "U":
        return min(i + 10, len(body))
    if kind == "N" and body[i + 2 : i + 3] == "{":
        end = body.find("}", i)
        return len(body) if end < 0 else end + 1
    if kind in "01234567":
        j = i + 1
        while j < len(body) and j < i + 4 and body[j] in "01234567":
            j += 1
        return j
    return i + 2


def _field_end(body: str, i: int) -> int:
    """Index just after the replacement field that opens at body[i] == '{'."""
    depth = 0
    j = i
    while j < len(body):
        ch = body[j]
        if ch in "'\"":
            close = body.find(ch, j + 1)
            j = len(body) if close < 0 else close + 1
            continue
        if ch in OPEN:
            depth += 1
        elif ch in CLOSE:
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    return len(body)


def cut_points(body: str, raw: bool, fstring: bool) -> tuple[dict[int, int], list[tuple[int, int]]]:
    """Where the body may be cut (offset -> 1 after a space,
    2 at a field's edge, 3 elsewhere) and its fields."""
    cuts: dict[int, int] = {}
    fields: list[tuple[int, int]] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            i = _escape_end(body, i, raw)
            cuts[i] = 3
        elif fstring and ch in "{}" and body[i + 1 : i + 2] == ch:
            i += 2
            cuts[i] = 3
        elif fstring and ch == "{":
            end = _field_end(body, i)
            fields.append((i, end))
            cuts[i] = min(cuts.get(i, 2), 2)
            i = end
            cuts[i] = 2
        else:
            i += 1
            cuts[i] = 1 if ch == " " else 3
    cuts.pop(0, None)
    cuts.pop(len(body), None)
    return cuts, fields


def _pack(cuts: list[int], length: int, first_room: int, room: int) -> list[int] | None:
    """Greedy cuts so that every piece fits (the first in
    first_room, the rest in room); None if impossible."""
    chosen: list[int] = []
    start, budget = 0, first_room
    while length - start > budget:
        fitting = [c for c in cuts if start < c <= start + budget]
        if not fitting:
            return None
        start = fitting[-1]
        chosen.append(start)
        budget = room
    return chosen


def choose_cuts(cuts: dict[int, int], length: int, first_room: int, room: int) -> list[int] | None:
    """The fewest, most even pieces, using spaces if possible, then field edges; any boundary only where
    there is no space at all (a base64 or hex constant)."""
    levels = (1, 2) if any(p == 1 for p in cuts.values()) else (1, 2, 3)
    for level in levels:
        allowed = sorted(c for c, p in cuts.items() if p <= level)
        best = _pack(allowed, length, first_room, room)
        if best is None:
            continue
        low, high = 1, room  # shrink the room while the number of pieces stays: even pieces, no orphan
        while low < high:
            mid = (low + high) // 2
            trial = _pack(allowed, length, first_room - (room - mid), mid)
            if trial is not None and len(trial) <= len(best):
                high = mid
            else:
                low = mid + 1
        return _pack(allowed, length, first_room - (room - low), low) or best
    return None


def split_literal(text: str, first_room: int, room: int, tail: int = 0) -> list[str] | None:
    """One single-line string literal as several literals, each fitting its room (the last with `tail` more
    characters after it); None if it cannot be cut or the room is too narrow to be worth it."""
    if room < MIN_ROOM:
        return None
    m = re.fullmatch(r"([A-Za-z]*)(['\"])(.*)\2", text, re.DOTALL)
    if not m or text[len(m.group(1)) :].startswith(m.group(2) * 3):  # triple-quoted: left alone
        return None
    prefix, quote, body = m.groups()
    if "\n" in body:
        return None
    raw, fstring = "r" in prefix.lower(), "f" in prefix.lower()
    cuts, fields = cut_points(body, raw, fstring)
    extra = len(prefix) + 2
    chosen = choose_cuts(cuts, len(body) + tail, first_room - extra, room - extra)
    if not chosen:
        return None
    pieces = []
    chosen = [c for c in chosen if c < len(body)]
    if not chosen:
        return None
    for start, end in zip([0, *chosen], [*chosen, len(body)], strict=True):
        part, part_prefix = body[start:end], prefix
        if fstring and not any(start <= a < end for a, _ in fields):
            part = part.replace("{{", "{").replace("}}", "}")
            part_prefix = prefix.replace("f", "").replace("F", "")
        pieces.append(f"{part_prefix}{quote}{part}{quote}")
    return pieces


# ---------------------------------------------------------------- one pass over one file


def _tokens(source: str) -> list[tokenize.TokenInfo]:
    return list(tokenize.generate_tokens(io.StringIO(source).readline))


def literals(tokens: list[tokenize.TokenInfo]) -> Iterator[tuple[tokenize.TokenInfo, str, int]]:
    """Each string literal (an f-string of Python 3.12+ as
    one) with its text and the bracket depth around it."""
    depth = 0
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == tokenize.OP and tok.string in OPEN:
            depth += 1
        elif tok.type == tokenize.OP and tok.string in CLOSE:
            depth -= 1
        elif tok.type == tokenize.STRING:
            yield tok, tok.string, depth
        elif tok.type == getattr(tokenize, "FSTRING_START", -1):
            nest, j = 0, i
            while True:
                nest += {tokenize.FSTRING_START: 1, tokenize.FSTRING_END: -1}.get(tokens[j].type, 0)
                if nest == 0:
                    break
                j += 1
            end = tokens[j]
            if end.start[0] == tok.start[0]:
                text = tok.line[tok.start[1] : end.end[1]]
                yield tokenize.TokenInfo(tokenize.STRING, text, tok.start, end.end, tok.line), text, depth
            i = j
        i += 1


BULLET = re.compile(r"([-*]|\d+\.) ")
CLOSING = ('"""', "'''")


def _wrap(text: str, first: str, rest: str, balance: bool) -> list[str]:
    """textwrap within LIMIT (words never broken); the two lines of a one-line text are made even."""
    options = {"break_long_words": False, "break_on_hyphens": False, "initial_indent": first}
    wrapped = textwrap.wrap(text, LIMIT, subsequent_indent=rest, **options)
    if balance and len(wrapped) == 2:
        low, high = LIMIT // 2, LIMIT
        while low < high:
            mid = (low + high) // 2
            if len(textwrap.wrap(text, mid, subsequent_indent=rest, **options)) <= 2:
                high = mid
            else:
                low = mid + 1
        wrapped = textwrap.wrap(text, low, subsequent_indent=rest, **options)
    return wrapped


def reflow(no: int, prefix: str, texts: list[str | None]) -> tuple[int, list[str]]:
    """Line `no` (its text after `prefix` is texts[0]) re-wrapped with the rest of its paragraph.

    texts[k] is the text after the same prefix of line no + k when that line may continue the paragraph,
    else None; the paragraph also ends at a blank line, a bullet or a doctest line. Returns the last line
    number taken and the new lines.
    """
    hang = BULLET.match(texts[0] or "")
    rest = prefix + (" " * len(hang.group(0)) if hang else "")
    taken = [texts[0] or ""]
    for text in texts[1:]:
        if text is None or not text.strip() or text.strip() in CLOSING:
            break
        if hang:
            if not text.startswith(" " * len(hang.group(0))) or text[len(hang.group(0)) :].startswith(" "):
                break
        elif text.startswith((" ", ">>>", "...")) or BULLET.match(text):
            break
        taken.append(text.strip())
    return no + len(taken) - 1, _wrap(" ".join(taken), prefix, rest, balance=len(taken) == 1)


KEYWORD_BREAKS = {"and", "or", "if", "else", "for"}
OPERATOR_BREAKS = {
    "+",
    "-",
    "*",
    "/",
    "//",
    "%",
    "|",
    "&",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "@",
    "in",
    "not",
    "is",
}
SKIP = {tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.COMMENT, tokenize.ENDMARKER}


class Break(NamedTuple):
    """A place between two tokens inside brackets where a line may end (implicit line joining)."""

    col: int  # the first part ends here
    rest: int  # the second part starts here
    align: int  # the second part's indentation
    priority: int  # 3 after a comma, 2 after an opening bracket / before and-or-if-else-for / between strings
    depth: int  # brackets open around it


def break_points(
    tokens: list[tokenize.TokenInfo], first_col: dict[int, int]
) -> tuple[dict[int, list[Break]], dict[int, tuple[int, int]]]:
    """line -> where it may be broken without changing the code (never inside a string, an f-string or a
    lambda's parameters); and line -> the bracket (line, column) its first token stands in, if any."""
    points: dict[int, list[Break]] = {}
    inside: dict[int, tuple[int, int]] = {}
    stack: list[tuple[int, int]] = []  # open brackets: (line, column)
    lambdas: list[int] = []  # the bracket depth of each lambda whose parameters are being read
    fstring = 0
    prev: tokenize.TokenInfo | None = None
    for tok in tokens:
        if tok.type == getattr(tokenize, "FSTRING_START", -1):
            fstring += 1
        elif tok.type == getattr(tokenize, "FSTRING_END", -1):
            fstring -= 1
            prev = tok if fstring == 0 else None
            continue
        if fstring or tok.type in SKIP:
            prev = None if tok.type != tokenize.COMMENT else prev
            continue
        line = tok.start[0]
        if stack and first_col.get(line) == tok.start[1]:
            inside.setdefault(line, stack[-1])
        if tok.type == tokenize.NAME and tok.string == "lambda":
            lambdas.append(len(stack))
        elif tok.type == tokenize.OP and tok.string == ":" and lambdas and lambdas[-1] == len(stack):
            lambdas.pop()
        in_lambda = bool(lambdas) and lambdas[-1] == len(stack)
        closing = tok.type == tokenize.OP and tok.string in CLOSE
        if prev is not None and stack and prev.end[0] == line and not closing and not in_lambda:
            priority = 0
            if prev.type == tokenize.OP and prev.string == ",":
                priority = 3
            elif prev.type == tokenize.OP and prev.string in OPEN:
                priority = 2
            elif tok.type == tokenize.NAME and tok.string in KEYWORD_BREAKS:
                priority = 2
            elif prev.type == tokenize.STRING and tok.type in (
                tokenize.STRING,
                getattr(tokenize, "FSTRING_START", -1),
            ):
                priority = 2
            elif tok.type in (tokenize.OP, tokenize.NAME) and tok.string in OPERATOR_BREAKS:
                priority = 1
            if priority:
                opened_line, opened_col = stack[-1]
                if prev.type == tokenize.OP and prev.string in OPEN:
                    align = first_col.get(line, 0) + 4
                elif opened_line == line:
                    align = opened_col + 1
                else:
                    align = first_col.get(line, 0)
                points.setdefault(line, []).append(
                    Break(prev.end[1], tok.start[1], align, priority, len(stack))
                )
        if tok.type == tokenize.OP and tok.string in OPEN:
            stack.append(tok.start)
        elif tok.type == tokenize.OP and tok.string in CLOSE and stack:
            stack.pop()
        prev = tok
    return points, inside


def break_line(line: str, points: list[Break], pragma: str = "") -> list[str] | None:
    """The line in two at its best break: both parts fitting if possible, at a comma, outermost, rightmost.

    A trailing pragma comment (`pragma`, cut off `line` by the caller) stays on the first part's line.
    """
    usable = [
        p
        for p in points
        if p.align < p.col and p.align <= LIMIT - MIN_ROOM and width(line[: p.col].rstrip()) <= LIMIT
    ]
    if not usable:
        return None

    def fits(p: Break) -> bool:
        return p.align + width(line[p.rest :]) <= LIMIT

    best = max(usable, key=lambda p: (fits(p), p.priority, -p.depth, p.col))
    first = line[: best.col].rstrip() + ("  " + pragma if pragma else "")
    return [first, " " * best.align + line[best.rest :]]


def parenthesize(line: str, no: int, tree: ast.AST) -> str | None:
    """A one-line statement with no bracket to break in: its value (or assert message) put in parentheses."""
    encoded = line.encode("utf-8")
    best: ast.expr | None = None
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt) or node.lineno != no or node.end_lineno != no:
            continue
        options: list[ast.expr | None] = []
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign | ast.Return | ast.Expr):
            options.append(node.value)
        elif isinstance(node, ast.Assert):
            options += [node.test, node.msg]
        elif isinstance(node, ast.Raise):
            options.append(node.exc)
        for value in options:
            if value is not None and (
                best is None
                or value.end_col_offset - value.col_offset > best.end_col_offset - best.col_offset
            ):  # type: ignore[operator]
                best = value
    if best is None or best.end_col_offset is None:
        return None
    start = len(encoded[: best.col_offset].decode("utf-8"))
    end = len(encoded[: best.end_col_offset].decode("utf-8"))
    if line[:start].rstrip().endswith("(") and line[end:].lstrip().startswith(")"):
        return None  # already in parentheses: nothing to break at inside
    return f"{line[:start]}({line[start:end]}){line[end:]}"


def wrap_source(source: str, keep_layout: bool = False) -> str:
    """One pass: every long line rewritten by the first rule that applies to it.

    keep_layout: long code lines are broken in place (no `ruff format` after), at most one break a line.
    """
    lines = source.split("\n")
    tree = ast.parse(source)
    docs: dict[int, tuple[int, int]] = {}  # line -> the first and last line of its docstring
    for node in string_statements(tree):
        for no in range(node.lineno, (node.end_lineno or node.lineno) + 1):
            docs[no] = (node.lineno, node.end_lineno or node.lineno)
    tokens = _tokens(source)
    comments = {t.start[0]: t for t in tokens if t.type == tokenize.COMMENT}
    by_line: dict[int, list[tuple[tokenize.TokenInfo, str, int]]] = {}
    for tok, text, depth in literals(tokens):
        if tok.start[0] == tok.end[0]:
            by_line.setdefault(tok.start[0], []).append((tok, text, depth))
    first_col: dict[int, int] = {}
    for t in tokens:
        if t.type not in SKIP:
            first_col.setdefault(t.start[0], t.start[1])
    points, inside = break_points(tokens, first_col) if keep_layout else ({}, {})
    in_string = {n for t in tokens for n in range(t.start[0] + 1, t.end[0] + 1)}  # lines a string goes on

    replace: dict[int, tuple[int, list[str]]] = {}  # first line -> (last line replaced, the new lines)
    done = 0
    def layout_fallback(broken: list[str] | None, line: str, no: int,
                        reindented: str | None) -> list[str] | None:
        """When no string can be split: the line broken inside its brackets, or wrapped in parentheses
        (--keep-layout), or only re-indented; None when none of them applies."""
        if broken:
            return broken
        if keep_layout and (wrapped_value := parenthesize(line, no, tree)):
            return [wrapped_value]
        return [reindented] if reindented else None

    for no, line in enumerate(lines, start=1):
        if no <= done or width(line) <= LIMIT:
            continue
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        comment = comments.get(no)
        if comment is not None and comment.start[1] == len(indent):  # a full-line comment (block)
            if PRAGMA.match(stripped) or stripped.startswith("#!"):
                continue
            marker = "#: " if stripped.startswith("#:") else "# "
            texts: list[str | None] = [stripped[len(marker.rstrip()) :].strip()]
            for k in range(no, min(no + 50, len(lines))):  # lines[k] is line k + 1
                other = comments.get(k + 1)
                full = other is not None and other.start[1] == len(indent) and not PRAGMA.match(other.string)
                text = lines[k][len(indent) :]
                texts.append(text[len(marker) :] if full and text.startswith(marker) else None)
            done, wrapped = reflow(no, indent + marker, texts)
            if len(wrapped) > 1:
                replace[no] = (done, wrapped)
            continue
        if comment is not None and not PRAGMA.match(comment.string):  # a trailing comment: above its line
            text = comment.string
            pragma = PRAGMA.search(text)  # a pragma after the words stays on the line
            keep = "  " + text[pragma.start() :] if pragma else ""
            code_indent = " " * first_col.get(no, len(indent))
            words = (text[: pragma.start()] if pragma else text).lstrip("#").strip()
            above = _wrap(words, code_indent + "# ", code_indent + "# ", balance=True)
            replace[no] = (no, [*above, line[: comment.start[1]].rstrip() + keep])
            continue
        pragma_here = comment is not None  # a pragma (others were moved above): it stays with its line
        if pragma_here and width(line[: comment.start[1]].rstrip()) <= LIMIT:
            continue  # E501 does not count a trailing pragma
        reindented = None
        if keep_layout and no in inside and no not in in_string and first_col.get(no) == len(indent):
            if no - 1 in replace:
                continue  # the line above changes in this pass: align with it in the next one
            opened = inside[no][0]
            header = re.match(r"\s*(async |def |class |if |elif |while |for |with )", lines[opened - 1])
            targets = [first_col.get(opened, 0) + (8 if header else 4)]
            if inside.get(no - 1) == inside[no] and no - 1 not in in_string:
                targets.insert(0, first_col.get(no - 1, len(indent)))  # in line with the item above
            targets = [t for t in targets if t < len(indent)]
            fitting = [t for t in targets if width(" " * t + stripped) <= LIMIT]
            if fitting:  # a continuation line moved left inside its bracket
                replace[no] = (no, [" " * fitting[0] + stripped])
                continue
            if targets:
                reindented = " " * min(targets) + stripped
        if no in docs:
            first, last = docs[no]
            one_line = first == last
            if one_line and not re.match(r"[rRuU]?('''|\"\"\")", stripped):
                continue
            texts = [stripped]
            for k in range(no, last):  # the docstring's next lines, at the same indent
                texts.append(lines[k][len(indent) :] if lines[k].startswith(indent) else None)
            done, wrapped = reflow(no, indent, texts)
            if len(wrapped) > 1:
                replace[no] = (done, wrapped)
            continue
        broken = None
        if keep_layout and pragma_here:
            broken = break_line(line[: comment.start[1]].rstrip(), points.get(no, []), comment.string)
        elif keep_layout:
            broken = break_line(line, points.get(no, []))
        kept = len(comment.string) + 2 if pragma_here else 0  # E501 does not count the pragma
        if broken and width(broken[0]) - kept <= LIMIT and width(broken[1]) <= LIMIT:
            replace[no] = (no, broken)
            continue
        candidates = [c for c in by_line.get(no, []) if len(c[1]) >= 16]
        if not candidates:
            if (fallback := layout_fallback(broken, line, no, reindented)) is not None:
                replace[no] = (no, fallback)
            continue
        tok, text, depth = max(candidates, key=lambda c: len(c[1]))
        col = tok.start[1]
        base = len(indent) + (4 if depth == 0 else 0)
        first_room = LIMIT - (base if depth == 0 else col) - 2
        room = LIMIT - base - 2
        if keep_layout:  # the parts will stand aligned under the first one
            first_room = LIMIT - col - (1 if depth == 0 else 0) - 2
            room = LIMIT - (col + 1 if depth == 0 else min(col, first_col.get(no, col) + 4)) - 2
        tail = width(line[tok.end[1] : comment.start[1] if comment else None].rstrip()) if keep_layout else 0
        tail = tail if tail <= room // 2 else 0
        pieces = split_literal(text, first_room, room, tail)
        if not pieces:
            if (fallback := layout_fallback(broken, line, no, reindented)) is not None:
                replace[no] = (no, fallback)
            continue
        joined = " ".join(pieces)
        if depth == 0:
            joined = f"({joined})"
        replace[no] = (no, [line[:col] + joined + line[tok.end[1] :]])
    out: list[str] = []
    skip = 0
    for no, line in enumerate(lines, start=1):
        if no <= skip:
            continue
        skip, new = replace.get(no, (no, [line]))
        out.extend(new)
    return "\n".join(out)


def long_lines(path: Path) -> list[str]:
    return [
        f"{path}:{no}: {line.strip()[:100]}"
        for no, line in enumerate(path.read_text().split("\n"), start=1)
        if width(line) > LIMIT
    ]


def ruff_format(paths: list[Path]) -> None:
    ruff = shutil.which("ruff")
    command = [ruff] if ruff else [sys.executable, "-m", "ruff"]
    subprocess.run([*command, "format", "--quiet", *map(str, paths)], check=True)


def wrap(paths: list[Path], keep_layout: bool) -> int:
    refused: list[str] = []
    for _ in range(PASSES):
        changed = []
        for path in paths:
            source = path.read_text()
            try:
                new = wrap_source(source, keep_layout)
                if new == source:
                    continue
                if meaning(new) != meaning(source):
                    refused.append(f"{path}: the wrapped text would change the AST; left as it was")
                    continue
            except (SyntaxError, tokenize.TokenError, IndentationError) as error:
                refused.append(f"{path}: not wrapped ({error})")
                continue
            path.write_text(new)
            changed.append(path)
        if not changed:
            break
        if not keep_layout:
            ruff_format(changed)
    left = [line for path in paths for line in long_lines(path)]
    print("\n".join(sorted(set(refused)) + left))
    print(f"{len(left)} long lines left for hand editing; {len(set(refused))} files refused", file=sys.stderr)
    return 1 if refused else 0


def check(paths: list[Path], revision: str) -> int:
    """Fail when a file's meaning differs from its version at `revision` (docstring whitespace aside)."""
    bad = 0
    for path in paths:
        shown = subprocess.run(["git", "show", f"{revision}:./{path}"], capture_output=True, text=True)
        if shown.returncode != 0:
            continue  # not in that revision: nothing to compare
        try:
            same = meaning(shown.stdout) == meaning(path.read_text())
        except SyntaxError as error:
            same = False
            print(f"{path}: does not parse ({error})")
        if not same:
            bad += 1
            print(f"{path}: the AST differs from {revision} beyond docstring whitespace")
    print(f"{len(paths)} files compared with {revision}: {bad} changed meaning", file=sys.stderr)
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("paths", nargs="+", type=Path, help="the .py files (e.g. $(git ls-files '*.py'))")
    parser.add_argument("--check", action="store_true", help="only compare each file's AST with --against")
    parser.add_argument("--against", default="HEAD", help="the git revision --check compares with (HEAD)")
    parser.add_argument(
        "--keep-layout",
        action="store_true",
        help="no `ruff format`: break long code lines in place inside their brackets (fewer new lines)",
    )
    args = parser.parse_args(argv)
    if args.check:
        return check(args.paths, args.against)
    return wrap(args.paths, args.keep_layout)


if __name__ == "__main__":
    sys.exit(main())
