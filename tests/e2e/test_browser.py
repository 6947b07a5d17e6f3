"""A scientist in a real browser: logs in, sees their workspace's four areas, browses, logs out."""
import pytest
from conftest import browser_login

pytestmark = pytest.mark.browser


def test_login_shows_the_four_areas_and_the_users_name(system, page):
    page.goto(f"{system.url}/")
    assert page.url.startswith(f"{system.url}/gateway/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert "Wrong user name or password" in page.inner_text("[role=alert]")

    browser_login(page, system, "alice")
    nav = page.locator("nav[aria-label=Areas] a")
    assert nav.all_inner_texts() == ["Files", "Process lists", "Viewer", "Jobs"]
    assert page.inner_text("[data-testid=user-name]") == "alice"


def test_files_area_browses_into_folders_and_opens_the_viewer(system, page):
    data = system.folders("alice")["data"]
    (data / "beamtime" / "scan-1").mkdir(parents=True, exist_ok=True)
    from make_sample_data import write_nxtomo
    write_nxtomo(data / "beamtime" / "scan-1" / "tomo.nxs", angles=10, rows=2, columns=16)
    browser_login(page, system, "alice")
    page.click("text=beamtime")
    page.click("text=scan-1")
    page.wait_for_selector("text=tomo.nxs")
    assert "beamtime" in page.inner_text("nav[aria-label=Folder]")
    page.click("text=tomo.nxs")
    page.wait_for_url("**#/viewer?*")
    page.wait_for_selector("text=entry1")


def test_other_areas_render_and_logout_returns_to_login(system, page):
    browser_login(page, system, "bob")
    page.click("nav[aria-label=Areas] >> text=Process lists")
    page.wait_for_selector("text=NxtomoLoader")
    page.click("nav[aria-label=Areas] >> text=Jobs")
    page.wait_for_selector("h1:has-text('Jobs')")
    page.click("button:has-text('Log out')")
    page.wait_for_url("**/gateway/login*")
    page.goto(f"{system.url}/")
    assert "/gateway/login" in page.url
