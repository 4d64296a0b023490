"""systemd's sd_notify protocol (K3s's unit is Type=notify: READY=1 only once the server is up)."""
from __future__ import annotations

import os
import socket


def notify(state: str) -> bool:
    """Send ``state`` (for example ``READY=1``) to $NOTIFY_SOCKET; False when not run by systemd."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(path)
        sock.sendall(state.encode())
    return True
