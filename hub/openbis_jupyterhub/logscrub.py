"""Keeps openBIS tokens out of the hub's log, whatever logs them.

JupyterHub scrubs ``?token=`` from its access log, but not every line: tornado logs the
full URI of every failed request, and the proxy's error page carries the original URL,
token included, in a nested query parameter. A filter on the log handlers catches all.
"""

import logging
import re

_PATTERNS = [
    # token=…, sessionID=…, also URL-encoded inside another parameter (token%3D…)
    (
        re.compile(r"(?i)(token|sessionID)(=|%3D)(.+?)(?=&|%26|[\s\"'<>),]|$)"),
        r"\1\2[secret]",
    ),
    # the openBIS session token format itself: user-yyMMddHHmmssSSSx<32 hex>
    (re.compile(r"(-\d{15}x)[0-9A-Fa-f]{32}\b"), r"\1[secret]"),
]


def scrub(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class ScrubSecrets(logging.Filter):
    def filter(self, record):
        message = record.getMessage()
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


def install(logger: logging.Logger):
    """Add the filter to every handler of ``logger`` (records of child loggers pass there)."""
    for handler in logger.handlers:
        if not any(isinstance(f, ScrubSecrets) for f in handler.filters):
            handler.addFilter(ScrubSecrets())
