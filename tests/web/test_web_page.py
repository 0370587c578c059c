"""The web page in a real browser (Debian's chromium, headless, driven by Selenium) against a
real daemon running tiny-random: the queue, live progress and previews, cancel, the result
playing, a prompt holding markup shown as text. Saves the screenshots in docs/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from daemon_helpers import client_for, running_daemon
from web_helpers import link_path

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the dev extra)")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

DOCS = Path(__file__).resolve().parents[2] / "docs"
# Enough steps that progress and a preview (every 5 steps) show before the job ends.
SLOW = {"model": "tiny-random", "steps": 40, "seed": 5}
HOSTILE = '<script>window.injected = 1</script><img src=x onerror="window.injected = 2"> a fox'
WINDOW = (1000, 700)


@pytest.fixture()
def browser():
    """Headless chromium, or a skip that says why there is none."""
    missing = os.environ.get("MOTIONCLONE_NO_BROWSER")
    driver_path, chromium = shutil.which("chromedriver"), shutil.which("chromium")
    if missing or not (driver_path and chromium):
        pytest.skip(
            f"no chromium and chromedriver here ({missing or 'not on PATH'}): scripts/browser_env.sh installs them"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(flag)
    options.add_argument(f"--window-size={WINDOW[0]},{WINDOW[1]}")
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    yield driver
    driver.quit()


def wait(driver, condition, timeout: float = 60.0):
    """Polls `condition` until it is truthy. The page redraws its queue and job view on every poll
    of the daemon, so an element found a moment ago can be gone by the time it is read: that try
    is simply repeated."""
    return WebDriverWait(
        driver, timeout, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,)
    ).until(lambda _: condition())


def settled(driver, action):
    """What `action` (a read or a click) returns once it ran on an element the page did not redraw
    under it."""
    return wait(driver, lambda: (action(),), timeout=10.0)[0]


def row_state(driver, job_id: str) -> str:
    rows = driver.find_elements(By.ID, f"job-{job_id}")
    return rows[0].get_attribute("data-state") if rows else ""


def progress_of(driver, job_id: str) -> float:
    return driver.execute_script(
        f"const bar = document.querySelector('#job-{job_id} progress'); return bar ? bar.value : 0;"
    )


def test_queue_progress_preview_cancel_and_result_in_a_browser(browser, tmp_path, clip_files, shared_engine):
    with running_daemon(tmp_path, engine=shared_engine) as daemon, client_for(daemon) as client:
        first = client.submit(clip_files["right"], {**SLOW, "prompt": HOSTILE})
        second = client.submit(clip_files["down"], {**SLOW, "prompt": "a red kite over the dunes"})
        root = f"http://127.0.0.1:{daemon.web.port}"
        DOCS.mkdir(exist_ok=True)
        browser.get(root + link_path(daemon))
        wait(browser, lambda: row_state(browser, first.id) and row_state(browser, second.id))
        # The first job's progress bar moves, then its page shows a live preview.
        wait(browser, lambda: progress_of(browser, first.id) > 0)
        seen = progress_of(browser, first.id)
        wait(browser, lambda: progress_of(browser, first.id) > seen)
        assert row_state(browser, second.id) == "queued"
        prompt = settled(browser, lambda: browser.find_element(By.CSS_SELECTOR, f"#job-{first.id} td.prompt").text)
        assert prompt == HOSTILE and browser.execute_script("return window.injected") is None
        browser.save_screenshot(str(DOCS / "web-queue.png"))
        settled(browser, lambda: browser.find_element(By.CSS_SELECTOR, f"#job-{first.id} td.prompt a").click())
        wait(
            browser,
            lambda: browser.execute_script(
                "const p = document.getElementById('preview'); return p && p.complete && p.naturalWidth > 0;"
            ),
        )
        assert settled(browser, lambda: browser.find_element(By.CSS_SELECTOR, "h2.prompt").text) == HOSTILE
        assert not browser.find_elements(By.CSS_SELECTOR, "#view script, #view img[src='x']")
        settled(browser, lambda: browser.find_element(By.ID, "cancel").click())
        wait(browser, lambda: browser.find_element(By.ID, "state").text == "cancelled")
        assert client.get(first.id).state == "cancelled"
        # The other job runs next; its page plays the result beside the reference.
        browser.get(f"{root}/#/job/{second.id}")
        wait(browser, lambda: browser.find_elements(By.ID, "result"), timeout=120)
        duration = "const v = document.getElementById('result'); return v.readyState >= 1 ? v.duration : 0;"
        assert wait(browser, lambda: browser.execute_script(duration)) > 0
        reference = settled(browser, lambda: browser.find_element(By.ID, "reference").get_attribute("src"))
        assert reference.endswith(f"/api/jobs/{second.id}/reference")
        browser.save_screenshot(str(DOCS / "web-job.png"))
