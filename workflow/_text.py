"""Text the library refuses to store or print as it is."""

from __future__ import annotations

__all__ = ["has_lone_surrogate"]


def has_lone_surrogate(text: str) -> bool:
    """Tell whether ``text`` holds half of a UTF-16 pair (``"\\ud800"``), which is no Unicode.

    No database stores such a string; the storage codec and the command's
    input checks both refuse it.
    """
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
