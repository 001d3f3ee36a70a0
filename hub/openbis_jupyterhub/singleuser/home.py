"""How full the user's home is: for the lab's status bar, and in the message of a failed save.

One ``statvfs`` of the home, no walk through its files: cheap enough for every request. Where
the home is a filesystem of its own size, that is its bound: an XFS project quota (Docker's
``local`` volume driver with ``size``) reports the quota as the size, a Kubernetes volume its
own. The hub names the bound it set (``contract.ENV_HOME_SIZE``); the home counts as bounded
when its filesystem is no larger than that. Otherwise (no bound set, or a home created before
it, which stays unbounded) the numbers are those of the whole disk, and only its free space
says something about the home.

``HomeContentsManager`` (the image's ``jupyter_server_config.py``) answers a save that fails
for lack of space (ENOSPC; EDQUOT from user quotas) with 507 and words for the user, instead
of jupyter_server's "Unexpected error while saving file: … [Errno 28] No space left on device".
"""

import errno
import os

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from tornado import web

from .. import contract

FULL = {errno.ENOSPC, errno.EDQUOT}


def usage(home: str) -> dict:
    """``{"bounded", "size", "used", "free"}`` in bytes: the home's own numbers when it is
    bounded, else the disk's (``used`` then is the whole disk's, not the home's)."""
    st = os.statvfs(home)
    size = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    try:
        limit = contract.size_bytes(os.environ.get(contract.ENV_HOME_SIZE) or "")
    except ValueError:
        limit = 0
    return {"bounded": 0 < size <= limit, "size": size, "used": used, "free": free}


def human(n: float) -> str:
    """Bytes as people read them, as the lab's formatBytes: ``1.2 GB`` (binary units)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def full_message(home: str, path: str) -> str:
    """Why ``path`` was not saved, and what to do, in the home's numbers."""
    now = usage(home)
    if now["bounded"]:
        state = (
            f"Your home is full: {human(now['used'])} of {human(now['size'])} used, "
            f"{human(now['free'])} free."
        )
    else:
        state = f"The disk that holds your home is full ({human(now['free'])} free)."
    return (
        f"{state} {path} was not saved (the file on disk may be cut short); your changes are "
        "still open here. Delete or move files you no longer need (largest first: "
        "`du -sh ~/* ~/.[!.]* | sort -h` in a terminal; files deleted in JupyterLab wait in "
        "~/.local/share/Trash and still count), then save again. Still full? Ask your "
        "JupyterHub admin for more space."
    )


def out_of_space(error: BaseException | None) -> bool:
    """Whether ``error`` or one it was raised from or during is ENOSPC or EDQUOT (restoring
    the backup of a failed save can fail too, hiding the first error)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError) and error.errno in FULL:
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


class HomeContentsManager(AsyncLargeFileManager):
    """jupyter_server's default contents manager; a save into a full home answers 507."""

    async def save(self, model, path=""):
        try:
            return await super().save(model, path)
        except web.HTTPError as e:
            if out_of_space(e):
                raise web.HTTPError(507, full_message(self.root_dir, path)) from e
            raise
