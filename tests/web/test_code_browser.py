"""Running one's own code from the Jobs area, in Chromium through the gateway: "Run code" with a project
folder and data, the job's row and details (entry, project, stdout), its outputs; and, in a session
that runs as the service account, the choice shown switched off with the reason.

The system here is a single-user machine's (``jobs.code.allow_unisolated``, as ``make demo`` sets it):
the podman and kubernetes launchers allow code without it (tests/jobs/test_code_jobs.py).
Set HEBI_DOC_IMAGES to a folder to have the tests save the pictures of docs/users.md there."""
from __future__ import annotations

import shutil
import tempfile
import time
import zipfile
from pathlib import Path

import local_system
import pytest
from code_support import HOSTILE, PLOT
from conftest import PASSWORDS, System, browser_login
from test_files_browser import picture

pytestmark = pytest.mark.browser
USER = "dora"
CODE = ("import os, pathlib\n"
        "names = sorted(os.listdir('input'))\n"
        "pathlib.Path('output/summary.txt').write_text('inputs: ' + ', '.join(names))\n"
        "print('analysed', len(names), 'inputs')\n")


@pytest.fixture(scope="module")
def code_system(nginx_mode):
    base = Path(tempfile.mkdtemp(prefix="hebi-code-", dir="/tmp"))
    config_path = local_system.write_config(base, nginx=nginx_mode, unisolated_code=True)
    PASSWORDS.setdefault(USER, "dora-password-444")
    local_system.add_user(config_path, USER, PASSWORDS[USER])
    gateway = local_system.Gateway(config_path)
    try:
        yield System(base, config_path, gateway)
    finally:
        gateway.stop()
        local_system.stop_all_sessions(config_path)
        shutil.rmtree(base, ignore_errors=True)


def test_run_code_from_the_jobs_area(code_system, page):
    folders = code_system.folders(USER)
    project = folders["processing"] / "my-analysis"
    project.mkdir(parents=True)
    (project / "code.py").write_text(CODE)
    (folders["data"] / "scan_1.nxs").write_bytes(b"not really a scan")
    browser_login(page, code_system, USER)
    page.goto(f"{code_system.url}/#/jobs")
    form = page.locator("form[aria-label='Submit a job']")
    form.get_by_label("Run code (your own Python, Octave or notebook)").check()
    form.locator("input[name=project]").fill("processing/my-analysis")
    form.locator("input[name=data]").fill("data/scan_1.nxs")
    form.locator("input[name=output]").fill("output/analysis")
    form.locator("select[name=mode]").select_option("full")
    form.locator("input[name=name]").fill("my analysis")
    assert form.locator("input[name=process_list]").count() == 0  # the Savu fields are gone
    picture(page, "jobs-run-code.png")
    form.get_by_role("button", name="Run code").click()

    row = page.locator("tr[data-job]", has_text="my analysis")
    row.locator(".job-state[data-state=finished]").wait_for(timeout=120_000)
    assert "code, full" in row.inner_text()
    details = page.locator(".job-details")
    details.wait_for()
    assert "code.py of processing/my-analysis with data/scan_1.nxs" in details.inner_text()
    assert details.get_by_role("tab").all_inner_texts() == ["stdout", "stderr"]  # no Savu user.log
    page.locator("pre.job-log", has_text="analysed 1 inputs").wait_for()
    outputs = details.locator(".job-outputs li")
    outputs.first.wait_for()
    assert outputs.count() == 1 and "summary.txt" in outputs.first.inner_text()
    with page.expect_download() as one:  # the results page downloads each file, or all as a zip
        outputs.first.get_by_role("link", name="Download summary.txt").click()
    assert Path(one.value.path()).read_text() == "inputs: scan_1.nxs"
    with page.expect_download() as everything:
        details.get_by_role("link", name="Download all as zip").click()
    with zipfile.ZipFile(everything.value.path()) as archive:
        assert [name for name in archive.namelist() if not name.endswith("/")] == ["output/summary.txt"]
    row.evaluate("row => row.scrollIntoView()")
    picture(page, "jobs-code-finished.png")
    job_id = row.get_attribute("data-job")
    job = code_system.login(USER).get(f"{code_system.url}/api/jobs/{job_id}").json()
    assert (folders["output"].parent / job["run_folder"] / "output" / "summary.txt").read_text() == "inputs: scan_1.nxs"


def test_a_service_account_session_shows_why_code_cannot_run(system, page):
    browser_login(page, system, "alice")
    page.goto(f"{system.url}/#/jobs")
    choice = page.get_by_label("Run code (your own Python, Octave or notebook)")
    choice.wait_for()
    refused = page.locator(".job-code-refused")
    refused.wait_for()
    assert "runs under the service's account" in refused.inner_text()
    assert choice.is_disabled()
    assert "service's account" in page.locator("label", has=choice).get_attribute("title")


def test_a_finished_notebook_opens_rendered_from_its_job(code_system, page):
    folders = code_system.folders(USER)
    (folders["processing"] / "angles.ipynb").write_text(PLOT)
    browser_login(page, code_system, USER)
    page.goto(f"{code_system.url}/#/jobs")
    form = page.locator("form[aria-label='Submit a job']")
    form.get_by_label("Run code (your own Python, Octave or notebook)").check()
    form.locator("input[name=project]").fill("processing/angles.ipynb")
    form.locator("textarea[name=parameters]").fill('{"angle": 4, "title": "four"}')
    form.locator("input[name=output]").fill("output/notebooks")
    form.locator("input[name=name]").fill("angles notebook")
    form.get_by_role("button", name="Run code").click()
    row = page.locator("tr[data-job]", has_text="angles notebook")
    row.locator(".job-state[data-state=finished]").wait_for(timeout=120_000)
    with page.context.expect_page() as opened:
        page.get_by_role("link", name="Open the notebook").click()
    rendered = opened.value
    rendered.wait_for_load_state()
    assert "plotted 4 four" in rendered.content()
    rendered.close()


def test_a_notebooks_scripts_never_run_in_hebis_origin(code_system, page):
    """Through the gateway and its nginx front: the notebook's HTML comes with the session's sandbox
    policy beside the gateway's, so what a notebook outputs (here a script) is shown, never run."""
    (code_system.folders(USER)["processing"] / "hostile.ipynb").write_text(HOSTILE)
    http = code_system.login(USER)
    answer = http.post(f"{code_system.url}/api/jobs", json={"kind": "code", "project": "processing/hostile.ipynb",
                                                             "output": "output/notebooks", "mode": "full"})
    assert answer.status_code == 201, answer.text
    job_id = answer.json()["id"]
    deadline = time.monotonic() + 120
    while http.get(f"{code_system.url}/api/jobs/{job_id}").json()["state"] in ("queued", "running", "submitting"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    policies = http.get(f"{code_system.url}/api/jobs/{job_id}/notebook").headers["Content-Security-Policy"]
    assert "sandbox" in policies and "frame-ancestors 'none'" in policies  # both: the session's and the gateway's
    browser_login(page, code_system, USER)
    page.goto(f"{code_system.url}/api/jobs/{job_id}/notebook")
    page.locator("#mark").wait_for()
    page.wait_for_timeout(500)
    assert page.title() != "ran"
