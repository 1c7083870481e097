"""End to end in headless Chromium: `emovox serve`, the web page, a fake microphone, a dropped file.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package: the tests skip
without them, except on CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import tone

SR = 16000
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def require_chromium() -> None:
    missing = [n for n, p in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if not p]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium")
    if not missing:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{', '.join(missing)} required on CI but not installed")
    pytest.skip(f"{', '.join(missing)} not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server_url(trained_bundle: Path):
    """`emovox serve` with the tiny trained model, on a free loopback port."""
    require_chromium()
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emovox",
            "serve",
            "--model",
            str(trained_bundle),
            "--port",
            str(port),
            "--vad",
            "energy",
        ],  # the test's voices are synthetic
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                out = proc.stdout.read().decode() if proc.poll() is not None else ""
                pytest.fail(f"emovox serve did not start: {out}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def speechlike_wav(path: Path, seconds_each: float = 1.0, n: int = 3, gap: float = 0.5) -> Path:
    parts = [np.zeros(round(gap * SR), np.float32)]
    for k in range(n):
        parts += [tone(seconds_each, SR, 200.0 + 70 * (k % 4)), np.zeros(round(gap * SR))]
    sf.write(str(path), np.concatenate(parts), SR, subtype="PCM_16")
    return path


def make_driver(tmp_path: Path, fake_audio: Path | None = None):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1000,900",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        "--autoplay-policy=no-user-gesture-required",
    ):
        opts.add_argument(arg)
    if fake_audio is not None:
        opts.add_argument(f"--use-file-for-fake-audio-capture={fake_audio}")
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)


def wait_for_prediction(driver, timeout: float = 30.0) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        lambda d: d.find_element(By.ID, "status").text.startswith(("Done", "Error"))
    )
    status = driver.find_element(By.ID, "status").text
    assert status.startswith("Done"), status
    WebDriverWait(driver, 5).until(ec.visibility_of_element_located((By.ID, "label")))
    return driver.find_element(By.ID, "label").text


LABELS = ["neutral", "happy", "sad", "angry"]


def screenshot_dir(tmp_path: Path) -> Path:
    """Where screenshots go: ``$EMOVOX_SCREENSHOTS`` (to look at them) or the test's tmp dir."""
    out = Path(os.environ.get("EMOVOX_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def test_record_from_the_fake_microphone(server_url, tmp_path):
    from selenium.webdriver.common.by import By

    wav = speechlike_wav(tmp_path / "mic.wav")
    driver = make_driver(tmp_path, fake_audio=wav)
    try:
        driver.get(server_url + "/")
        assert "emovox" in driver.title
        driver.find_element(By.ID, "record").click()
        time.sleep(2.5)
        assert "Recording" in driver.find_element(By.ID, "status").text
        driver.find_element(By.ID, "stop").click()
        label = wait_for_prediction(driver)
        assert label.lower() in LABELS
        rows = driver.find_elements(By.CSS_SELECTOR, "#bars .row")
        assert sorted(r.get_attribute("data-label") for r in rows) == sorted(LABELS)
        meta = driver.find_element(By.ID, "meta").text
        seconds = float(meta.split(" s of audio")[0])
        assert 1.5 <= seconds <= 5.0, meta
        driver.save_screenshot(str(screenshot_dir(tmp_path) / "record.png"))
    finally:
        driver.quit()


DROP_JS = """
const input = document.createElement('input');
input.type = 'file'; input.id = 'test-drop-input'; document.body.appendChild(input);
input.addEventListener('change', () => {
  const dt = new DataTransfer(); dt.items.add(input.files[0]);
  const drop = document.getElementById('drop');
  for (const t of ['dragenter', 'dragover', 'drop'])
    drop.dispatchEvent(new DragEvent(t, {dataTransfer: dt, bubbles: true, cancelable: true}));
});
"""


def test_drop_a_long_file_shows_the_timeline(server_url, tmp_path):
    from selenium.webdriver.common.by import By

    wav = speechlike_wav(tmp_path / "long.wav", seconds_each=2.0, n=7, gap=0.6)  # 18.6 s
    driver = make_driver(tmp_path)
    try:
        driver.get(server_url + "/")
        driver.execute_script(DROP_JS)
        driver.find_element(By.ID, "test-drop-input").send_keys(str(wav))
        label = wait_for_prediction(driver)
        assert label.lower() in LABELS
        assert "long.wav" in driver.find_element(By.ID, "status").text
        assert driver.find_element(By.ID, "timeline-card").is_displayed()
        segs = driver.find_elements(By.CSS_SELECTOR, "#timeline .seg")
        assert len(segs) == 7
        ticks = [t.text for t in driver.find_elements(By.CSS_SELECTOR, "#timeline-ticks .tick")]
        assert ticks[0] == "0 s" and len(ticks) >= 4, ticks  # the page's timeline has time ticks
        from emovox.colours import label_colours

        colours = label_colours(LABELS)  # the same colours as the PNG timeline
        for seg in segs:
            label = seg.get_attribute("title").rsplit(": ", 1)[1]
            rgb = seg.value_of_css_property("background-color")
            hexed = colours[label].lstrip("#")
            want = tuple(int(hexed[i : i + 2], 16) for i in (0, 2, 4))
            assert tuple(int(v) for v in rgb[rgb.index("(") + 1 : -1].split(",")[:3]) == want
        assert len(driver.find_elements(By.CSS_SELECTOR, "#bars .row")) == 4
        driver.save_screenshot(str(screenshot_dir(tmp_path) / "drop.png"))
    finally:
        driver.quit()


def test_dropping_a_text_file_shows_the_error(server_url, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    bad = tmp_path / "notes.txt"
    bad.write_text("not audio at all\n")
    driver = make_driver(tmp_path)
    try:
        driver.get(server_url + "/")
        driver.execute_script(DROP_JS)
        driver.find_element(By.ID, "test-drop-input").send_keys(str(bad))
        WebDriverWait(driver, 20).until(
            lambda d: d.find_element(By.ID, "status").text.startswith("Error")
        )
        assert "415" in driver.find_element(By.ID, "status").text
        assert "not an audio file" in driver.find_element(By.ID, "status").text
    finally:
        driver.quit()
