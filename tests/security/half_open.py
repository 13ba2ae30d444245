"""Opens many connections to a server and sends half a request on each, as a slowloris
attack does; run as ``python -m tests.security.half_open PORT COUNT``.

Prints ``opened N`` once its connections are open (within OPEN_BUDGET_S), keeps them until
its stdin closes, then prints ``closed M``: how many the server had closed meanwhile."""

from __future__ import annotations

import resource
import socket
import sys
import time

OPEN_BUDGET_S = 60.0
HALF_A_REQUEST = b"POST /v1/graph/invoke HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl"


def open_half_requests(port: int, count: int) -> list[socket.socket]:
    deadline = time.monotonic() + OPEN_BUDGET_S
    opened: list[socket.socket] = []
    while len(opened) < count and time.monotonic() < deadline:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(HALF_A_REQUEST)
        except OSError:  # the server's backlog is full, or it closed us at once: go on
            continue
        sock.setblocking(False)
        opened.append(sock)
    return opened


def closed_by_server(sockets: list[socket.socket]) -> int:
    """Sockets the server answered (a 408) or closed: all it ever sends on them ends them."""
    closed = 0
    for sock in sockets:
        try:
            sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:  # nothing yet: still open
            continue
        except OSError:  # reset
            pass
        closed += 1
    return closed


def main() -> None:
    port, count = int(sys.argv[1]), int(sys.argv[2])
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sockets = open_half_requests(port, count)
    print(f"opened {len(sockets)}", flush=True)
    sys.stdin.read()  # until the test is done with us
    print(f"closed {closed_by_server(sockets)}", flush=True)


if __name__ == "__main__":
    main()
