"""Text rendered for people: the CLI's errors log and settings, the demo's printouts.

The ledger stores what HubSpot sent (after `valid_unicode` and the map layer's cleaning); only
rendering neutralises it, so that nothing is lost and every output can decide for itself. A
value rendered here cannot:

- start a spreadsheet formula when the output is pasted or saved into Excel, LibreOffice or
  Google Sheets: a value whose first character (after leading spaces) is `=`, `+`, `-`, `@`
  (or their full-width forms), a tab or a carriage return gets a leading apostrophe, the
  spreadsheet's own "this is text" mark (OWASP, CSV injection). "-5" is shown as "'-5";
- reorder what is shown around it: bidirectional embeddings, overrides and isolates
  (U+202A–U+202E, U+2066–U+2069) become U+FFFD, so "invoice" + U+202E + "fdp.exe" cannot pass
  for "invoiceexe.pdf", and the reader sees that something was there;
- drive the terminal or forge lines: line breaks and tabs become a space (one record, one
  line), other control characters (C0, DEL, C1: escape sequences) become U+FFFD.
"""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
# First characters a spreadsheet reads as a formula (tab and CR: some strip them, then see one).
FORMULA_START = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
TEXT_MARK = "'"  # what spreadsheets take as "the rest is text", and do not show

_BREAKS = re.compile("[\t\n\r\x0b\x0c\x85\u2028\u2029]")
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def display_safe(text: str) -> str:
    """`text` as it may be printed for people (see the module's docstring): formula start
    neutralised, bidi controls and control characters replaced, line breaks made spaces."""
    marked = TEXT_MARK + text if text.lstrip(" ")[:1] in FORMULA_START else text
    return _UNSAFE.sub(REPLACEMENT, _BREAKS.sub(" ", marked))


def fit(text: str, width: int) -> str:
    """`display_safe(text)` in at most `width` characters, cut with a visible "…"."""
    shown = display_safe(text)
    return shown if len(shown) <= width else shown[: width - 1] + "…"
