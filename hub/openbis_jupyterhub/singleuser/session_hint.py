"""Tell users how to refresh an expired openBIS session, wherever pyBIS reports one.

Loaded into every Python kernel as an IPython extension (see the single-user image's
``/etc/ipython/ipython_kernel_config.py``) and used by the ``openbis-data`` command.
The extension also keeps session tokens out of cell output: pyBIS prints each request
openBIS refuses, token included, and cell output is saved in the notebook (and uploaded
with it to openBIS).
"""

import re
import sys

from ..logscrub import scrub

HINT = (
    "Your openBIS session has expired: open Utilities > Jupyter Workspace in the ELN to refresh it."
)

# pyBIS's own messages ("Session is no longer valid. Please log in again.", "Your session
# expired, please log in again") and openBIS's ("Session token … is invalid: user is not
# logged in.", "Session no longer available").
_EXPIRED = re.compile(
    r"session (is )?no longer (valid|available)|session expired|not logged in", re.IGNORECASE
)


def is_session_expired(error: BaseException) -> bool:
    """True when ``error`` is pyBIS reporting a dead openBIS session token."""
    return isinstance(error, ValueError) and bool(_EXPIRED.search(str(error)))


def _show_with_hint(shell, etype, value, tb, tb_offset=None):
    if is_session_expired(value) and HINT not in getattr(value, "__notes__", ()):
        value.add_note(HINT)  # shown under the message; the traceback stays as it was
    shell.showtraceback((etype, value, tb), tb_offset=tb_offset)


def _scrub_output(ipython):
    write = sys.stdout.write
    sys.stdout.write = lambda text: write(scrub(text))
    # error messages from openBIS may quote the token too; this is where ipykernel sends
    # a traceback to the notebook
    show = ipython._showtraceback
    ipython._showtraceback = lambda etype, evalue, stb: show(
        etype, scrub(str(evalue)), [scrub(line) for line in stb]
    )


def load_ipython_extension(ipython):
    ipython.set_custom_exc((ValueError,), _show_with_hint)
    _scrub_output(ipython)
