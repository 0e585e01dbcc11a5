"""Wrap the lines `ruff format` leaves over LIMIT characters (issue 18's E501 step, not yet applied).

    ruff format . && python scripts/wrap_long_lines.py $(git ls-files '*.py')

Touches only full-line comments, trailing comments (moved above their line), docstring lines (one-line
docstrings become two lines) and string literals alone on a line (split into two implicitly joined literals,
never inside an f-string's braces). Prints the long lines that remain, for hand editing (about 25 on the tree of
2026-12-06), then E501 can be switched on in pyproject.toml.
"""
import ast
import re
import sys
import textwrap
import tokenize
from pathlib import Path

LIMIT = 110


def docstring_lines(source: str) -> set[int]:
    lines: set[int] = set()
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return lines
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            if node.end_lineno and node.end_lineno > node.lineno:
                lines.update(range(node.lineno + 1, node.end_lineno))  # inner lines only
                lines.add(node.lineno)
                lines.add(node.end_lineno)
    return lines


def single_docstrings(source: str) -> set[int]:
    lines: set[int] = set()
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return lines
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            if node.end_lineno == node.lineno:
                lines.add(node.lineno)
    return lines


STRING_LINE = re.compile(r"""^(\s*)((?:\w+=|"[^"]*":\s*)?)([fFrR]{0,2})(["'])((?:[^"'\\]|\\.)*)\4(\s*[,)\]]*\s*,?)$""")


def split_string_line(line: str) -> list[str] | None:
    """A line holding one plain string literal (an implicitly concatenated part): two literals."""
    m = STRING_LINE.match(line)
    if not m:
        return None
    indent, key, prefix, q, body, rest = m.groups()
    if q in body:
        return None
    room = LIMIT - len(indent) - len(key) - len(prefix) - 2
    depth = 0
    cut = -1
    for i, ch in enumerate(body):
        if "f" in prefix.lower():
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
        if ch == " " and depth == 0 and i + 1 <= room:
            cut = i + 1
    if cut <= 0:
        return None
    if len(body) - cut < 25:  # an orphan: cut nearer the middle instead
        spaces = [i + 1 for i, ch in enumerate(body) if ch == " " and i + 1 <= room]
        mid = [i for i in spaces if i >= len(body) // 3]
        if mid and _outside_braces(body, prefix, min(mid, key=lambda i: abs(i - len(body) // 2))):
            cut = min(mid, key=lambda i: abs(i - len(body) // 2))
    first, second = body[:cut], body[cut:]
    p2 = prefix if ("{" in second or "f" not in prefix.lower()) else prefix.replace("f", "").replace("F", "")
    p1 = prefix if ("{" in first or "f" not in prefix.lower()) else prefix.replace("f", "").replace("F", "")
    a = f"{indent}{key}{p1}{q}{first}{q}"
    b = f"{indent}{p2}{q}{second}{q}{rest}"
    if len(b) > LIMIT:
        more = split_string_line(b)
        if more is None:
            return None
        return [a, *more]
    return [a, b]


def _outside_braces(body: str, prefix: str, cut: int) -> bool:
    if "f" not in prefix.lower():
        return True
    return body[:cut].count("{") == body[:cut].count("}")


def comment_positions(source: str) -> dict[int, int]:
    """line number -> column of a comment token on that line."""
    out = {}
    try:
        for tok in tokenize.generate_tokens(iter(source.splitlines(keepends=True)).__next__):
            if tok.type == tokenize.COMMENT:
                out[tok.start[0]] = tok.start[1]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return out


def wrap_file(path: Path) -> list[str]:
    source = path.read_text()
    lines = source.split("\n")
    docs = docstring_lines(source)
    single = single_docstrings(source)
    comments = comment_positions(source)
    out: list[str] = []
    left: list[str] = []
    for no, line in enumerate(lines, start=1):
        if len(line) <= LIMIT:
            out.append(line)
            continue
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        col = comments.get(no)
        if col is not None and col == len(indent):  # a full-line comment
            prefix = "#: " if stripped.startswith("#:") else "# "
            body = stripped[len(prefix.rstrip()):].strip()
            out.extend(textwrap.wrap(body, LIMIT - len(indent) - len(prefix), initial_indent=indent + prefix,
                                     subsequent_indent=indent + prefix, break_long_words=False,
                                     break_on_hyphens=False) or [line])
            # textwrap's widths exclude the prefix: recompute with the prefix counted
            continue
        if col is not None and col > len(indent):  # a trailing comment: above its line
            code = line[:col].rstrip()
            body = line[col:].lstrip("#").strip()
            wrapped = textwrap.wrap(body, LIMIT - len(indent) - 2, initial_indent="", subsequent_indent="",
                                    break_long_words=False, break_on_hyphens=False)
            out.extend(indent + "# " + w for w in wrapped)
            out.append(code)
            if len(code) > LIMIT:
                left.append(f"{path}:{no}: {code[:120]}")
            continue
        if no in docs and no not in single:
            wrapped = textwrap.wrap(stripped, LIMIT - len(indent), break_long_words=False, break_on_hyphens=False)
            if all(len(indent + w) <= LIMIT for w in wrapped):
                out.extend(indent + w for w in wrapped)
                continue
        if no in single:
            q = stripped[:3]
            body = stripped[3:-3]
            wrapped = textwrap.wrap(q + body, LIMIT - len(indent) - 3, break_long_words=False, break_on_hyphens=False)
            if stripped.endswith(q) and len(wrapped) > 1 and len(indent + wrapped[-1] + q) <= LIMIT:
                wrapped[-1] += q
                out.extend(indent + w for w in wrapped)
                continue
        split = split_string_line(line)
        if split:
            out.extend(split)
            continue
        out.append(line)
        left.append(f"{path}:{no}: {line[:140]}")
    new = "\n".join(out)
    if new != source:
        path.write_text(new)
    return left


if __name__ == "__main__":
    remaining = []
    for name in sys.argv[1:]:
        remaining += wrap_file(Path(name))
    print("\n".join(remaining))
    print(f"{len(remaining)} long lines left for hand editing", file=sys.stderr)
