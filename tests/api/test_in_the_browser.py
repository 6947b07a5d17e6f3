"""What a scientist sees of the API's answers in a real Chromium, through the gateway and nginx: the
editor's Download saves Savu's .nxs file (not the editor's JSON, issue 9 #14), and a failed job's row
says why it failed (issue 9 #17)."""
from __future__ import annotations

import re
import shutil

import h5py
import pytest
from conftest import FIXTURES, browser_login
from make_sample_data import write_sample_process_list

from hebi_common.savu.process_list import read_process_list

pytestmark = pytest.mark.browser


def test_download_saves_the_nxs_file_that_h5py_opens(system, page, tmp_path):
    processing = system.folders("alice")["processing"]
    shutil.copy(FIXTURES / "process_lists" / "basic_tomo_process.nxs", processing / "download_me.nxs")
    browser_login(page, system, "alice")
    page.goto(f"{system.url}/#/process-lists?path=download_me.nxs")
    page.wait_for_selector("text=NxtomoLoader")
    # The editor fetched the list's JSON first: the download must not be answered from that.
    for attempt in range(2):  # twice: the second one is the revalidation that used to save JSON
        with page.expect_download() as download:
            page.click("text=Download .nxs")
        saved = tmp_path / f"saved-{attempt}.nxs"
        download.value.save_as(saved)
        assert download.value.suggested_filename == "download_me.nxs"
        with h5py.File(saved, "r") as nexus:
            assert "entry" in nexus
        plugins = [entry.name for entry in read_process_list(saved).plugins]
        assert plugins == [entry.name for entry in read_process_list(processing / "download_me.nxs").plugins]


def test_a_failed_jobs_row_shows_its_reason(system, page):
    folders = system.folders("alice")
    with h5py.File(folders["data"] / "no_tomo.nxs", "w") as scan:
        scan.create_group("entry1")  # HDF5 (so submission takes it), but no tomography in it
    write_sample_process_list(folders["processing"] / "fails.nxs")
    browser_login(page, system, "alice")
    page.click("nav[aria-label=Areas] >> text=Jobs")
    form = page.locator("form[aria-label='Submit a job']")
    form.locator("input[name=process_list]").fill("processing/fails.nxs")
    form.locator("input[name=dataset]").fill("data/no_tomo.nxs")
    form.locator("input[name=output]").fill("output/fails")
    form.locator("input[name=name]").fill("doomed (on purpose)")
    form.locator("select[name=mode]").select_option("full")
    form.locator("button[type=submit]").click()
    row = page.locator("tr[data-job]", has_text="doomed (on purpose)")
    row.locator(".job-state[data-state=failed]").wait_for(timeout=120_000)
    reason = row.locator(".job-reason")
    reason.wait_for()
    text = reason.inner_text()
    assert "no dataset at /entry1" in text and "exit code" not in text, text
    # The details open on stderr, which says it, since the run never started its user.log.
    if row.locator("button[aria-expanded]").get_attribute("aria-expanded") != "true":  # opened on submitting
        row.locator("button[aria-expanded]").click()
    log = page.locator("pre.job-log")
    page.wait_for_function("() => /hebi-runner:/.test(document.querySelector('pre.job-log')?.textContent || '')")
    assert re.search(r"hebi-runner: .*no dataset at /entry1", log.inner_text())
    assert page.locator("[role=tab][aria-selected=true]").inner_text() == "stderr"
