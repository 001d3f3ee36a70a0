"""Checks for folder and file names that come from the ELN (or any other caller).

A name must stay inside the user's home, be visible, and be an ordinary file name on
every file system a home volume may live on. Every check raises ``ValueError`` with a
message meant for the person who typed the name.
"""

import re

MAX_NAME_BYTES = 255
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\]")


def check_name(name: str, what: str = "name") -> str:
    """One path component: no separators, no control characters, not hidden, not too long."""
    if not name:
        raise ValueError(f"The {what} is empty.")
    if _FORBIDDEN.search(name):
        raise ValueError(f"The {what} {name!r} contains a backslash or a control character.")
    if "/" in name:
        raise ValueError(f"The {what} {name!r} contains a slash.")
    if name.startswith("."):
        raise ValueError(f"The {what} {name!r} starts with a dot ('..' and hidden names).")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise ValueError(f"The {what} is longer than {MAX_NAME_BYTES} bytes.")
    return name


def check_folder(folder: str) -> list[str]:
    """A folder relative to the home, ``a/b`` style; returns its components ([] for the home)."""
    if folder.startswith("/"):
        raise ValueError(f"The folder {folder!r} is an absolute path; give one inside your home.")
    parts = folder.rstrip("/").split("/") if folder.strip("/") else []
    return [check_name(part, "folder name") for part in parts]


def check_notebook_filename(filename: str) -> str:
    """A notebook file name: a valid name ending in ``.ipynb``."""
    check_name(filename, "file name")
    if not filename.endswith(".ipynb") or filename == ".ipynb":
        raise ValueError(f"The file name {filename!r} does not end in .ipynb.")
    return filename


def numbered_names(filename: str):
    """``N.ipynb``, ``N 2.ipynb``, ``N 3.ipynb``, … (the ELN's numbering of taken names)."""
    stem, dot, ext = filename.rpartition(".")
    yield filename
    for n in range(2, 10_000):
        yield f"{stem} {n}{dot}{ext}"
