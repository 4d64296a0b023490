"""K3s's server/cred/passwd, token files and token rotation (lab/k3s/_passwd.py)."""
from __future__ import annotations

import hashlib
import os
import re
import stat

import pytest

from lab.k3s import _passwd, _pki, _token


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def ca_pem(tmp_path_factory):
    data = tmp_path_factory.mktemp("ca")
    _pki.ensure_cas(data)
    return (data / "server/tls/server-ca.crt").read_bytes()


def test_reads_two_and_four_column_records(tmp_path):
    # fixture of k3s pkg/passwd/passwd_test.go
    path = tmp_path / "passwd"
    path.write_text("pass1,user1\npass2,user2,user2,admin\n")
    assert _passwd.read_passwd(path) == {"user1": ("pass1", ""), "user2": ("pass2", "admin")}
    assert _passwd.read_passwd(tmp_path / "missing") == {}


def test_less_than_two_columns_is_k3s_error(tmp_path):
    path = tmp_path / "passwd"
    path.write_text("onlypass\n")
    with pytest.raises(ValueError, match=re.escape(f"password file '{path}' must have at least 2 columns (password, name), found 1")):
        _passwd.read_passwd(path)


def test_first_start_with_a_full_token_writes_server_and_node(tmp_path, ca_pem):
    path = tmp_path / "server/cred/passwd"
    token = _token.format_token(ca_pem, "s3cret")
    assert _passwd.ensure_server_password(path, token) is True
    assert path.read_text() == "s3cret,node,node,k3s:agent\ns3cret,server,server,k3s:server\n"
    assert mode(path) == 0o600
    assert not (tmp_path / "server/cred/passwd.tmp").exists()
    assert _passwd.server_password(path) == "s3cret"


def test_first_start_without_a_token_makes_one_password_for_both(tmp_path):
    users = {}
    assert _passwd.gen_users(users) is True
    assert re.fullmatch(r"[0-9a-f]{32}", users["server"][0])
    assert users["node"] == (users["server"][0], "k3s:agent")


def test_agent_token_gets_its_own_node_entry(tmp_path):
    users = {}
    _passwd.gen_users(users, token="serverpw", agent_token="agentpw")
    assert users == {"server": ("serverpw", "k3s:server"), "node": ("agentpw", "k3s:agent")}


def test_restart_without_token_keeps_the_stored_password_and_does_not_rewrite(tmp_path):
    path = tmp_path / "passwd"
    _passwd.ensure_server_password(path, "pw1")
    os.utime(path, (1, 1))
    assert _passwd.ensure_server_password(path, "") is False
    assert path.stat().st_mtime == 1
    assert _passwd.read_passwd(path)["server"] == ("pw1", "k3s:server")


def test_migrate_password_copies_node_to_a_missing_server_entry():
    users = {"node": ("legacy", "k3s:agent")}
    _passwd.gen_users(users)
    assert users["server"] == ("legacy", "k3s:server")


def test_ensure_user_strips_the_k10_prefix_and_ignores_an_empty_password():
    users = {}
    assert _passwd.ensure_user(users, "server", "k3s:server", "K10" + "a" * 64 + "::server:pw") is True
    assert users["server"] == ("pw", "k3s:server")
    assert _passwd.ensure_user(users, "server", "k3s:server", "") is False
    assert _passwd.ensure_user(users, "server", "k3s:server", "pw") is False
    assert _passwd.ensure_user(users, "server", "admin", "") is True and users["server"] == ("pw", "admin")


def test_fields_needing_quotes_round_trip(tmp_path):
    path = tmp_path / "passwd"
    users = {"server": ('p,w"x', "k3s:server")}
    _passwd.write_passwd(path, users)
    assert path.read_text() == '"p,w""x",server,server,k3s:server\n'
    assert _passwd.read_passwd(path) == users


def test_rotate_changes_server_and_a_node_entry_that_followed_it():
    users = {"server": ("old", "k3s:server"), "node": ("old", "k3s:agent")}
    assert _passwd.rotate_token(users, "new") == ("old", "new")
    assert users == {"server": ("new", "k3s:server"), "node": ("new", "k3s:agent")}


def test_rotate_keeps_a_separate_agent_token():
    users = {"server": ("old", "k3s:server"), "node": ("agentpw", "k3s:agent")}
    _passwd.rotate_token(users, "new")
    assert users["node"] == ("agentpw", "k3s:agent")
    users = {"server": ("old", "k3s:server"), "node": ("old", "k3s:agent")}
    _passwd.rotate_token(users, "new", agent_token_set=True)  # agent-token flag equal to the old server token
    assert users["node"] == ("old", "k3s:agent")


def test_rotate_without_new_token_generates_one_and_needs_a_server_entry():
    users = {"server": ("old", "k3s:server")}
    old, new = _passwd.rotate_token(users)
    assert old == "old" and re.fullmatch(r"[0-9a-f]{32}", new)
    with pytest.raises(KeyError, match="server token not found"):
        _passwd.rotate_token({}, "x")


def test_rotation_moves_the_bootstrap_data_to_the_new_key():
    users = {"server": ("old", "k3s:server"), "node": ("old", "k3s:agent")}
    store = {_token.bootstrap_key("old"): _token.encrypt_bootstrap("old", b"{}")}
    old, new = _passwd.rotate_token(users, "new")
    store[_token.bootstrap_key(new)] = _token.encrypt_bootstrap(new, _token.decrypt_bootstrap(old, store.pop(_token.bootstrap_key(old))))
    assert _token.select_bootstrap_key(list(store), "new") == "/bootstrap/" + hashlib.sha256(b"new").hexdigest()[:12]
    with pytest.raises(_token.BootstrapError, match="encrypted with different token"):
        _token.select_bootstrap_key(list(store), "old")


def test_token_files(tmp_path, ca_pem):
    users = {"server": ("spw", "k3s:server"), "node": ("npw", "k3s:agent")}
    written = _passwd.write_token_files(tmp_path, ca_pem, users)
    token = tmp_path / "server/token"
    assert written == [str(token)]
    assert token.read_text() == f"K10{hashlib.sha256(ca_pem).hexdigest()}::server:spw\n"
    assert mode(token) == 0o600
    node_token = tmp_path / "server/node-token"
    assert node_token.is_symlink() and node_token.read_text() == token.read_text()
    assert not (tmp_path / "server/agent-token").exists()
    _passwd.write_token_files(tmp_path, ca_pem, users, agent_token_set=True)
    agent = tmp_path / "server/agent-token"
    assert agent.read_text() == f"K10{hashlib.sha256(ca_pem).hexdigest()}::node:npw\n"
    assert mode(agent) == 0o600


def test_token_file_is_rewritten_after_rotation(tmp_path, ca_pem):
    users = {"server": ("old", "k3s:server"), "node": ("old", "k3s:agent")}
    _passwd.write_token_files(tmp_path, ca_pem, users)
    _passwd.rotate_token(users, "new")
    _passwd.write_token_files(tmp_path, ca_pem, users)
    assert (tmp_path / "server/token").read_text().endswith("::server:new\n")
    assert _token.normalize_token((tmp_path / "server/node-token").read_text().strip()) == "new"
