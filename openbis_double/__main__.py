"""Command line: python -m openbis_double --port 8443 [options] (see README.md)."""

import argparse
import ssl
import sys
import tempfile
import threading

from . import seed
from .certs import create_certificates
from .eln import ElnSettings
from .server import eln_route, make_server
from .state import State


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m openbis_double",
        description="openBIS test double speaking the pyBIS 1.37.5 wire protocol.",
    )
    parser.add_argument("--port", type=int, default=8443, help="TCP port (default 8443)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--http", action="store_true", help="plain HTTP instead of HTTPS")
    parser.add_argument(
        "--api-version",
        default="3.7",
        help="reported api-version; <= 3.5 makes pyBIS use GET download and legacy upload",
    )
    parser.add_argument(
        "--session-timeout",
        type=float,
        default=3600.0,
        help="idle seconds after which a session (not a personal access token) dies",
    )
    parser.add_argument(
        "--cert-dir",
        help="where ca.pem, server.pem and server-key.pem are written (default: a temp dir)",
    )
    parser.add_argument(
        "--san",
        action="append",
        default=[],
        metavar="NAME",
        help="extra host name or IP for the server certificate (repeatable)",
    )
    parser.add_argument(
        "--eln-port",
        type=int,
        help="also serve the ELN stand-in page (eln.py) on this port, plain HTTP, for trials",
    )
    parser.add_argument(
        "--eln-jupyter-endpoint",
        default="http://localhost:8000/",
        help="the ELN profile's jupyterEndpoint the page links to (with a trailing slash)",
    )
    parser.add_argument("--eln-user", default="JDoe", help="the user the page is signed in as")
    args = parser.parse_args(argv)
    if args.eln_user not in seed.USERS:
        parser.error(f"--eln-user must be one of {', '.join(seed.USERS)}")
    if not args.eln_jupyter_endpoint.endswith("/"):
        parser.error("--eln-jupyter-endpoint must end with a slash, as the ELN profile's does")
    if not args.api_version.replace(".", "", 1).isdigit() or "." not in args.api_version:
        parser.error("--api-version must look like 3.7")
    return args


def main(argv=None):
    args = parse_args(argv)
    state = State(api_version=args.api_version, session_timeout=args.session_timeout)
    context = None
    if not args.http:
        cert_dir = args.cert_dir or tempfile.mkdtemp(prefix="openbis-double-certs-")
        cert_file, key_file, ca_file = create_certificates(cert_dir, args.san)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
    server = make_server(args.host, args.port, state, context)
    scheme = "http" if args.http else "https"
    host, port = server.server_address[:2]
    ca_note = "" if args.http else f" (CA: {ca_file})"
    print(
        f"openbis-double listening on {scheme}://{host}:{port} api-version {args.api_version}"
        f"{ca_note}",
        flush=True,
    )
    if args.eln_port is not None:
        state.eln = ElnSettings(args.eln_jupyter_endpoint, args.eln_user)
        eln_server = make_server(args.host, args.eln_port, state, router=eln_route)
        threading.Thread(target=eln_server.serve_forever, args=(0.2,), daemon=True).start()
        print(f"ELN stand-in on http://{args.host}:{eln_server.server_address[1]}/", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
