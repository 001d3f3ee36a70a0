"""``openbis-data``: openBIS datasets from any kernel (Bash, R, Octave) through pyBIS.

Connects like the ELN's Python notebooks do, with ``Openbis()`` and no arguments: the URL
comes from ``OPENBIS_URL``, the session token from ``~/.pybis/<host>.token``, which the
hub keeps current. Errors end the command with exit code 1 and one line on stderr.

    openbis-data info <permId>
    openbis-data download <permId> [dest]
    openbis-data save (--object ID | --experiment ID) [--parents P1,P2] [--name N]
                      [--notes T] [--history-id H] FILE...
"""

import argparse
import contextlib
import io
import os
import sys
from pathlib import Path

from .session_hint import HINT, is_session_expired


class CommandError(Exception):
    """A one-line message for the user."""


def connect():
    if not os.environ.get("OPENBIS_URL"):
        raise CommandError("OPENBIS_URL is not set: run this in a server started by the hub")
    from pybis import Openbis  # slow import: only after the arguments are known to be fine

    return Openbis()


@contextlib.contextmanager
def quiet_pybis():
    """pyBIS prints the failing request, session token included, to stdout: keep it out of
    notebook outputs, which users save into openBIS."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def show_info(o, perm_id: str) -> None:
    with quiet_pybis():
        ds = o.get_dataset(perm_id)
        files = ds.file_list
    data = ds.data
    print(f"permId: {ds.permId}")
    print(f"type: {data['type']['code']}")
    for kind in ("sample", "experiment"):
        if data.get(kind):
            label = "object" if kind == "sample" else "experiment"
            print(f"{label}: {data[kind]['identifier']['identifier']}")
    print(f"parents: {', '.join(p['permId']['permId'] for p in data.get('parents') or [])}")
    for code, value in sorted((data.get("properties") or {}).items()):
        print(f"{code}: {value}")
    print("files:")
    for name in files:
        print(f"  {name}")


def download(o, perm_id: str, dest: str) -> None:
    """Files land in ``dest/<permId>/<path>`` like the ELN notebook's ``ds.download``. A file
    already there is kept (datasets never change, and the user may have edited it)."""
    with quiet_pybis():
        ds = o.get_dataset(perm_id)
        targets = {name: Path(dest, ds.permId, name) for name in ds.file_list}
        missing = [name for name, path in targets.items() if not path.exists()]
        if missing:
            ds.download(files=missing, destination=dest, wait_until_finished=True)
    for name, path in targets.items():
        if not path.is_file():
            raise CommandError(f"{name} of dataset {perm_id} was not downloaded")
        print(path)


def save(o, args) -> None:
    for name in args.files:
        if not Path(name).is_file():
            raise CommandError(f"{name}: no such file")
    props = {"$name": args.name, "notes": args.notes}
    if args.history_id:
        props["$history_id"] = args.history_id
    owner = {"sample": args.object} if args.object else {"experiment": args.experiment}
    with quiet_pybis():
        ds = o.new_dataset(
            type="ANALYSIS_NOTEBOOK", parents=args.parents, files=args.files, props=props, **owner
        )
        ds.save()
    print(ds.permId)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="openbis-data", description="Read and write openBIS datasets with pyBIS."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="show a dataset's owner, parents, properties, files")
    info.add_argument("perm_id", metavar="permId")
    get = commands.add_parser("download", help="download a dataset's files to DEST/<permId>/")
    get.add_argument("perm_id", metavar="permId")
    get.add_argument("dest", nargs="?", default=".")
    put = commands.add_parser("save", help="upload files as a new ANALYSIS_NOTEBOOK dataset")
    owner = put.add_mutually_exclusive_group(required=True)
    owner.add_argument("--object", metavar="ID", help="owner object (identifier or permId)")
    owner.add_argument("--experiment", metavar="ID", help="owner experiment/collection")
    put.add_argument(
        "--parents",
        type=lambda text: [p for p in text.split(",") if p.strip()],
        default=[],
        help="comma-separated permIds of the input datasets",
    )
    put.add_argument("--name", default="", help="the dataset's name ($NAME)")
    put.add_argument("--notes", default="", help="the dataset's notes (NOTES)")
    put.add_argument("--history-id", help="$HISTORY_ID, as the ELN notebook sets it")
    put.add_argument("files", nargs="+", metavar="FILE")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    o = None
    try:
        o = connect()
        if args.command == "info":
            show_info(o, args.perm_id)
        elif args.command == "download":
            download(o, args.perm_id, args.dest)
        else:
            save(o, args)
    except CommandError as e:
        print(f"openbis-data: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # pyBIS raises ValueError and requests' errors for everything
        if is_session_expired(e):
            message = HINT
        else:
            message = " ".join(str(e).split()) or type(e).__name__
            if o is not None and o.token:
                message = message.replace(o.token, "<session token>")
        print(f"openbis-data: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
