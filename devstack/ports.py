"""A free loopback TCP port, for stacks, services and simulators started on demand (tests, benchmarks)."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the OS picks it; a later bind may still race, as with any such helper)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
