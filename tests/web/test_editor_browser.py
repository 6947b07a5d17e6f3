"""The process-list editor as a scientist who knows savu_config uses it, in a real Chromium through the
gateway and the session's nginx: the whole list with its values (and as text), the command line, undo
after a reload, nothing lost silently (a conflict keeps the change, typed values wait, removing and
uploading ask), loops marked, sub-positions, expand, the catalogue read before adding, and "Run this list"."""
from __future__ import annotations

import shutil

import pytest
from conftest import FIXTURES, browser_login

from hebi_common.savu.process_list import read_process_list

pytestmark = pytest.mark.browser


@pytest.fixture
def editor(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    try:
        yield context.new_page()
    finally:
        context.close()


def put(system, fixture: str, name: str):
    target = system.folders("alice")["processing"] / name
    shutil.copy(FIXTURES / "process_lists" / fixture, target)
    return target


def open_list(page, system, name: str) -> None:
    page.goto(f"{system.url}/#/process-lists?path={name}")
    page.wait_for_selector("table.pl-plugins td.pos")


def type_command(page, line: str) -> str:
    """Type a line at the prompt; the transcript's text once the answer is printed."""
    before = page.locator("[data-testid=console]").inner_text()
    page.fill("input[aria-label='savu_config command']", line)
    page.press("input[aria-label='savu_config command']", "Enter")
    page.wait_for_function("(before) => document.querySelector('[data-testid=console]').innerText.length > before.length "
                           "&& document.querySelector('[data-testid=console]').innerText.includes('>>> ' + "
                           f"{line!r})", arg=before)
    page.wait_for_timeout(200)
    return page.locator("[data-testid=console]").inner_text()[len(before):]


def positions(page) -> list[str]:
    return page.locator("table.pl-plugins td.pos").all_inner_texts()


def test_whole_list_with_every_value_and_copied_as_text(system, editor):
    put(system, "basic_tomo_process.nxs", "whole.nxs")
    browser_login(editor, system, "alice")
    open_list(editor, system, "whole.nxs")
    whole = editor.locator("[data-testid=whole-list]")
    whole.locator("text=ScikitimageFilterBackProjection").wait_for()
    text = whole.inner_text()
    for seen in ("1) NxtomoLoader(savu.plugins.loaders", "3) RavenFilter", "uvalue : 30", 'preview : [":","0:2",":"]',
                 "data_path : entry1/tomo_entry/data/data"):
        assert seen in text, (seen, text)
    editor.click("text=Copy as text")
    editor.wait_for_selector("text=Copied the list as text.")
    assert editor.evaluate("navigator.clipboard.readText()") == text


def test_command_line_mod_by_number_and_the_clicks_beside_it(system, editor):
    put(system, "multiple_param_values_test.nxs", "cmd.nxs")
    browser_login(editor, system, "alice")
    open_list(editor, system, "cmd.nxs")
    said = type_command(editor, "mod 3.1 86")
    assert "3.centre_of_rotation = 86" in said, said
    editor.wait_for_function("document.querySelector('[data-testid=whole-list]').innerText"
                             ".includes('centre_of_rotation : 86\\n')")
    said = type_command(editor, "add MedianFilter 3a")
    assert "MedianFilter is at position 3a" in said
    assert positions(editor) == ["1", "2", "3a", "3b"]  # savu_config's numbering: the old 3 became 3b
    assert "at position 3b" not in said
    said = type_command(editor, "mod -g pattern SINOGRAM")
    assert "pattern changed in plugins" in said, said
    said = type_command(editor, "frobnicate")
    assert "not a command I recognise" in said
    said = type_command(editor, "help")
    assert "mod -d POS.PARAM" in said and "undo, redo, history" in said
    # The buttons are still there, beside the prompt: one click switches a plugin off.
    editor.click("input[aria-label='Plugin 2 on']")
    editor.wait_for_selector("table.pl-plugins tr.off >> text=DarkFlatFieldCorrection")
    said = type_command(editor, "history")
    assert "mod 3.1 86" in said and "add MedianFilter 3a" in said and "set 2 off" in said


def test_remove_asks_and_undo_brings_it_back_after_a_reload(system, editor):
    target = put(system, "basic_tomo_process.nxs", "undo.nxs")
    browser_login(editor, system, "alice")
    open_list(editor, system, "undo.nxs")
    row = editor.locator("table.pl-plugins tr", has_text="RavenFilter")
    asked: list[str] = []
    editor.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    row.locator("button[title=Remove]").click()
    editor.wait_for_timeout(500)
    assert asked and "Remove plugin 3 (RavenFilter)?" in asked[0]
    assert "RavenFilter" in [e.name for e in read_process_list(target).plugins]  # "no" changed nothing
    editor.once("dialog", lambda d: d.accept())
    row.locator("button[title=Remove]").click()
    editor.wait_for_selector("text=RavenFilter removed; Undo brings it back.")
    assert positions(editor) == ["1", "2", "3", "4"]
    editor.reload()
    editor.wait_for_selector("table.pl-plugins >> text=PaganinFilter")
    editor.click("button:text-is('Undo')")
    editor.wait_for_selector("table.pl-plugins >> text=RavenFilter")
    assert "Undone: rem 3" in editor.locator("[role=status]").inner_text()
    assert [e.name for e in read_process_list(target).plugins][2] == "RavenFilter"
    editor.click("button:text-is('Redo')")
    editor.wait_for_selector("table.pl-plugins >> text=RavenFilter", state="detached")


def test_a_conflict_keeps_the_change_and_applies_it_to_the_new_version(system, editor):
    target = put(system, "basic_tomo_process.nxs", "conflict.nxs")
    browser_login(editor, system, "alice")
    open_list(editor, system, "conflict.nxs")
    # Meanwhile, in another tab: plugin 5 is switched off (a new version of the file).
    with system.login("alice") as http:
        etag = http.get(f"{system.url}/api/process-lists/conflict.nxs").headers["ETag"]
        answer = http.post(f"{system.url}/api/process-lists/conflict.nxs/operations", headers={"If-Match": etag},
                           json={"operations": [{"op": "set", "pos": "5", "state": "off"}]})
        assert answer.status_code == 200, answer.text
    editor.click("input[aria-label='Plugin 3 on']")  # made on the old version: 412
    conflict = editor.locator("[data-testid=conflict]")
    conflict.wait_for()
    assert "set 3 off" in conflict.inner_text()
    assert [e.active for e in read_process_list(target).plugins][2] is True  # not applied behind the user's back
    editor.click("text=Apply my change to the new version")
    editor.wait_for_selector("text=was applied to the new version")
    assert [e.active for e in read_process_list(target).plugins] == [True, True, False, True, False]


def test_typed_values_survive_switching_plugins(system, editor):
    put(system, "basic_tomo_process.nxs", "drafts.nxs")
    browser_login(editor, system, "alice")
    open_list(editor, system, "drafts.nxs")
    editor.click("table.pl-plugins >> text=RavenFilter")
    editor.fill("input[aria-label='RavenFilter uvalue']", "42")
    editor.click("table.pl-plugins >> text=PaganinFilter")
    editor.wait_for_selector("h2:has-text('4: PaganinFilter')")
    editor.click("table.pl-plugins >> text=RavenFilter")
    editor.wait_for_selector("h2:has-text('3: RavenFilter')")
    assert editor.input_value("input[aria-label='RavenFilter uvalue']") == "42"
    assert editor.locator("text=not set yet").count() == 1
    editor.press("input[aria-label='RavenFilter uvalue']", "Enter")
    editor.wait_for_function("document.querySelector('[data-testid=whole-list]').innerText.includes('uvalue : 42')")
    assert editor.locator("text=not set yet").count() == 0
    # The selected plugin is in the address: a reload comes back to it.
    editor.reload()
    editor.wait_for_selector("h2:has-text('3: RavenFilter')")


def test_upload_over_an_open_list_asks_first(system, editor, tmp_path):
    target = put(system, "basic_tomo_process.nxs", "upload.nxs")
    other = tmp_path / "other.nxs"
    shutil.copy(FIXTURES / "process_lists" / "iterate_three_median_filters.nxs", other)
    browser_login(editor, system, "alice")
    open_list(editor, system, "upload.nxs")
    asked: list[str] = []
    editor.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    editor.set_input_files("input[aria-label='Upload a process list file']", str(other))
    editor.wait_for_timeout(500)
    assert asked and "Replace upload.nxs (5 plugins) with other.nxs?" in asked[0]
    assert read_process_list(target).plugins[0].name == "NxtomoLoader"
    editor.once("dialog", lambda d: d.accept())
    editor.set_input_files("input[aria-label='Upload a process list file']", str(other))
    editor.wait_for_selector("table.pl-plugins >> text=TomoPhantomLoader")
    editor.click("button:text-is('Undo')")
    editor.wait_for_selector("table.pl-plugins >> text=NxtomoLoader")


def test_loops_are_marked_and_expand_shows_tuning_and_preview(system, editor):
    put(system, "iterate_three_median_filters.nxs", "loops.nxs")
    browser_login(editor, system, "alice")
    open_list(editor, system, "loops.nxs")
    marks = editor.locator("[data-testid=loop-mark]")
    assert marks.count() == 3  # plugins 3 to 5
    assert "loop 1: ×2" in marks.first.inner_text()
    said = type_command(editor, "mod 3.kernel_size 3;5;7")
    editor.click("table.pl-plugins >> nth=0 >> text=MedianFilter")
    editor.wait_for_selector("h2:has-text('3: MedianFilter')")
    editor.locator("tr", has=editor.locator("input[aria-label='MedianFilter kernel_size']")).locator("text=expand").click()
    assert "tuned over 3 values: 3, 5, 7" in editor.locator("[data-testid=expanded-kernel_size]").inner_text()
    said = type_command(editor, "expand 1 3")
    assert "dim1: start 0" in said and "dim3:" in said, said
    said = type_command(editor, "iterate")
    assert "Loop 1: plugins 3 to 5, 2 iterations" in said


def test_catalogue_rows_open_a_plugin_before_adding_and_run_this_list(system, editor):
    put(system, "basic_tomo_process.nxs", "run.nxs")
    browser_login(editor, system, "alice")
    editor.goto(f"{system.url}/#/process-lists")
    editor.fill("input[aria-label='Search plugins']", "AstraReconCpu")
    editor.click("table.plugins button:has-text('AstraReconCpu')")
    details = editor.locator("[data-testid=plugin-details]")
    details.locator("text=Citations").wait_for()
    assert "centre_of_rotation" in details.inner_text()
    open_list(editor, system, "run.nxs")
    editor.fill("input[aria-label='Search plugins to add']", "MedianFilter")
    editor.click(".pl-add button.pl-link:has-text('MedianFilter')")
    editor.locator("[data-testid=plugin-details] >> text=kernel_size").wait_for()
    editor.fill("input[aria-label='Position for the new plugin']", "3")
    editor.click("text=Add MedianFilter to the list")
    editor.wait_for_selector("text=MedianFilter added.")
    assert positions(editor)[2] == "3" and editor.input_value("input[aria-label='Position for the new plugin']") == ""
    run = editor.locator("a:has-text('Run this list')")
    assert run.get_attribute("href") == "#/jobs?list=processing%2Frun.nxs"
    run.click()
    editor.wait_for_function("location.hash.startsWith('#/jobs?list=processing%2Frun.nxs')")
