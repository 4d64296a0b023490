"""Stand-ins for the remote APIs the collection talks to (Hetzner Cloud, Cloudflare, Kubernetes).

Each is a real HTTP server on loopback, stateful in memory, that records every request, validates
it against the vendor's contract in ``shared/specs`` and can inject faults. See ``_server.py``.
"""
