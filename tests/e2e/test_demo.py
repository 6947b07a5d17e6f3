"""`make demo` as a newcomer meets it: two lines, a login page, the app, and Ctrl-C stops it all."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]


def test_demo_prints_url_and_login_serves_the_app_and_stops_on_ctrl_c(nginx_mode):
    import tempfile
    demo_dir = Path(tempfile.mkdtemp(prefix="hebi-demo-", dir="/tmp"))
    demo = subprocess.Popen([sys.executable, "-u", str(REPO / "scripts" / "demo.py")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=dict(os.environ, HEBI_DEMO_DIR=str(demo_dir)))
    try:
        lines = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not {"URL", "Login"} <= set(lines):
            line = demo.stdout.readline()
            assert line, "the demo exited before printing URL and Login"
            match = re.match(r"^(URL|Login): (.+)$", line.strip())
            if match:
                lines[match.group(1)] = match.group(2)
        url = lines["URL"]
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)
        user, password = lines["Login"].split()

        http = requests.Session()
        login_page = http.get(url)
        assert login_page.url.startswith(url + "gateway/login") and 'name="password"' in login_page.text
        shell = http.post(url + "gateway/login", data={"username": user, "password": password, "next": "/"})
        deadline = time.monotonic() + 60
        while "being prepared" in shell.text and time.monotonic() < deadline:  # the page reloads itself
            time.sleep(1)
            shell = http.get(url)
        assert shell.status_code == 200 and '<div id="root">' in shell.text
        assert http.get(url + "api/whoami").json()["user"] == user
        listing = http.get(url + "api/files", params={"root": "data"}).json()
        assert any(e["name"].endswith(".nxs") for e in listing["entries"]), "the demo's sample scan is missing"
        first_list = http.get(url + "api/process-lists/sample_reconstruction.nxs").json()
        assert [p["name"] for p in first_list["plugins"]][0] == "NxtomoLoader"
        assert "AstraReconCpu" in [p["name"] for p in first_list["plugins"]]
        session_pids = [p["pid"] for p in __import__("json").loads(
            next((demo_dir / "sessions").glob("*/session.json")).read_text())["processes"].values()] \
            if (demo_dir / "sessions").is_dir() else []

        demo.send_signal(signal.SIGINT)
        assert demo.wait(60) == 0
        try:
            requests.get(url, timeout=2)
            raise AssertionError("the gateway still answers after Ctrl-C")
        except requests.ConnectionError:
            pass
        for pid in session_pids:
            assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(30)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()
        sys.path.insert(0, str(REPO / "scripts"))
        import local_system
        if (demo_dir / "hebi.yaml").exists():
            local_system.stop_all_sessions(demo_dir / "hebi.yaml")


def test_demo_started_in_the_background_of_a_script_stops_on_sigint(tmp_path):
    """A script's '&' starts the demo with SIGINT ignored; Ctrl-C's signal must still stop it cleanly."""
    import tempfile
    demo_dir = Path(tempfile.mkdtemp(prefix="hebi-demo-", dir="/tmp"))
    shell = subprocess.Popen(["bash", "-c", '"$0" -u "$1" & echo "pid $!"; wait $!', sys.executable,
                              str(REPO / "scripts" / "demo.py")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, env=dict(os.environ, HEBI_DEMO_DIR=str(demo_dir)))
    pid = url = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (pid and url):
            line = shell.stdout.readline()
            assert line, "the demo exited before printing its URL"
            if line.startswith("pid "):
                pid = int(line.split()[1])
            elif line.startswith("URL: "):
                url = line.split()[1]
        assert requests.get(url + "gateway/login", timeout=10).status_code == 200
        os.kill(pid, signal.SIGINT)
        try:
            assert shell.wait(60) == 0, "the demo did not exit cleanly on SIGINT"
        except subprocess.TimeoutExpired:
            raise AssertionError("the demo ignored SIGINT") from None
        try:
            requests.get(url, timeout=2)
            raise AssertionError("the gateway still answers after SIGINT")
        except requests.ConnectionError:
            pass
    finally:
        if shell.poll() is None:
            if pid:
                os.kill(pid, signal.SIGTERM)
            try:
                shell.wait(30)
            except subprocess.TimeoutExpired:
                shell.kill()
                shell.wait()
