"""Loopback port selection."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


def is_free(port: int, host: str = LOOPBACK) -> bool:
    """Whether ``host:port`` can be bound right now (the address exists, the port is free;
    port 0: whether the address can be bound at all)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port the kernel reports free on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def pick(preferred: int | None, taken: set[int] | None = None) -> int:
    """``preferred`` when it is free (and not already ``taken``), else a free port."""
    taken = taken or set()
    if preferred and preferred not in taken and is_free(preferred):
        return preferred
    while True:
        port = free_port()
        if port not in taken:
            return port
