"""The Files area as a scientist uses it, in Chromium through the gateway and nginx: uploads by button,
folder and drop, resumed after a cut connection and arriving byte for byte; downloads of files and of
folders as zips; new folder, rename, move, copy, delete (asked first) into the trash and out again;
logs and TIFFs read in the page; hebi's own folders hidden; sorting, filtering, totals; the place kept
on reload, and one message at a time.

Set HEBI_DOC_IMAGES to a folder to have the tests save the pictures of docs/users.md there."""
from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import browser_login

pytestmark = pytest.mark.browser


def picture(page, name: str) -> None:
    folder = os.environ.get("HEBI_DOC_IMAGES")
    if folder:
        page.screenshot(path=str(Path(folder) / name))


@pytest.fixture
def alice(system, page):
    folders = system.folders("alice")
    for root in folders.values():  # each test starts from empty roots
        for item in root.iterdir():
            shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()
    browser_login(page, system, "alice")
    return folders


def open_files(page, system, **params: str) -> None:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    page.goto(f"{system.url}/#/files?{query}")
    page.reload()  # a hash change alone keeps the page: load it afresh, as opening a link would
    page.locator("table.files").wait_for()


def row(page, name: str):
    return page.locator(f"tr[data-entry='{name}']")


def test_an_upload_cut_off_resumes_and_arrives_byte_for_byte(system, page, alice, tmp_path):
    big = tmp_path / "projections.raw"
    big.write_bytes(os.urandom(20 * 1024 * 1024 + 12345))  # three 8 MiB pieces
    patches, heads = [], []

    def cut_the_second_piece(route):
        if route.request.method == "PATCH":
            patches.append(route.request.headers.get("upload-offset"))
            if len(patches) == 2:
                route.abort("connectionreset")  # the network fails in the middle of the upload
                return
        if route.request.method == "HEAD":
            heads.append(route.request.url)
        route.continue_()

    page.route("**/api/tus/**", cut_the_second_piece)
    open_files(page, system, root="output")
    page.set_input_files("[data-testid=upload-files]", str(big))
    done = page.locator("li[data-upload='projections.raw'][data-state=done]")
    done.wait_for(timeout=120_000)
    assert "uploaded" in done.inner_text()
    # The client asked the server where it got to, and sent only the rest again.
    assert heads, "the upload resumed without asking the server for its offset"
    assert patches[:3] == ["0", str(8 * 1024 * 1024), str(8 * 1024 * 1024)]
    stored = alice["output"] / "projections.raw"
    assert hashlib.sha256(stored.read_bytes()).digest() == hashlib.sha256(big.read_bytes()).digest()
    row(page, "projections.raw").wait_for()
    assert "20.0 MB" in row(page, "projections.raw").inner_text()
    assert not list(alice["output"].glob(".hebi-uploads/*"))  # nothing of the upload is left behind


def test_an_upload_left_by_a_reload_goes_on_when_the_file_is_picked_again(system, page, alice, tmp_path):
    big = tmp_path / "scan.raw"
    big.write_bytes(os.urandom(17 * 1024 * 1024))
    offsets: list[str] = []

    def network_down_after_the_first_piece(route):
        if route.request.method == "PATCH":
            offsets.append(route.request.headers.get("upload-offset"))
            if len(offsets) > 1:
                route.abort("internetdisconnected")
                return
        route.continue_()

    page.route("**/api/tus/**", network_down_after_the_first_piece)
    open_files(page, system, root="output")
    page.set_input_files("[data-testid=upload-files]", str(big))
    failed = page.locator("li[data-upload='scan.raw'][data-state=failed]")
    failed.wait_for(timeout=60_000)  # the retries gave up
    assert "Resume" in failed.inner_text()
    page.unroute("**/api/tus/**")
    sent_after: list[str] = []
    page.on("request", lambda r: r.method == "PATCH" and sent_after.append(r.headers.get("upload-offset")))
    page.reload()
    page.locator("table.files").wait_for()
    assert not (alice["output"] / "scan.raw").exists()
    page.set_input_files("[data-testid=upload-files]", str(big))
    page.locator("li[data-upload='scan.raw'][data-state=done]").wait_for(timeout=60_000)
    assert sent_after[0] == str(8 * 1024 * 1024)  # went on from the server's offset, not from the start
    assert (alice["output"] / "scan.raw").read_bytes() == big.read_bytes()


def test_folders_upload_with_their_tree_and_files_by_drop(system, page, alice, tmp_path):
    scan = tmp_path / "scan_42"
    (scan / "flats").mkdir(parents=True)
    (scan / "flats" / "flat_0.tif").write_bytes(b"F" * 1000)
    (scan / "notes.txt").write_text("sample: bone\n")
    open_files(page, system, root="processing")
    page.set_input_files("[data-testid=upload-folder]", str(scan))
    page.locator("li[data-upload='scan_42/flats/flat_0.tif'][data-state=done]").wait_for(timeout=60_000)
    page.locator("li[data-upload='scan_42/notes.txt'][data-state=done]").wait_for()
    assert (alice["processing"] / "scan_42" / "flats" / "flat_0.tif").read_bytes() == b"F" * 1000
    assert (alice["processing"] / "scan_42" / "notes.txt").read_text() == "sample: bone\n"

    # Dropped onto the area: the page gets the files as a browser's drop gives them.
    page.evaluate("""() => {
        const transfer = new DataTransfer();
        transfer.items.add(new File(['dropped bytes'], 'dropped.txt', { type: 'text/plain' }));
        const area = document.querySelector('[data-testid=files-area]');
        for (const type of ['dragenter', 'dragover', 'drop']) {
            area.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
        }
    }""")
    page.locator("li[data-upload='dropped.txt'][data-state=done]").wait_for(timeout=60_000)
    assert (alice["processing"] / "dropped.txt").read_text() == "dropped bytes"
    row(page, "dropped.txt").wait_for()
    row(page, "scan_42").wait_for()
    # The uploads belong to the app, not the page of the area: a visit elsewhere keeps their list.
    page.locator("nav[aria-label=Areas] >> text=Jobs").click()
    page.locator("#jobs-title").wait_for()
    page.locator("nav[aria-label=Areas] >> text=Files").click()
    page.locator("[data-testid=files-area]").wait_for()  # the area is drawn again before its list is read
    page.wait_for_function("() => document.querySelectorAll('section[aria-label=Uploads] li[data-state=done]').length === 3")


def test_an_existing_file_is_replaced_only_when_the_user_says_so(system, page, alice, tmp_path):
    (alice["output"] / "a.txt").write_text("old")
    new = tmp_path / "a.txt"
    new.write_text("new")
    open_files(page, system, root="output")
    page.set_input_files("[data-testid=upload-files]", str(new))
    item = page.locator("li[data-upload='a.txt'][data-state=exists]")
    item.wait_for()
    assert "already exists" in item.inner_text()
    assert (alice["output"] / "a.txt").read_text() == "old"
    item.get_by_role("button", name="Replace it").click()
    page.locator("li[data-upload='a.txt'][data-state=done]").wait_for()
    assert (alice["output"] / "a.txt").read_text() == "new"


def test_files_download_and_folders_download_as_zips(system, page, alice, tmp_path):
    run = alice["output"] / "run_1"
    (run / "recon").mkdir(parents=True)
    body = os.urandom(2 * 1024 * 1024)
    (run / "recon" / "slices.bin").write_bytes(body)
    (run / "user.log").write_text("Savu finished\n")
    (run / ".hebi").mkdir()
    open_files(page, system, root="output")
    with page.expect_download() as download:
        row(page, "run_1").get_by_role("link", name="Download run_1 as zip").click()
    assert download.value.suggested_filename == "run_1.zip"
    saved = tmp_path / "run_1.zip"
    download.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        assert sorted(archive.namelist()) == ["run_1/recon/slices.bin", "run_1/user.log"]
        assert archive.read("run_1/recon/slices.bin") == body
    open_files(page, system, root="output", path="run_1/recon")
    with page.expect_download() as download:
        row(page, "slices.bin").get_by_role("link", name="Download slices.bin").click()
    assert download.value.suggested_filename == "slices.bin"
    download.value.save_as(tmp_path / "slices.bin")
    assert (tmp_path / "slices.bin").read_bytes() == body


def ask(page, title: str, value: str | None = None, confirm: str | None = None) -> None:
    dialog = page.get_by_role("dialog", name=title)
    dialog.wait_for()
    if value is not None:
        dialog.locator("input").fill(value)
    dialog.locator("button[type=submit]" if confirm is None else f"button:has-text('{confirm}')").click()
    dialog.wait_for(state="detached")


def test_new_folder_rename_move_copy_delete_and_the_trash(system, page, alice):
    (alice["processing"] / "tomo.nxs").write_bytes(b"list")
    open_files(page, system, root="processing")
    page.get_by_role("button", name="New folder").click()
    ask(page, "New folder", "lists")
    row(page, "lists").wait_for()
    assert (alice["processing"] / "lists").is_dir()
    message = page.locator("[data-testid=message]")
    assert message.inner_text().startswith("Folder lists created.")

    row(page, "tomo.nxs").get_by_role("button", name="Rename").click()
    ask(page, "Rename tomo.nxs", "tomo_v2.nxs")
    row(page, "tomo_v2.nxs").wait_for()
    assert page.locator("[data-testid=message]").count() == 1  # the new message replaced the old one
    assert "tomo.nxs is now tomo_v2.nxs." in message.inner_text()

    row(page, "tomo_v2.nxs").get_by_role("button", name="Copy").click()
    ask(page, "Copy tomo_v2.nxs", "output/tomo_copy.nxs")
    row(page, "tomo_v2.nxs").get_by_role("button", name="Move").click()
    ask(page, "Move tomo_v2.nxs", "processing/lists/tomo_v2.nxs")
    row(page, "tomo_v2.nxs").wait_for(state="detached")
    assert (alice["processing"] / "lists" / "tomo_v2.nxs").read_bytes() == b"list"
    assert (alice["output"] / "tomo_copy.nxs").read_bytes() == b"list"

    # A refused change says why, in words, and changes nothing.
    row(page, "lists").get_by_role("button", name="Rename").click()
    ask(page, "Rename lists", "lists/inner")
    page.locator("[data-testid=message][role=alert]").wait_for()
    assert "Renaming lists" in message.inner_text() and (alice["processing"] / "lists").is_dir()

    # Delete asks first; cancelling keeps the folder.
    row(page, "lists").get_by_role("button", name="Delete").click()
    page.get_by_role("dialog", name="Delete lists?").get_by_role("button", name="Cancel").click()
    assert (alice["processing"] / "lists").is_dir()
    row(page, "lists").get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete lists?")
    assert "goes to the trash" in dialog.inner_text()
    ask(page, "Delete lists?")
    row(page, "lists").wait_for(state="detached")
    assert not (alice["processing"] / "lists").exists()

    page.get_by_role("tab", name="Trash").click()
    trashed = page.locator("tr[data-trash='processing/lists']")
    trashed.wait_for()
    picture(page, "files-trash.png")
    trashed.get_by_role("button", name="Restore").click()
    page.locator("text=The trash is empty.").wait_for()
    assert (alice["processing"] / "lists" / "tomo_v2.nxs").read_bytes() == b"list"

    page.get_by_role("tab", name="processing").click()
    row(page, "lists").get_by_role("button", name="Delete").click()
    ask(page, "Delete lists?")
    page.get_by_role("tab", name="Trash").click()
    page.get_by_role("button", name="Empty trash").click()
    ask(page, "Empty the trash?")
    page.locator("text=The trash is empty.").wait_for()
    assert "deleted for good" in message.inner_text()
    assert not list((alice["processing"] / ".hebi-trash").iterdir())


def test_logs_are_read_and_tiffs_previewed_in_the_page(system, page, alice):
    run = alice["output"] / "run_1"
    run.mkdir()
    (run / "user.log").write_text("".join(f"[INFO] plugin {i} done\n" for i in range(50)) + "Processing complete\n")
    image = np.zeros((512, 640), dtype=np.uint16)
    image[100:400, 200:500] = 3000
    tifffile.imwrite(run / "projection_0001.tif", image)
    (alice["output"] / ".hebi" / "job-x").mkdir(parents=True)
    open_files(page, system, root="output")
    assert page.locator("table.files tbody tr").count() == 1  # .hebi is hebi's own: not shown
    row(page, "run_1").get_by_role("link", name="run_1", exact=True).click()
    row(page, "user.log").get_by_role("link", name="user.log", exact=True).click()
    text = page.locator("[data-testid=file-text]")
    text.wait_for()
    assert text.inner_text().rstrip().endswith("Processing complete")
    page.reload()  # the open file is part of the place
    text.wait_for()
    assert "plugin 49 done" in text.inner_text()
    row(page, "projection_0001.tif").get_by_role("link", name="projection_0001.tif", exact=True).click()
    preview = page.get_by_role("img", name="Preview of projection_0001.tif")
    preview.wait_for()
    page.wait_for_function("() => document.querySelector('img.tiff-preview')?.naturalWidth === 640")
    picture(page, "files.png")


def test_sorting_filtering_totals_and_the_place_kept_on_reload(system, page, alice):
    data = alice["data"]
    (data / "scans").mkdir()
    for name, size in [("b_small.nxs", 10), ("a_big.nxs", 3000), ("c_mid.h5", 500), ("notes.txt", 1)]:
        (data / name).write_bytes(b"x" * size)
    open_files(page, system, root="data")
    names = lambda: page.locator("table.files tbody tr").evaluate_all("rows => rows.map(r => r.dataset.entry)")  # noqa: E731
    assert names() == ["scans", "a_big.nxs", "b_small.nxs", "c_mid.h5", "notes.txt"]
    totals = page.locator("[data-testid=totals]")
    assert totals.inner_text() == "1 folder, 4 files, 3.4 KB"
    page.get_by_role("button", name="Size").click()
    page.get_by_role("button", name="Size ▲").click()  # again: largest first
    assert names() == ["scans", "a_big.nxs", "c_mid.h5", "b_small.nxs", "notes.txt"]
    page.get_by_label("Filter by name").fill(".nxs")
    page.wait_for_function("() => document.querySelectorAll('table.files tbody tr').length === 2")
    assert names() == ["a_big.nxs", "b_small.nxs"]
    assert totals.inner_text() == "0 folders, 2 files, 2.9 KB (of 5 entries)"
    page.reload()
    page.locator("table.files").wait_for()
    assert names() == ["a_big.nxs", "b_small.nxs"] and page.get_by_label("Filter by name").input_value() == ".nxs"
    # Going to another area and back by its tab returns to the same place.
    page.locator("nav[aria-label=Areas] >> text=Jobs").click()
    page.locator("#jobs-title").wait_for()
    page.locator("nav[aria-label=Areas] >> text=Files").click()
    page.locator("table.files").wait_for()
    assert names() == ["a_big.nxs", "b_small.nxs"]


def test_a_deep_link_survives_login(system, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        folders = system.folders("alice")
        (folders["output"] / "deep" / "er").mkdir(parents=True, exist_ok=True)
        page.goto(f"{system.url}/#/files?root=output&path=deep/er")
        page.fill("input[name=username]", "alice")
        from conftest import PASSWORDS
        page.fill("input[name=password]", PASSWORDS["alice"])
        page.click("button[type=submit]")
        page.locator("nav[aria-label=Folder]").wait_for()
        assert page.locator("nav[aria-label=Folder]").inner_text().replace(" ", "") == "output/deep/er"
    finally:
        context.close()


def test_bad_input_in_the_page_is_said_and_changes_nothing(system, page, alice):
    (alice["processing"] / "keep").mkdir()
    open_files(page, system, root="processing")
    page.get_by_role("button", name="New folder").click()
    ask(page, "New folder", "keep")
    message = page.locator("[data-testid=message][role=alert]")
    message.wait_for()
    assert "already exists" in message.inner_text()
    page.get_by_role("button", name="New folder").click()
    ask(page, "New folder", ".hebi-secret")
    page.wait_for_function("() => /hebi's own/.test(document.querySelector('[data-testid=message]')?.textContent || '')")
    assert sorted(p.name for p in alice["processing"].iterdir()) == ["keep"]
