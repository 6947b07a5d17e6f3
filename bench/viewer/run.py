"""bench/viewer: time to the first image of a 2048x2048 float32 frame in Chromium, binned to the canvas
(the image tools' default, ``size=``) against the full-resolution frame (``res=full``), in one run.

Starts the real system on loopback the way the tests do (scripts/local_system.py: configuration, one
account, the gateway, the user's session with nginx and the dataserver), writes a stack of 2048x2048
float32 frames into the user's data root, logs in with Debian's Chromium (playwright), then loads the
Viewer's image tools afresh for each run, alternating the two ways and giving each run a frame of its
own (so no answer comes from a cache), after one warm-up of each. Two figures per run, from the page:
- since the tools opened: the slice's requests, decoding and drawing (what the binning changes);
- since the navigation: the same plus loading the app and its viewer chunk.
After each load, one step to another frame in the open tools (typing its index), timed from the input
event to the new frame drawn on the canvas: the warm case, what a person stepping through a stack waits.
The figure to read is the ratio full / binned, measured in the same run on the same machine; absolute
times vary with what else the machine is doing.

    .venv/bin/python bench/viewer/run.py [--runs 9] [--frames 50]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests"))
import local_system  # noqa: E402
from conftest import CHROMIUM, CHROMIUM_FLAGS  # noqa: E402

USER, PASSWORD = "viewer-bench", "viewer-bench-password"
TRACE = """performance.getEntriesByType('resource').filter(e => e.name.includes('/data/') || e.name.includes('/assets/'))
    .map(e => [e.name.replace(location.origin, '').slice(0, 110), e.startTime, e.responseEnd, e.transferSize])"""
SIZE = 2048


# Every drawing of a slice onto the image canvas, and the last input event: how a step to another slice
# is timed, from the person's change of the index to the new slice on the canvas.
DRAWS = """window.__hebiDraws = [];
const draw = CanvasRenderingContext2D.prototype.drawImage;
CanvasRenderingContext2D.prototype.drawImage = function (...args) {
  const result = draw.apply(this, args);
  if (this.canvas.dataset.testid === 'image') window.__hebiDraws.push(performance.now());
  return result;
};
document.addEventListener('input', () => { window.__hebiInputAt = performance.now(); }, true);"""
SLICE_DONE = """(frame) => performance.getEntriesByType('resource')
    .filter(e => e.name.includes('/data/data?') && decodeURIComponent(e.name).includes(`selection=${frame},:,:`))
    .map(e => e.responseEnd)"""
STATS_DONE = """(frame) => performance.getEntriesByType('resource')
    .some(e => e.name.includes('/data/stats?') && decodeURIComponent(e.name).includes(`selection=${frame},:,:`))"""


def settled(page, frame: int) -> None:
    """Wait until the histogram of the frame shown is in and drawn: the tools ask for it after the image,
    and the next timing must neither begin while the server still computes it nor count its redrawing."""
    page.wait_for_function(STATS_DONE, arg=frame, timeout=120_000)
    page.evaluate("""() => new Promise((done) => {
        let seen = window.__hebiDraws.length;
        const check = () => {
            if (window.__hebiDraws.length === seen) done();
            else { seen = window.__hebiDraws.length; setTimeout(check, 100); }
        };
        setTimeout(check, 100);
    })""")


def step(page, shown: int, frame: int) -> float:
    """ms from typing another frame's index into the open tools (showing ``shown``) to that frame drawn."""
    settled(page, shown)
    drawn = page.evaluate("window.__hebiDraws.length")
    page.fill("input.vt-index", str(frame))
    page.wait_for_function(f"window.__hebiDraws.length > {drawn}", timeout=120_000)
    at, typed = page.evaluate(f"[window.__hebiDraws[{drawn}], window.__hebiInputAt]")
    answered = page.evaluate(SLICE_DONE, frame)
    # The drawing timed must be of the new frame: its answer came before it.
    assert answered and min(answered) <= at, f"frame {frame}: drawn at {at:.0f} ms before its slice came ({answered})"
    settled(page, frame)
    return at - typed


def first_image(page, url: str, frame: int, full: bool) -> tuple[float, float, str]:
    """(ms since the tools opened, ms since navigation, the binning) of one fresh load."""
    page.goto("about:blank")
    page.goto(f"{url}/#/viewer?file=data/frames.h5&path=/frames&view=tools&slice={frame}{'&res=full' if full else ''}")
    page.wait_for_function("window.__hebiFirstImage !== undefined", timeout=120_000)
    since_open, since_navigation = page.evaluate("[window.__hebiFirstImage, window.__hebiFirstImageAt]")
    return since_open, since_navigation, page.get_attribute("[data-testid=image]", "data-bin")


def client_times(url: str, cookies: dict[str, str], frames) -> dict[bool, float]:
    """Median ms of the binned and the full-resolution answer to Python's http.client, 5 frames each."""
    import http.client
    from urllib.parse import urlsplit
    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=120)
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(5):
        for full in (False, True):
            query = (f"/data/data?file=data/frames.h5&path=/frames&selection={next(frames)},:,:&format=bin&dtype=safe"
                     + ("" if full else "&size=640x640"))
            start = time.perf_counter()
            connection.request("GET", query, headers=headers)
            answer = connection.getresponse()
            body = answer.read()
            times[full].append((time.perf_counter() - start) * 1000)
            assert answer.status == 200 and len(body) == (SIZE * SIZE * 4 if full else 512 * 512 * 4), answer.status
    return {full: statistics.median(found) for full, found in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--trace", action="store_true", help="print the /data/ requests of the last load of each way")
    args = parser.parse_args()
    if args.frames < 4 * (args.runs + 1) + 10:
        parser.error("--frames must be at least 4 x (runs + 1) + 10: every load, step and plain read gets a frame of its own")
    from playwright.sync_api import sync_playwright

    base = Path(tempfile.mkdtemp(prefix="hebi-bv-", dir="/tmp"))
    try:
        config_path = local_system.write_config(base, nginx="required")
        local_system.add_user(config_path, USER, PASSWORD)
        data = local_system.user_folders(config_path, USER)["data"]
        rng = np.random.default_rng(0)
        with h5py.File(data / "frames.h5", "w") as f:
            stack = f.create_dataset("frames", (args.frames, SIZE, SIZE), dtype="f4", chunks=(1, SIZE, SIZE))
            for i in range(args.frames):
                stack[i] = rng.random((SIZE, SIZE), dtype=np.float32)
        (data / "frames.h5").read_bytes()  # in the page cache: the warm case
        gateway = local_system.Gateway(config_path)
        try:
            url = gateway.url.rstrip("/")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
                page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                page.add_init_script(DRAWS)
                page.goto(f"{url}/")
                page.fill("input[name=username]", USER)
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_selector(f"[data-testid=user-name]:has-text('{USER}')")
                frames = iter(range(args.frames))
                for full in (False, True):  # warm-up: the session, the chunks, the file
                    opened = next(frames)
                    first_image(page, url, opened, full)
                    step(page, opened, next(frames))
                results: dict[bool, list[tuple[float, float, str]]] = {False: [], True: []}
                steps: dict[bool, list[float]] = {False: [], True: []}
                for _ in range(args.runs):
                    for full in (False, True):
                        opened = next(frames)
                        results[full].append(first_image(page, url, opened, full))
                        steps[full].append(step(page, opened, next(frames)))
                        if args.trace and _ == args.runs - 1:
                            print("full resolution" if full else "binned", "first image at", f"{results[full][-1][1]:.0f} ms,",
                                  f"the tools opened at {results[full][-1][1] - results[full][-1][0]:.0f} ms")
                            for name, start, end, size in page.evaluate(TRACE):
                                print(f"  {start:7.0f} -> {end:7.0f} ms  {size:>9} B  {name}")
                cookies = {c["name"]: c["value"] for c in page.context.cookies()}
                browser.close()
                # The same answers to a plain HTTP client, one after another on an idle machine: what the
                # system takes to make and send them, without a browser's share.
                plain = client_times(url, cookies, iter(frames))
        finally:
            gateway.stop()
            local_system.stop_all_sessions(config_path)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    def median(full: bool, index: int) -> float:
        return statistics.median(r[index] for r in results[full])

    print(f"First image of a {SIZE}x{SIZE} float32 frame in Chromium, median of {args.runs} fresh loads each")
    print(f"{'':34}{'since the tools opened':>24}{'since navigation':>20}")
    for full, name in ((False, f"binned to the canvas (bin {results[False][0][2]})"), (True, "full resolution")):
        print(f"{name:34}{median(full, 0):>21.0f} ms{median(full, 1):>17.0f} ms")
    print(f"{'ratio full / binned':34}{median(True, 0) / median(False, 0):>22.1f}x{median(True, 1) / median(False, 1):>18.1f}x")
    binned, full_ = statistics.median(steps[False]), statistics.median(steps[True])
    print(f"\nA step to another frame in the open tools (typed index to the new frame drawn), median of {args.runs}")
    print(f"{'binned to the canvas':34}{binned:>21.0f} ms\n{'full resolution':34}{full_:>21.0f} ms")
    print(f"{'ratio full / binned':34}{full_ / binned:>22.1f}x")
    print("\nThe same answers to a plain HTTP client (Python's http.client), median of 5 each")
    print(f"{'binned to the canvas':34}{plain[False]:>21.1f} ms\n{'full resolution':34}{plain[True]:>21.1f} ms")


if __name__ == "__main__":
    main()
