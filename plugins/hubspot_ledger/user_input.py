"""Text typed by people (settings values, user and organization names), checked before it
reaches the ledger or a message.

PostgreSQL's text cannot hold NUL, UTF-8 cannot hold a lone surrogate (`"\\ud800"`, what JSON's
`\\ud800` escape or a tool cutting an emoji in half produces), and a control character in a name
is never meant. Left unchecked, each surfaces as a database or encoding error (a bare 500 on the
endpoints, a raw error in the CLI). Here it becomes a sentence naming the field, never quoting
the value (a message must stay printable and JSON-encodable whatever was sent).
"""

from __future__ import annotations

import re

# C0 and C1 controls and DEL. Tabs and line breaks are controls too: none of these values is
# ever more than one line.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(value: str, *, what: str, max_length: int) -> str | None:
    """What is wrong with `value` as `what` ("the income account code"), or None if nothing."""
    if "\x00" in value:
        return f"{what} contains a NUL character"
    if _SURROGATE.search(value):
        return f"{what} is not valid Unicode (it contains a lone surrogate)"
    if _CONTROL.search(value):
        return f"{what} contains a control character (a line break, tab or escape)"
    if len(value) > max_length:
        return f"{what} is longer than {max_length} characters"
    return None
