"""Reading Instagram's post nodes as Instaloader saves them: a field may sit at several paths (the GraphQL
node, the iPhone API's `iphone_struct`, older layouts), so each is found by the first path present.

engage/data/instaloader.py reads dumps with these; nothing here raises: a missing path is None.
"""

from __future__ import annotations

from typing import Any


def dig(value: Any, *keys: str | int) -> Any:
    """value[k1][k2]... or None when any step is missing."""
    for key in keys:
        if isinstance(key, str) and isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(key, int) and isinstance(value, list) and -len(value) <= key < len(value):
            value = value[key]
        else:
            return None
    return value


def iphone_struct(node: dict[str, Any]) -> dict[str, Any]:
    struct = node.get("iphone_struct")
    return struct if isinstance(struct, dict) else {}


def first_present(node: dict[str, Any], *paths: tuple[str | int, ...]) -> tuple[str, Any]:
    """The first of `paths` present (not None) in `node`, as (dotted path, value); ('', None) if none is."""
    for keys in paths:
        value = dig(node, *keys)
        if value is not None:
            return ".".join(str(k) for k in keys), value
    return "", None


def node_shortcode(node: dict[str, Any]) -> str | None:
    _, value = first_present(node, ("shortcode",), ("code",), ("iphone_struct", "code"))
    return str(value) if value not in (None, "") else None


def node_post_id(node: dict[str, Any]) -> str | None:
    shortcode = node_shortcode(node)
    if shortcode is not None:
        return shortcode
    _, value = first_present(node, ("id",), ("pk",), ("iphone_struct", "pk"), ("iphone_struct", "id"))
    return str(value) if value not in (None, "") else None


TIMESTAMP_PATHS: tuple[tuple[str | int, ...], ...] = (
    ("taken_at_timestamp",), ("date",), ("taken_at",), ("iphone_struct", "taken_at"),
)


def node_timestamp(node: dict[str, Any]) -> Any:
    return first_present(node, *TIMESTAMP_PATHS)[1]
