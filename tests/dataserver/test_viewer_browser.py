"""A scientist opens files in hebi's Viewer: h5web's H5GroveProvider, unchanged, in a real Chromium,
against the dataserver of their real session (gateway + launcher + nginx), on a real Diamond file and
on a raw-tomography layout under /entry1. The heatmap of the 3D dataset must appear with its data."""
from __future__ import annotations

import base64
import shutil

import pytest
from conftest import FIXTURES, browser_login, real_component
from h5_samples import write_tomo_entry1

pytestmark = pytest.mark.browser


@pytest.fixture
def viewer_page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def open_in_viewer(page, system, ref: str) -> list[str]:
    """Open ``ref`` in the Viewer; returns the binary slice requests h5web made."""
    slices: list[str] = []
    page.on("response", lambda r: slices.append(f"{r.status} {r.url}")
            if "/data/data?" in r.url and "format=bin" in r.url else None)
    page.goto(f"{system.url}/#/viewer?file={ref}")
    page.wait_for_selector("[data-testid=h5web]")
    return slices


COUNT_COLOURS = """async (png) => {
    // Decode the screenshot in the browser itself (no imaging library needed) and count its colours.
    const image = new Image();
    image.src = 'data:image/png;base64,' + png;
    await image.decode();
    const canvas = new OffscreenCanvas(image.width, image.height);
    const context = canvas.getContext('2d');
    context.drawImage(image, 0, 0);
    const pixels = context.getImageData(0, 0, image.width, image.height).data;
    const colours = new Set();
    for (let i = 0; i < pixels.length; i += 4 * 7) colours.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2]);
    return colours.size;
}"""


def heatmap_colours(page) -> int:
    """How many colours the heatmap's WebGL canvas shows: one when nothing was drawn."""
    canvas = page.locator("[data-testid=h5web] canvas").first
    canvas.wait_for(state="visible", timeout=30_000)
    page.wait_for_timeout(500)  # one more frame for WebGL to draw
    return page.evaluate(COUNT_COLOURS, base64.b64encode(canvas.screenshot()).decode())


def test_real_diamond_projections_open_as_a_heatmap(system, viewer_page):
    source = FIXTURES / "data" / "i12_lfov" / "tomo_data" / "pc2_projections.hdf"
    real_component("Savu fixtures", source.exists(), f"the shared fixtures are missing ({source})")
    data = system.folders("alice")["data"]
    (data / "i12").mkdir(exist_ok=True)
    shutil.copy(source, data / "i12" / "pc2_projections.hdf")
    browser_login(viewer_page, system, "alice")
    slices = open_in_viewer(viewer_page, system, "data/i12/pc2_projections.hdf")
    # The file has no NeXus defaults: the dataserver picks its 3D stack, h5web shows it as a heatmap.
    viewer_page.wait_for_selector("[data-testid=h5web] [role=tab]:has-text('Heatmap')", timeout=30_000)
    assert heatmap_colours(viewer_page) > 50, "the heatmap shows no image"
    assert any(s.startswith("200 ") and ("selection=0%2C%3A%2C%3A" in s or "selection=0,:,:" in s)
               for s in slices), slices
    assert "D0" in viewer_page.inner_text("[data-testid=h5web]")  # the frame slider of the 3D stack


def test_entry1_layout_opens_on_its_nexus_default_plot(system, viewer_page):
    data = system.folders("alice")["data"]
    write_tomo_entry1(data / "raw_entry1.nxs", frames=8, rows=64, cols=96)
    browser_login(viewer_page, system, "alice")
    open_in_viewer(viewer_page, system, "data/raw_entry1.nxs")
    # NX Heatmap: h5web followed the defaults from the path the dataserver found under /entry1.
    viewer_page.wait_for_selector("[data-testid=h5web] [role=tab]:has-text('NX Heatmap')", timeout=30_000)
    assert heatmap_colours(viewer_page) > 50
    assert "entry1" in viewer_page.inner_text("[data-testid=h5web]")


def test_savu_output_opens_through_its_external_link_as_an_nx_heatmap(system, viewer_page):
    import h5py
    import numpy as np

    source = FIXTURES / "data" / "24737_processed.nxs"
    real_component("Savu fixtures", source.exists(), f"the shared fixtures are missing ({source})")
    run = system.folders("alice")["output"] / "24737"
    run.mkdir(exist_ok=True)
    shutil.copy(source, run / "24737_processed.nxs")
    # The plugin's own output file, which the master file links to (absent from the fixtures).
    volume = np.add.outer(np.sin(np.linspace(0, 6, 91)), np.outer(np.hanning(135), np.hanning(160))).astype("f4")
    with h5py.File(run / "tomo_p1_dark_flat_field_correction.h5", "w") as f:
        f.create_dataset("1-DarkFlatFieldCorrection-tomo/data", data=volume, chunks=(1, 135, 160))
    browser_login(viewer_page, system, "alice")
    open_in_viewer(viewer_page, system, "output/24737/24737_processed.nxs")
    viewer_page.wait_for_selector("[data-testid=h5web] [role=tab]:has-text('NX Heatmap')", timeout=30_000)
    assert heatmap_colours(viewer_page) > 50
    text = viewer_page.inner_text("[data-testid=h5web]")
    assert "final_result_tomo" in text and "detector_x" in text  # the NXdata and its axes


def test_a_reconstruction_opens_on_its_middle_slice_not_an_empty_edge(system, viewer_page):
    """The runner's volume (x, slices, z) opens on a reconstructed slice: h5web's default mapping
    would show the x=0 edge plane, all zeros, unless the NXdata says which slice to show."""
    from make_sample_data import write_nxtomo

    from hebi_runner import PluginSpec, RunOptions, run_pipeline

    scan = write_nxtomo(system.base / "viewer_scan.nxs", angles=91, rows=4, columns=96)
    out = system.folders("alice")["output"] / "recon"
    result = run_pipeline(scan, [PluginSpec("NxtomoLoader"), PluginSpec("DarkFlatFieldCorrection"),
                                 PluginSpec("VoCentering"), PluginSpec("AstraReconCpu")],
                          out, RunOptions(workers=1))
    assert result.status == "completed", result.error
    ref = system.folders("alice")["output"].name + "/" + str(result.nxs.relative_to(system.folders("alice")["output"]))
    browser_login(viewer_page, system, "alice")
    open_in_viewer(viewer_page, system, ref)
    viewer_page.wait_for_selector("[data-testid=h5web] [role=tab]:has-text('NX Heatmap')", timeout=30_000)
    assert heatmap_colours(viewer_page) > 50, "the viewer opened on an empty plane of the volume"
