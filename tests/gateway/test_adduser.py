"""`hebi-gateway adduser` as docs/admin.md shows it: a new account can use every root at once."""
import stat
import subprocess
import sys
from pathlib import Path

import yaml


def test_adduser_creates_the_root_folders_so_a_new_user_finds_every_root(system):
    answer = subprocess.run([sys.executable, "-m", "hebi_gateway", "--config", str(system.config_path),
                             "adduser", "erin", "--password-stdin"], input="erin-password-1\n",
                            capture_output=True, text=True)
    assert answer.returncode == 0, answer.stderr
    roots = yaml.safe_load(system.config_path.read_text())["session"]["roots"]
    for name, root in roots.items():
        folder = Path(root["path"].replace("{user}", "erin"))
        assert folder.is_dir(), f"adduser did not create the {name} root {folder}"
        if root["writable"]:
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700, name
        assert str(folder) in answer.stdout
    http = system.login("erin", "erin-password-1")
    for name in roots:
        listing = http.get(f"{system.url}/api/files", params={"root": name})
        assert listing.status_code == 200, (name, listing.text)


def test_adduser_warns_when_a_root_names_a_home_the_account_lacks(tmp_path):
    config = tmp_path / "hebi.yaml"
    config.write_text(yaml.safe_dump({"gateway": {"state_dir": str(tmp_path / "gw")}, "session": {"roots": {
        "data": {"path": "{home}/data"}, "output": {"path": str(tmp_path / "{user}" / "out"), "writable": True}}}}))
    answer = subprocess.run([sys.executable, "-m", "hebi_gateway", "--config", str(config), "adduser", "fay",
                             "--password-stdin"], input="fay-password-1\n", capture_output=True, text=True)
    assert answer.returncode == 0, answer.stderr
    assert "names {home}, but fay has no home" in answer.stderr
    assert (tmp_path / "fay" / "out").is_dir()
