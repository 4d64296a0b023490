"""K3s's ``server/cred/passwd`` and the token files derived from it.

Sources (k3s-io/k3s via the search tool, "K:"):

* K: pkg/passwd/passwd.go (and its unit tests): a CSV file (Go ``encoding/csv``), one record per user:
  ``password,name,name,role`` (``Read`` also takes two- or three-column records, role empty; fewer than
  two columns is an error), written whole to ``passwd.tmp`` with mode 0600 then renamed, only when
  something changed. ``EnsureUser`` strips a ``K10...::<name>:`` prefix from the password, updates a
  differing password (an empty one never replaces) or role, and gives a new user ``Random(16)`` when
  no password is given. Go writes the records in map order, i.e. randomly; here they are sorted by name.
* K: pkg/daemons/control/deps/deps.go ``genUsers``/``getServerPass``/``getNodePass``/``migratePassword``/
  ``readTokens``: users ``server`` (role ``k3s:server``) and ``node`` (``k3s:agent``); the server password
  is the ``token`` flag, else the stored one, else random; the node password is ``agent-token`` if set,
  else the server password (with a full token reduced to its password).
* K: pkg/server/server.go + handlers (``WriteToken``): ``server/token`` is ``K10<ca hash>::server:<pw>\n``
  (0600) and ``server/node-token`` a symlink to it; ``server/agent-token`` holds ``K10<hash>::node:<pw>\n``
  only when ``agent-token`` is set (the spec, from K: pkg/server/server.go); what happens to a stale
  ``agent-token`` file once the flag is dropped was not checked, so it is left alone.
* K: pkg/server/handlers/token.go ``tokenRotate``: ``k3s token rotate [--new-token T]`` sets ``server``
  to T (``Random(16)`` when empty), sets ``node`` too when it equalled the old server password and no
  ``agent-token`` is configured, rewrites passwd and ``server/token``, then re-encrypts the bootstrap data
  (``_token.encrypt_bootstrap`` under ``_token.bootstrap_key(new)``, old key deleted). Newer releases
  also refuse a new token of an invalid format (v1.34.2 notes: "Fix ability to rotate server token to
  an invalid format"); that check is not reproduced.
"""
from __future__ import annotations

import os
from pathlib import Path

from . import _token

PASSWD = "server/cred/passwd"
SERVER_ROLE, AGENT_ROLE = "k3s:server", "k3s:agent"


def _parse_csv_line(line: str) -> list[str]:
    """One ``encoding/csv`` record (quoted fields with doubled quotes; no embedded newlines here)."""
    fields, field, i, quoted = [], "", 0, False
    while i < len(line):
        ch = line[i]
        if quoted:
            if ch == '"' and i + 1 < len(line) and line[i + 1] == '"':
                field, i = field + '"', i + 2
                continue
            if ch == '"':
                quoted = False
            else:
                field += ch
        elif ch == '"' and field == "":
            quoted = True
        elif ch == ",":
            fields.append(field)
            field = ""
        else:
            field += ch
        i += 1
    if quoted:
        raise ValueError('extraneous or missing " in quoted-field')
    return fields + [field]


def _csv_field(value: str) -> str:
    """Go ``csv.Writer`` quoting: quote when the field has , " CR or LF, starts with a space, or is ``\\.``."""
    if value == r"\." or any(c in value for c in ',"\r\n') or value[:1] in (" ", "\t"):
        return '"' + value.replace('"', '""') + '"'
    return value


def read_passwd(path: str | Path) -> dict[str, tuple[str, str]]:
    """``passwd.Read``: ``{name: (password, role)}``; a missing file is an empty table."""
    path = Path(path)
    if not path.exists():
        return {}
    users = {}
    for line in path.read_text().splitlines():
        if not line:
            continue
        record = _parse_csv_line(line)
        if len(record) < 2:
            raise ValueError(f"password file '{path}' must have at least 2 columns (password, name), found {len(record)}")
        users[record[1]] = (record[0], record[3] if len(record) > 3 else "")
    return users


def render_passwd(users: dict[str, tuple[str, str]]) -> str:
    """The file ``Passwd.Write`` produces: ``password,name,name,role`` per user (sorted by name here)."""
    return "".join(",".join(_csv_field(v) for v in (pw, name, name, role)) + "\n"
                   for name, (pw, role) in sorted(users.items()))


def write_passwd(path: str | Path, users: dict[str, tuple[str, str]]) -> None:
    """``writePasswords``: ``<path>.tmp`` created 0600, then renamed over ``path``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(render_passwd(users))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def ensure_user(users: dict[str, tuple[str, str]], name: str, role: str, password: str) -> bool:
    """``EnsureUser`` on ``users`` (modified in place); True when it changed something."""
    prefix = f"::{name}:"
    idx = password.find(prefix)
    if idx > 0 and password.startswith(_token.TOKEN_PREFIX):
        password = password[idx + len(prefix):]
    if name in users:
        old_pw, old_role = users[name]
        new_pw = password if password and password != old_pw else old_pw
        users[name] = (new_pw, role)
        return (new_pw, role) != (old_pw, old_role)
    users[name] = (password or _token.generate_password(), role)
    return True


def gen_users(users: dict[str, tuple[str, str]], token: str = "", agent_token: str = "") -> bool:
    """``genUsers`` (with ``migratePassword``): the ``node`` and ``server`` entries for this start.

    ``token``/``agent_token`` are the flag values (full or bare). Returns True when the file must be
    rewritten.
    """
    changed = False
    if not users.get("server", ("",))[0] and users.get("node", ("",))[0]:
        changed |= ensure_user(users, "server", SERVER_ROLE, users["node"][0])
    server_pass = token or users.get("server", ("",))[0] or _token.generate_password()
    node_pass = agent_token
    if not node_pass:
        try:
            node_pass = _token.parse_token(server_pass)["password"] or server_pass
        except _token.TokenError:
            node_pass = server_pass
    changed |= ensure_user(users, "node", AGENT_ROLE, node_pass)
    changed |= ensure_user(users, "server", SERVER_ROLE, server_pass)
    return changed


def rotate_token(users: dict[str, tuple[str, str]], new_token: str = "", agent_token_set: bool = False) -> tuple[str, str]:
    """``tokenRotate``'s passwd part: returns ``(old_password, new_password)``; ``users`` is updated.

    Raises ``KeyError("server token not found")`` without a ``server`` entry, as K3s does.
    """
    if "server" not in users:
        raise KeyError("server token not found")
    old = users["server"][0]
    new_token = new_token or _token.generate_password()
    ensure_user(users, "server", SERVER_ROLE, new_token)
    if "node" in users and users["node"][0] == old and not agent_token_set:
        ensure_user(users, "node", AGENT_ROLE, new_token)
    return old, users["server"][0]


def token_file_text(ca_pem: bytes, username: str, password: str) -> str:
    """``WriteToken``: the full token and a newline (``""`` for an empty password, and no file)."""
    token = _token.format_token(ca_pem, password, username)
    return token + "\n" if token else ""


def write_token_files(data_dir: str | Path, ca_pem: bytes, users: dict[str, tuple[str, str]],
                      agent_token_set: bool = False) -> list[str]:
    """``server/token`` (0600, rewritten on every start), ``server/node-token`` -> ``token`` symlink, and
    ``server/agent-token`` (0600) only when ``agent-token`` is configured. Returns the paths written.
    """
    server_dir = Path(data_dir) / "server"
    server_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    written = []
    wanted = [("token", "server")] + ([("agent-token", "node")] if agent_token_set else [])
    for file_name, user in wanted:
        if user not in users:
            continue
        path = server_dir / file_name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(token_file_text(ca_pem, user, users[user][0]))
        os.chmod(path, 0o600)
        written.append(str(path))
    link = server_dir / "node-token"
    if not link.is_symlink():
        if link.exists():
            link.unlink()
        # K3s: os.Symlink(tokenFile, nodeTokenFile) with both under the server data dir, so the
        # target is the absolute path of ``token`` (not re-checked on a live node).
        link.symlink_to(server_dir.resolve() / "token")
    return written


def server_password(path: str | Path) -> str:
    """The stored ``server`` password (``""`` when the file or the entry is missing)."""
    return read_passwd(path).get("server", ("", ""))[0]


def ensure_server_password(path: str | Path, token: str, agent_token: str = "") -> bool:
    """``genUsers`` on the file at ``path``: read, update ``server``/``node``, write only when changed."""
    users = read_passwd(path)
    changed = gen_users(users, token, agent_token)
    if changed:
        Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_passwd(path, users)
    return changed
