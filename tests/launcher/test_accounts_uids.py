"""hebi-gateway adduser gives every account its own uid and gid (sessions in containers run as it), and
creates the account's folders owned by it."""
import os
import subprocess
import sys

import pytest
import yaml


def adduser(config, *args):
    return subprocess.run([sys.executable, "-m", "hebi_gateway", "--config", str(config), "adduser", *args,
                           "--password-stdin"], input="a-long-password\n", text=True, capture_output=True)


def accounts(base):
    return yaml.safe_load((base / "gateway" / "users.yaml").read_text())["users"]


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "hebi.yaml"
    path.write_text(yaml.safe_dump({
        "gateway": {"state_dir": str(tmp_path / "gateway"), "uid_range": [30000, 30002]},
        "session": {"roots": {"data": {"path": str(tmp_path / "users" / "{user}" / "data")},
                              "output": {"path": str(tmp_path / "users" / "{user}" / "output"), "writable": True}}}}))
    return path


def test_new_accounts_get_the_next_free_uid_of_the_range_and_keep_it(config, tmp_path):
    assert adduser(config, "alice").returncode == 0
    assert adduser(config, "bob", "--uid", "30001", "--gid", "500").returncode == 0
    assert adduser(config, "carol").returncode == 0  # 30000 and 30001 are taken
    users = accounts(tmp_path)
    assert (users["alice"]["uid"], users["alice"]["gid"]) == (30000, 30000)
    assert (users["bob"]["uid"], users["bob"]["gid"]) == (30001, 500)
    assert (users["carol"]["uid"], users["carol"]["gid"]) == (30002, 30002)
    # a new password keeps the account's uid
    assert adduser(config, "alice").returncode == 0
    assert accounts(tmp_path)["alice"]["uid"] == 30000


def test_a_uid_is_never_given_to_two_accounts(config, tmp_path):
    assert adduser(config, "alice").returncode == 0
    taken = adduser(config, "bob", "--uid", "30000")
    assert taken.returncode == 2 and "uid 30000 is already alice's" in taken.stderr
    assert adduser(config, "bob", "--uid", "0").returncode == 2
    assert adduser(config, "bob").returncode == 0
    assert adduser(config, "carol").returncode == 0
    full = adduser(config, "dave")
    assert full.returncode == 2 and "no free uid left in gateway.uid_range 30000-30002" in full.stderr
    assert "dave" not in accounts(tmp_path)


@pytest.mark.skipif(os.geteuid() != 0, reason="handing folders to another uid needs root")
def test_the_accounts_folders_are_created_owned_by_its_uid(config, tmp_path):
    assert adduser(config, "alice", "--gid", "30500").returncode == 0
    for root in ("data", "output"):
        folder = tmp_path / "users" / "alice" / root
        assert (folder.stat().st_uid, folder.stat().st_gid) == (30000, 30500)
    assert (tmp_path / "users" / "alice" / "output").stat().st_mode & 0o777 == 0o700
