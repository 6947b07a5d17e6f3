"""The Viewer's image tools in a real Chromium, through the gateway, nginx and the session's dataserver:
a big frame arrives binned to the canvas and at full resolution once zoomed, the contrast editor draws
the slice's histogram, a line profile and an ROI box give the values under them, two datasets show side
by side with their difference, a raw NXtomo opens on its first projection, tuned results are chosen by
value, and the address keeps the file, dataset, slice and colour map."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import h5py
import numpy as np
import pytest
from conftest import browser_login
from make_sample_data import write_nxtomo

from hebi_runner.output import create_output, tuning_axis

pytestmark = pytest.mark.browser


@pytest.fixture
def viewer(browser):
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    try:
        yield context.new_page()
    finally:
        context.close()


def open_tools(page, system, ref: str, path: str | None = None, **extra: str) -> list[str]:
    """Open the image tools on ``ref``; returns the slice requests made."""
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/data/data?" in r.url and "format=bin" in r.url else None)
    query = f"file={ref}&view=tools" + (f"&path={path}" if path else "") + "".join(f"&{k}={v}" for k, v in extra.items())
    page.goto(f"{system.url}/#/viewer?{query}")
    page.wait_for_selector("[data-testid=image][data-bin]", timeout=30_000)
    page.wait_for_function("window.__hebiFirstImage !== undefined")
    return asked


def drag(page, testid: str, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Drag across the canvas, from and to fractions of its width and height."""
    box = page.locator(f"[data-testid={testid}]").bounding_box()
    page.mouse.move(box["x"] + box["width"] * start[0], box["y"] + box["height"] * start[1])
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * (start[0] + end[0]) / 2, box["y"] + box["height"] * (start[1] + end[1]) / 2)
    page.mouse.move(box["x"] + box["width"] * end[0], box["y"] + box["height"] * end[1])
    page.mouse.up()


def hash_params(page) -> dict[str, str]:
    fragment = urlparse(page.url).fragment
    return {k: v[0] for k, v in parse_qs(fragment.partition("?")[2]).items()}


def canvas_pixel(page, testid: str, x: float, y: float) -> list[int]:
    """The RGBA of the canvas at fractions of its width and height."""
    return page.evaluate("""([testid, x, y]) => {
        const c = document.querySelector(`[data-testid=${testid}]`);
        return Array.from(c.getContext('2d').getImageData(Math.floor(c.width * x), Math.floor(c.height * y), 1, 1).data);
    }""", [testid, x, y])


def test_values_are_drawn_in_the_colour_maps_colours_and_nan_is_transparent(system, viewer):
    data = system.folders("alice")["data"]
    frame = np.zeros((64, 64), np.float32)
    frame[:, 32:] = 1
    frame[48:, :16] = np.nan
    with h5py.File(data / "halves.h5", "w") as f:
        f["frame"] = frame
    browser_login(viewer, system, "alice")
    open_tools(viewer, system, "data/halves.h5", "/frame")
    # Viridis's ends (#440154, #fde725): the lowest value, the highest, each channel where it belongs.
    assert canvas_pixel(viewer, "image", 0.25, 0.25) == [0x44, 0x01, 0x54, 255]
    assert canvas_pixel(viewer, "image", 0.75, 0.25) == [0xfd, 0xe7, 0x25, 255]
    assert canvas_pixel(viewer, "image", 0.1, 0.9)[3] == 0  # NaN: nothing drawn


def test_a_big_frame_comes_binned_to_the_canvas_and_full_resolution_when_zoomed(system, viewer):
    data = system.folders("alice")["data"]
    with h5py.File(data / "big.h5", "w") as f:
        f["frame"] = np.add.outer(np.arange(2048), np.arange(2048)).astype(np.float32)
    browser_login(viewer, system, "alice")
    asked = open_tools(viewer, system, "data/big.h5", "/frame")
    assert "binned 4 × 4" in viewer.inner_text("[data-testid=resolution]")  # 2048 onto a 640-pixel canvas
    assert all("size=" in url for url in asked) and len(asked) == 1, asked
    viewer.click("button:text-is('Zoom box')")
    drag(viewer, "image", (0.40, 0.40), (0.55, 0.55))  # about 300 x 300 pixels of the frame
    viewer.wait_for_function("document.querySelector('[data-testid=resolution]').innerText.startsWith('full resolution')")
    assert re.search(r"rows 8\d\d–11\d\d", viewer.inner_text("[data-testid=resolution]"))
    assert hash_params(viewer)["zoom"].count(",") == 3
    viewer.click("text=Reset zoom")
    viewer.wait_for_function("document.querySelector('[data-testid=resolution]').innerText.startsWith('binned 4')")


def test_histogram_profile_and_roi_statistics(system, viewer):
    data = system.folders("alice")["data"]
    with h5py.File(data / "ramp.h5", "w") as f:
        f["ramp"] = np.tile(np.arange(256, dtype=np.float32), (256, 1))  # the value is the column
    browser_login(viewer, system, "alice")
    open_tools(viewer, system, "data/ramp.h5", "/ramp")
    histogram = viewer.locator("[data-testid=histogram]")
    histogram.wait_for()
    heights = [float(h) for h in histogram.locator("rect.vt-bar").evaluate_all("bars => bars.map(b => b.getAttribute('height'))")]
    assert len(heights) == 128 and min(heights) > 0  # a flat histogram: every bin full
    assert "from 0 to 255" in histogram.get_attribute("aria-label")
    viewer.fill("input[aria-label='Contrast max']", "100")
    assert float(histogram.locator("rect.vt-window").get_attribute("width")) < 360 * 0.5  # the window shaded

    viewer.click("button:text-is('Line profile')")
    drag(viewer, "image", (0.02, 0.5), (0.98, 0.5))
    profile = viewer.locator("[data-testid=profile]")
    profile.wait_for()
    label = profile.get_attribute("aria-label")
    low, high = (float(x) for x in re.search(r", (\S+) to (\S+)$", label).groups())
    assert low < 10 and high > 245, label  # across the ramp, left to right
    points = profile.locator("polyline").get_attribute("points").split()
    ys = [float(p.split(",")[1]) for p in points]
    assert ys[0] > ys[-1]  # rising values are drawn upwards

    viewer.click("button:text-is('ROI box')")
    drag(viewer, "image", (0.25, 0.25), (0.5, 0.5))
    stats = viewer.locator("[data-testid=roi-stats]")
    stats.locator("text=pixels").wait_for()
    text = stats.inner_text()
    c0, c1 = (int(x) for x in re.search(r"columns\s+(\d+)–(\d+)", text).groups())
    r0, r1 = (int(x) for x in re.search(r"rows\s+(\d+)–(\d+)", text).groups())
    assert re.search(rf"min\s+{c0}\b", text) and re.search(rf"max\s+{c1 - 1}\b", text), text
    assert re.search(rf"pixels\s+{(r1 - r0) * (c1 - c0)}\b", text), text
    assert re.search(rf"mean\s+{(c0 + c1 - 1) / 2:g}\b", text), text


def test_two_datasets_side_by_side_with_their_difference(system, viewer):
    data = system.folders("alice")["data"]
    with h5py.File(data / "pair.h5", "w") as f:
        base = np.outer(np.hanning(200), np.hanning(300)).astype(np.float32) * 100
        f["raw"] = base
        f["recon"] = base + np.float32(1.5)
    browser_login(viewer, system, "alice")
    open_tools(viewer, system, "data/pair.h5", "/raw")
    viewer.fill("input[aria-label='Dataset to compare with']", "/recon")
    viewer.click("text=Side by side")
    viewer.wait_for_selector("[data-testid=image-b][data-bin]")
    viewer.wait_for_selector("[data-testid=difference][data-bin]")
    said = viewer.inner_text("[data-testid=difference-stats]")
    assert "largest |difference| 1.5" in said and "mean |difference| 1.5" in said, said
    assert hash_params(viewer)["compare"] == "/recon"
    viewer.reload()  # the comparison is in the address
    viewer.wait_for_selector("[data-testid=difference][data-bin]", timeout=30_000)


def test_a_raw_nxtomo_opens_on_its_first_projection(system, viewer):
    data = system.folders("alice")["data"]
    write_nxtomo(data / "raw_nxtomo.nxs", angles=24, rows=16, columns=48, darks=4, flats=3)
    browser_login(viewer, system, "alice")
    open_tools(viewer, system, "data/raw_nxtomo.nxs")  # no path: the file's NeXus default plot
    assert viewer.input_value("input[aria-label='Index: rotation_angle']") == "7"
    assert "frames 0 to 6 are darks and flats" in viewer.inner_text("[role=status]")
    assert hash_params(viewer)["slice"] == "7" and hash_params(viewer)["path"].endswith("/data")


def test_tuned_results_are_chosen_by_value(system, viewer):
    out = system.folders("alice")["output"] / "tuned"
    out.mkdir(exist_ok=True)
    shape = (24, 3, 24, 2, 2)  # x, slices, z, then one dimension per tuned parameter
    axes = [("x", "pixels", np.arange(24)), ("y", "pixels", np.arange(3)), ("z", "pixels", np.arange(24)),
            tuning_axis("centre_of_rotation", [85.0, 85.5]), tuning_axis("algorithm", ["FBP", "SIRT"])]
    f, dataset = create_output(out / "recon_p3_astra.h5", 3, "AstraReconCpu", "tomo", shape, axes, kind="volume")
    with f:
        values = np.zeros(shape, dtype=np.float32)
        values[..., 1, 1] = np.outer(np.arange(24), np.ones(24))[:, None, :]  # only COR 85.5 with SIRT has signal
        dataset[...] = values
    group = "/3-AstraReconCpu-tomo"
    browser_login(viewer, system, "alice")
    open_tools(viewer, system, "output/tuned/recon_p3_astra.h5", f"{group}/data")
    assert viewer.inner_text("[data-testid=slice-label]") == "centre_of_rotation 85, algorithm FBP"
    viewer.select_option("select[aria-label='Slice: centre_of_rotation']", label="centre_of_rotation 85.5")
    viewer.select_option("select[aria-label='Slice: algorithm']", label="algorithm SIRT")
    viewer.wait_for_function("document.querySelector('[data-testid=slice-label]').innerText "
                             "=== 'centre_of_rotation 85.5, algorithm SIRT'")
    viewer.wait_for_function("document.querySelector('[data-testid=histogram]')?.getAttribute('aria-label').includes('to 23')")
    assert hash_params(viewer)["slice"] == "1,1,1"  # the middle slice, COR 85.5, SIRT


def test_after_a_step_the_histogram_is_asked_for_once_the_new_slice_is_in(system, viewer):
    """The histogram reads the whole slice at full resolution: asked for beside the stepped-to slice, it
    would share the session's cores with the image the person is waiting for."""
    data = system.folders("alice")["data"]
    with h5py.File(data / "steps.h5", "w") as f:
        f["stack"] = np.arange(4 * 64 * 64, dtype=np.float32).reshape(4, 64, 64)
    browser_login(viewer, system, "alice")
    open_tools(viewer, system, "data/steps.h5", "/stack")
    viewer.locator("[data-testid=histogram]").wait_for()
    events: list[tuple[str, str]] = []
    of_slice_2 = lambda url: "selection=2%2C%3A%2C%3A" in url  # noqa: E731 - selection=2,:,: as the page sends it
    viewer.on("request", lambda r: events.append(("asked", r.url)) if of_slice_2(r.url) else None)
    viewer.on("requestfinished", lambda r: events.append(("in", r.url)) if of_slice_2(r.url) else None)
    viewer.fill("input[aria-label='Index: dim 0']", "2")
    stats = viewer.locator("[data-testid=histogram]")
    viewer.wait_for_function("document.querySelector('[data-testid=histogram]').getAttribute('aria-label')"
                             f".includes('from {2 * 4096:g} to')")
    assert f"from {2 * 4096:g} to {3 * 4096 - 1:g}" in stats.get_attribute("aria-label")
    order = [(what, "stats" if "/data/stats?" in url else "slice") for what, url in events
             if "/data/stats?" in url or "/data/data?" in url]
    assert order.index(("in", "slice")) < order.index(("asked", "stats")), order


def test_the_address_keeps_file_dataset_slice_and_colour_map(system, viewer):
    data = system.folders("alice")["data"]
    with h5py.File(data / "stack.h5", "w") as f:
        f["entry/stack"] = np.arange(5 * 32 * 32, dtype=np.float32).reshape(5, 32, 32)
    browser_login(viewer, system, "alice")
    open_tools(viewer, system, "data/stack.h5", "/entry/stack")
    viewer.fill("input[aria-label='Index: dim 0']", "3")
    viewer.select_option("select[aria-label='Colour map']", "Inferno")
    viewer.wait_for_function("location.hash.includes('slice=3') && location.hash.includes('cmap=Inferno')")
    kept = hash_params(viewer)
    assert kept["file"] == "data/stack.h5" and kept["path"] == "/entry/stack" and kept["view"] == "tools"
    viewer.reload()
    viewer.wait_for_selector("[data-testid=image][data-bin]")
    assert viewer.input_value("input[aria-label='Index: dim 0']") == "3"
    assert viewer.input_value("select[aria-label='Colour map']") == "Inferno"
    stats = viewer.locator("[data-testid=histogram]").get_attribute("aria-label")
    assert f"from {3 * 1024:g} to {4 * 1024 - 1:g}" in stats, stats  # the histogram is slice 3's


def test_explore_keeps_the_dataset_in_the_address_and_the_tools_open_it(system, viewer):
    data = system.folders("alice")["data"]
    with h5py.File(data / "explore.h5", "w") as f:
        f["entry/small"] = np.zeros(4, dtype=np.float32)
        f["entry/stack"] = np.random.default_rng(1).random((4, 48, 64), dtype=np.float32)
    browser_login(viewer, system, "alice")
    viewer.goto(f"{system.url}/#/viewer?file=data/explore.h5")
    viewer.wait_for_selector("[data-testid=h5web] [role=tab]:has-text('Heatmap')", timeout=60_000)
    viewer.wait_for_function("location.hash.includes('path=%2Fentry%2Fstack')")  # h5web's slice, in the address
    viewer.click("nav[aria-label=Views] >> text=Image tools")
    viewer.wait_for_selector("[data-testid=image][data-bin]", timeout=30_000)
    assert viewer.inner_text(".vt-path") == "/entry/stack"
    viewer.reload()  # Explore again from the address: h5web opens on the same dataset
    viewer.click("nav[aria-label=Views] >> text=Explore")
    viewer.wait_for_selector("[data-testid=h5web] [role=tab]:has-text('Heatmap')", timeout=60_000)
    selected = viewer.locator("[data-testid=h5web] [role=treeitem][aria-selected=true]")
    assert selected.get_attribute("data-path") == "/entry/stack"
