"""The Jobs area as a scientist uses it, in Chromium through the gateway and nginx: the form's paths
filled with defaults that exist and picked by browsing, memory chosen; failed rows say why; filter,
search and pages; clone and resubmit; the open job kept in the URL through a reload and "back" from the
Viewer. The jobs here fail at once (a file without tomography), so the tests do not wait for Savu.

Set HEBI_DOC_IMAGES to a folder to have the tests save the pictures of docs/users.md there."""
from __future__ import annotations

import re
import shutil
import time

import h5py
import local_system
import pytest
from conftest import PASSWORDS, browser_login
from make_sample_data import write_sample_process_list
from test_files_browser import picture

pytestmark = pytest.mark.browser
USER = "carol"


@pytest.fixture(scope="module")
def carol(system):
    """A user of these tests alone, so that what they count are their own jobs."""
    PASSWORDS.setdefault(USER, "carol-password-333")
    local_system.add_user(system.config_path, USER, PASSWORDS[USER])
    return USER


@pytest.fixture
def bob(system, page, carol):
    """carol's roots with one list and one (hopeless) dataset."""
    folders = system.folders(USER)
    for root in folders.values():
        for item in root.iterdir():
            shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()
    write_sample_process_list(folders["processing"] / "tomo.nxs")
    (folders["data"] / "scans").mkdir()
    with h5py.File(folders["data"] / "scans" / "no_tomo.nxs", "w") as scan:
        scan.create_group("entry1")  # HDF5 (so submission takes it), but no tomography in it
    with h5py.File(folders["data"] / "empty.nxs", "w") as scan:
        scan.create_group("entry1")
    browser_login(page, system, USER)
    return folders


def submit_by_api(system, name: str) -> dict:
    http = system.login(USER)
    answer = http.post(f"{system.url}/api/jobs", json={
        "process_list": "processing/tomo.nxs", "dataset": "data/empty.nxs", "output": "output/runs",
        "mode": "full", "name": name})
    assert answer.status_code == 201, answer.text
    return answer.json()


def wait_ended(system, ids: list[str]) -> None:
    http = system.login(USER)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        jobs = {j["id"]: j for j in http.get(f"{system.url}/api/jobs?limit=1000").json()["jobs"]}
        if all(jobs[i]["state"] in ("failed", "finished", "cancelled", "timeout", "lost") for i in ids):
            return
        time.sleep(0.5)
    raise AssertionError("the jobs did not end")


def open_jobs(page, system, query: str = "") -> None:
    page.goto(f"{system.url}/#/jobs{query}")
    page.reload()
    page.locator("form[aria-label='Submit a job']").wait_for()


def test_the_form_has_defaults_that_exist_and_paths_are_picked_by_browsing(system, page, bob):
    open_jobs(page, system)
    form = page.locator("form[aria-label='Submit a job']")
    # No job yet: the first list and dataset found, and an output folder that is made when needed.
    page.wait_for_function("() => document.querySelector('input[name=process_list]').value !== ''")
    assert form.locator("input[name=process_list]").input_value() == "processing/tomo.nxs"
    assert form.locator("input[name=dataset]").input_value() == "data/empty.nxs"
    assert form.locator("input[name=output]").input_value() == "output/runs"

    form.get_by_role("button", name="Browse for the dataset").click()
    dialog = page.get_by_role("dialog", name="Choose the dataset")
    dialog.get_by_role("button", name="scans").click()
    dialog.get_by_role("button", name="no_tomo.nxs").click()
    assert form.locator("input[name=dataset]").input_value() == "data/scans/no_tomo.nxs"
    form.get_by_role("button", name="Browse for the output folder").click()
    dialog = page.get_by_role("dialog", name="Choose the output folder")
    dialog.get_by_role("button", name="Choose output").click()
    assert form.locator("input[name=output]").input_value() == "output"
    form.locator("input[name=output]").fill("output/picked")
    form.locator("input[name=memory_mb]").fill("3000")
    form.locator("input[name=name]").fill("picked paths")
    form.locator("select[name=mode]").select_option("full")
    picture(page, "jobs-form.png")
    form.locator("button[type=submit]").click()

    row = page.locator("tr[data-job]", has_text="picked paths")
    row.locator(".job-state[data-state=failed]").wait_for(timeout=120_000)
    assert "no dataset at /entry1" in row.locator(".job-reason").inner_text()  # the reason, on the row
    job_id = row.get_attribute("data-job")
    assert f"job={job_id}" in page.url  # the open job is in the URL
    job = system.login(USER).get(f"{system.url}/api/jobs/{job_id}").json()
    assert (job["dataset"], job["output"], job["resources"]["memory_mb"]) == ("data/scans/no_tomo.nxs", "output/picked", 3000)

    # The next visit starts from this run's paths (the recent ones are offered too).
    page.evaluate("sessionStorage.clear()")
    open_jobs(page, system)
    page.wait_for_function("() => document.querySelector('input[name=dataset]').value !== ''")
    assert form.locator("input[name=dataset]").input_value() == "data/scans/no_tomo.nxs"
    options = page.locator("datalist#output-recent option").evaluate_all("os => os.map(o => o.value)")
    assert "output/picked" in options


def test_a_default_arriving_late_never_changes_what_is_being_typed(system, page, bob):
    """The defaults wait for the server (the last run's paths, or the first files found); a person who is
    already in a field when they arrive keeps what they type (it once ended up after the default:
    "data/no_tomo.nxsdata/no_tomo.nxs")."""
    listing = re.compile(r"/api/jobs\?")
    held = []

    def hold(route):
        held.append(route)
    page.route(listing, hold)
    page.evaluate("sessionStorage.clear()")
    page.goto(f"{system.url}/#/jobs")
    page.reload()
    form = page.locator("form[aria-label='Submit a job']")
    dataset = form.locator("input[name=dataset]")
    dataset.click()  # in the field before the defaults are known
    deadline = time.monotonic() + 30
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert held, "the Jobs area did not ask for the jobs"
    for route in held:
        route.continue_()
    page.unroute(listing, hold)
    page.wait_for_function("() => document.querySelector('input[name=process_list]').value !== ''")
    page.keyboard.type("data/scans/typed.nxs")
    assert dataset.input_value() == "data/scans/typed.nxs"
    assert form.locator("input[name=output]").input_value() != ""  # the fields not touched got theirs


def test_the_open_job_survives_a_reload_and_back_from_the_viewer(system, page, bob):
    job = submit_by_api(system, "kept open")
    wait_ended(system, [job["id"]])
    open_jobs(page, system)
    page.locator("tr[data-job]", has_text="kept open").get_by_role("button", name="kept open").click()
    page.locator("pre.job-log").wait_for()
    assert f"job={job['id']}" in page.url
    page.reload()
    page.locator("pre.job-log").wait_for()
    assert page.locator(f"tr[data-job='{job['id']}'] button[aria-expanded=true]").count() == 1
    page.locator("nav[aria-label=Areas] >> text=Viewer").click()
    page.wait_for_url("**/#/viewer**")
    page.go_back()
    page.locator("pre.job-log").wait_for()
    assert page.locator(f"tr[data-job='{job['id']}'] button[aria-expanded=true]").count() == 1
    # A link to a job that is on no page of the list still opens it.
    open_jobs(page, system, f"?job={job['id']}&state=running")
    page.locator(f"tr[data-job='{job['id']}'] button[aria-expanded=true]").wait_for()


def test_filter_search_pages_clone_and_resubmit(system, page, bob):
    jobs = [submit_by_api(system, name) for name in ("alpha run zq", "beta run zq", "gamma test zq")]
    wait_ended(system, [j["id"] for j in jobs])
    open_jobs(page, system, "?per=2&q=zq")  # these three, not the other tests' jobs
    names = lambda: page.locator("tr[data-job] td:first-child").evaluate_all("cells => cells.map(c => c.innerText)")  # noqa: E731
    page.wait_for_function("() => document.querySelectorAll('tr[data-job]').length === 2")
    assert names() == ["gamma test zq", "beta run zq"]
    assert page.locator("nav[aria-label=Pages]").inner_text().count("Page 1 of 2") == 1
    page.get_by_role("button", name="Older", exact=True).click()
    page.wait_for_function("() => document.querySelectorAll('tr[data-job]').length === 1")
    assert names() == ["alpha run zq"]
    page.reload()  # the page is part of the place
    page.wait_for_function("() => document.querySelectorAll('tr[data-job]').length === 1")
    assert names() == ["alpha run zq"]

    open_jobs(page, system)
    page.get_by_label("Search jobs").fill("run")
    page.wait_for_function("() => document.querySelectorAll('tr[data-job]').length === 2")
    assert sorted(names()) == ["alpha run zq", "beta run zq"]
    assert page.locator(".job-count").inner_text() == "2 jobs match"
    page.get_by_label("Search jobs").fill("gamma")
    page.wait_for_function("() => document.querySelectorAll('tr[data-job]').length === 1")
    page.get_by_label("State").select_option("running")
    page.locator("text=No job matches.").wait_for()
    page.get_by_label("State").select_option("failed")
    page.wait_for_function("() => document.querySelectorAll('tr[data-job]').length === 1")
    page.get_by_label("Search jobs").fill("zq")
    page.wait_for_function("() => document.querySelectorAll('tr[data-job]').length === 3")
    picture(page, "jobs-list.png")

    form = page.locator("form[aria-label='Submit a job']")
    page.locator("tr[data-job]", has_text="beta run zq").get_by_role("button", name="Clone").click()
    page.wait_for_function("() => document.querySelector(\"form[aria-label='Submit a job'] input[name=name]\").value"
                           " === 'beta run zq (again)'")  # the clone fills the form after the click
    assert form.locator("input[name=name]").input_value() == "beta run zq (again)"
    assert form.locator("input[name=dataset]").input_value() == "data/empty.nxs"
    assert form.locator("select[name=mode]").input_value() == "full"

    page.get_by_label("State").select_option("")
    page.locator("tr[data-job]", has_text="gamma test zq").get_by_role("button", name="Resubmit").click()
    # A resubmit opens the new job with the filters cleared: search only once it has.
    page.locator("[data-testid=message]", has_text="Resubmitted as gamma test zq (again).").wait_for()
    page.wait_for_function("() => new URLSearchParams(location.hash.split('?')[1] || '').get('job')")
    page.get_by_label("Search jobs").fill("gamma")
    again = page.locator("tr[data-job]", has_text="gamma test zq (again)")
    again.wait_for()
    again.locator(".job-state[data-state=failed]").wait_for(timeout=120_000)
    page.wait_for_function("() => document.querySelectorAll('tr[data-job]').length === 2")


def test_a_refused_submission_says_why_and_submits_nothing(system, page, bob):
    before = system.login(USER).get(f"{system.url}/api/jobs").json()["total"]
    open_jobs(page, system)
    form = page.locator("form[aria-label='Submit a job']")
    form.locator("input[name=process_list]").fill("processing/missing.nxs")
    form.locator("button[type=submit]").click()
    error = form.locator("[role=alert]")
    error.wait_for()
    assert error.inner_text().startswith("The job was not submitted: ") and "missing.nxs" in error.inner_text()
    assert system.login(USER).get(f"{system.url}/api/jobs").json()["total"] == before


def test_a_link_from_the_editor_opens_the_form_with_its_list(system, page, bob):
    write_sample_process_list(bob["processing"] / "other.nxs")
    open_jobs(page, system, "?list=processing/other.nxs")  # what the editor's "Run this list" opens
    form = page.locator("form[aria-label='Submit a job']")
    page.wait_for_function("() => document.querySelector('input[name=process_list]').value === 'processing/other.nxs'")
    page.wait_for_function("() => document.querySelector('input[name=dataset]').value !== ''")  # and a dataset that exists
    assert form.locator("input[name=dataset]").input_value().startswith("data/")
