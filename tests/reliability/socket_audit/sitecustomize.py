"""Watches the sockets of every Python process started with this folder on PYTHONPATH, which children inherit
(the UMAP worker too). Active only when SSL_STUDIO_SOCKET_LOG names a file: each process writes one line when it
starts and one when it imports umap; any socket it makes, binds, connects or resolves a name with is written
there and refused."""

import os
import sys

LOG = os.environ.get("SSL_STUDIO_SOCKET_LOG")
WATCHED = {"socket.__new__", "socket.bind", "socket.connect", "socket.sendto", "socket.sendmsg",
           "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo"}


def _log(kind: str, detail: str) -> None:
    with open(LOG, "a", encoding="utf-8") as f:  # one short append per line: lines of processes never mix
        f.write(f"{kind}\t{os.getpid()}\t{detail}\n")


def _hook(event: str, args: tuple) -> None:
    if event in WATCHED:
        _log("socket", f"{event} {args!r}")
        raise PermissionError(f"{event}: network access is blocked in this test")
    if event == "import" and args[0] == "umap":
        _log("import", "umap")


if LOG:
    _log("start", repr(sys.orig_argv))
    sys.addaudithook(_hook)
