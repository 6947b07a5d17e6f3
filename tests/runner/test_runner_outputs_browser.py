"""Every output of a tuned preview opens in hebi's Viewer (h5web in Chromium) with no error, and shows
its tuned values (issue 9 #16): the runner writes NXdata whose axes exist and are numeric, and labels
each tuned dimension with its values."""
from __future__ import annotations

import pytest
from conftest import browser_login

from hebi_runner import RunOptions, run_process_list

pytestmark = pytest.mark.browser


@pytest.fixture
def viewer_page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def test_every_output_of_a_tuned_preview_opens_in_the_viewer(system, viewer_page):
    from make_sample_data import write_nxtomo
    from runner_helpers import write_list

    folders = system.folders("alice")
    scan = write_nxtomo(folders["data"] / "tuned_scan.nxs", angles=91, rows=4, columns=96)
    plist = write_list(folders["processing"] / "tuned.nxs", [
        ("NxtomoLoader", {"preview": [":", "mid:mid+1", ":"]}), ("DarkFlatFieldCorrection", {}),
        ("AstraReconCpu", {"centre_of_rotation": "47;48.5", "algorithm": "FBP;SIRT", "n_iterations": 2})])
    result = run_process_list(scan, plist, folders["output"], RunOptions(folder="tuned", workers=1))
    assert result.status == "completed", result.error
    outputs = sorted(p for p in result.out_dir.rglob("*") if p.suffix in (".h5", ".nxs") and p.parent.name != "run_log")
    assert [p.name for p in outputs] == ["tomo_p1_dark_flat_field_correction.h5", "tomo_p2_astra_recon_cpu.h5",
                                         "tuned_scan_processed.nxs"]
    browser_login(viewer_page, system, "alice")
    tuned = "centre_of_rotation: 47, 48.5; algorithm: 0 = FBP, 1 = SIRT"
    for path in outputs:
        ref = f"output/{path.relative_to(folders['output']).as_posix()}"
        viewer_page.goto(f"{system.url}/#/viewer?file={ref}")
        viewer = viewer_page.locator("[data-testid=h5web]")
        viewer.wait_for()
        viewer_page.wait_for_selector("[data-testid=h5web] [role=tab]:has-text('NX Heatmap')", timeout=30_000)
        viewer_page.locator("[data-testid=h5web] canvas").first.wait_for(state="visible", timeout=30_000)
        viewer_page.wait_for_timeout(500)  # h5web shows a failed value's error in place of the plot
        text = viewer.inner_text()
        # h5web's error banners ("Expected child entity 'voxel_x' to exist", "Expected numeric type")
        errors = viewer_page.locator("[data-testid=h5web] [class*='_error_']")
        assert "Expected" not in text and errors.count() == 0, (path.name, text)
        if "astra" in path.name or path.suffix == ".nxs":  # the tuned outputs name every tuned value
            assert tuned in " ".join(text.split()), (path.name, text)
