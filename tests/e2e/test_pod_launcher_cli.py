"""The admin's pod_launcher CLI against the local backend, with the gateway seeing the same sessions."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml


def cli(system, *args, check=False):
    return subprocess.run([sys.executable, "-m", "pod_launcher", "--config", str(system.config_path), *args],
                          capture_output=True, text=True, check=check)


def test_start_status_stop_and_list(system):
    started = cli(system, "start", "-u", "carol", check=True)
    assert "carol: running" in started.stdout
    assert cli(system, "status", "-u", "carol").returncode == 0
    listed = json.loads(cli(system, "--json", "list", check=True).stdout)
    assert {"carol"} <= {s["user"] for s in listed if s["state"] == "running"}
    assert "secret" not in json.dumps(listed)
    logs = cli(system, "logs", "-u", "carol", check=True).stdout
    assert "api.log" in logs
    assert "carol: stopped" in cli(system, "stop", "-u", "carol", check=True).stdout
    status = cli(system, "status", "-u", "carol")
    assert status.returncode == 3 and "stopped" in status.stdout
    assert "had no session" in cli(system, "stop", "-u", "carol").stdout


def test_gateway_restarts_a_session_the_admin_stopped(system):
    http = system.login("bob")
    assert http.get(f"{system.url}/api/whoami").json()["user"] == "bob"
    cli(system, "stop", "-u", "bob", check=True)
    # The first request finds the old socket gone; nothing of it was sent, so it waits for the restart.
    answer = http.get(f"{system.url}/api/whoami")
    assert answer.status_code == 200 and answer.json()["user"] == "bob"


def _session_record(system, user):
    sessions = Path(yaml.safe_load(system.config_path.read_text())["launcher"]["local"]["state_dir"])
    return json.loads((sessions / user / "session.json").read_text())


def test_a_session_whose_api_died_is_restarted_and_the_user_told(system):
    http = system.login("bob")
    assert http.get(f"{system.url}/api/whoami").status_code == 200
    api = _session_record(system, "bob")["processes"]["api"]["pid"]
    os.killpg(api, signal.SIGKILL)  # the API's process (and any it started)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{api}").exists() and "Z" not in Path(f"/proc/{api}/stat").read_text().split(")")[1][:3]:
        assert time.monotonic() < deadline, "the killed API did not exit"
        time.sleep(0.1)

    first = http.get(f"{system.url}/api/whoami")
    assert first.status_code == 502
    assert "retry" in first.json()["error"]
    again = http.get(f"{system.url}/api/whoami")
    assert again.status_code == 200 and again.json()["user"] == "bob", again.text
    assert _session_record(system, "bob")["processes"]["api"]["pid"] != api
    assert cli(system, "status", "-u", "bob").returncode == 0


@pytest.mark.parametrize("args, message", [
    (("start", "-u", "../root"), "invalid user name"),
    (("status", "-u", "Bob"), "invalid user name"),
    (("--config", "/nonexistent/hebi.yaml", "list"), "cannot read"),
])
def test_bad_input_is_a_clear_error(system, args, message):
    answer = cli(system, *args)
    assert answer.returncode == 2
    assert message in answer.stderr and "Traceback" not in answer.stderr


def test_a_session_that_cannot_start_says_why(system, tmp_path):
    config = tmp_path / "broken.yaml"
    config.write_text(system.config_path.read_text().replace("web_root:", "web_root: /nonexistent #"))
    answer = subprocess.run([sys.executable, "-m", "pod_launcher", "--config", str(config), "start", "-u", "dave"],
                            capture_output=True, text=True)
    assert answer.returncode == 2
    assert "holds no built web app" in answer.stderr


@pytest.mark.parametrize("text, message", [
    ("gateway:\n  prot: 1\n", "gateway.prot: unknown key"),
    ("launcher:\n  local:\n    nginx: sometimes\n", "launcher.local.nginx"),
])
def test_gateway_refuses_to_start_on_a_malformed_config_and_names_the_key(tmp_path, text, message):
    config = tmp_path / "hebi.yaml"
    config.write_text(text)
    answer = subprocess.run([sys.executable, "-m", "hebi_gateway", "--config", str(config), "serve"],
                            capture_output=True, text=True, timeout=60)
    assert answer.returncode == 2
    assert message in answer.stderr and "Traceback" not in answer.stderr
