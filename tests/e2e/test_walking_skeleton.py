"""A scientist logs in through the gateway and reaches their own session, started on first use."""
import json
import subprocess
import sys


def test_login_then_whoami_names_the_user_and_session_is_listed(system):
    http = system.login("alice")
    answer = http.get(f"{system.url}/api/whoami")
    assert answer.status_code == 200
    assert answer.json()["user"] == "alice"
    listed = subprocess.run([sys.executable, "-m", "pod_launcher", "--config", str(system.config_path),
                             "--json", "list"], capture_output=True, text=True, check=True)
    sessions = {s["user"]: s for s in json.loads(listed.stdout)}
    assert sessions["alice"]["state"] == "running"
    assert "nginx" in sessions["alice"]["detail"]
