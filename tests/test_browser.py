"""The web page in a real headless Chromium (Debian's `chromium` + `chromium-driver`, driven by
Selenium): paste a spun article, see its spans with their originals above them, open a span's
details with the keyboard, switch to the restored text, upload a file, trace a copy against a
small index and see the alignment, and read /docs offline.

Screenshots at 1280 px and 375 px go to ./test-artifacts (or $UNSPIN_TEST_ARTIFACTS); they are not
committed. The whole module is skipped, saying why, when chromium, chromedriver or selenium is
missing; the seed article test is skipped when ../shared/data is not beside the checkout (its
text is read there at run time, never copied into the repository).
"""
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("browser tests need Debian's chromium and chromium-driver (apt-get install chromium chromium-driver;"
                " .ci/run installs them)", allow_module_level=True)
selenium = pytest.importorskip("selenium", reason="browser tests need selenium (pip install -e '.[test]')")
pytest.importorskip("uvicorn", reason="browser tests need the serve extra (pip install -e '.[serve]')")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

import uvicorn  # noqa: E402

from unspin.detect import Engine  # noqa: E402
from unspin.index import Index  # noqa: E402
from unspin.serve import create_app  # noqa: E402

SEEDS = ROOT.parent / "shared" / "data" / "dev" / "seeds"
ARTIFACTS = Path(os.environ.get("UNSPIN_TEST_ARTIFACTS", ROOT / "test-artifacts"))
# A paragraph written for this test, and a copy spun by hand with thesaurus swaps.
ORIGINAL = ("The town council said on Tuesday that it would buy a large field near the river to build a new school. "
            "The mayor said the plan would cost more than expected but would help families who now drive their "
            "children to the city every morning. "
            "Work will begin next spring, and the council expects the school to open its doors to four hundred "
            "pupils within two years.")
COPY = ("The town council stated on Tuesday that it would purchase a big field near the river to build a new school. "
        "The mayor declared the scheme would price extra than expected but would assist families who now drive "
        "their children to the metropolis every morning. Work will commence next spring, and the council expects the school to open its doors to four "
        "hundred pupils within two years.")
UNRELATED = ("A good loaf of bread needs only flour, water, salt and yeast, and a baker who waits while the dough "
             "rises slowly in a warm kitchen.")
WAIT_S = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app on a loopback port (shipped models, a two-document index), in a thread."""
    engine = Engine.load(time_budget_s=60)
    index_path = tmp_path_factory.mktemp("browser-index") / "refs.sqlite"
    with Index(index_path, channel=engine.channel) as idx:
        idx.add([{"id": "council-school", "text": ORIGINAL}, {"id": "bread", "text": UNRELATED}])
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(engine, index=index_path), host="127.0.0.1", port=port,
                                        log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    srv.should_exit = True
    thread.join(WAIT_S)


@pytest.fixture(scope="module")
def browser():
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never try to download anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                "--window-size=1280,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()


def _screenshot(driver, name: str, width: int) -> Path:
    """A full-page screenshot at `width` px (the window grown to the page's height)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.set_window_size(width, 900)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(max(height, 900), 8000))
    driver.execute_script("window.scrollTo(0, 0)")
    path = ARTIFACTS / f"{name}-{width}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(width, 900)
    return path


def _check_text(driver, url: str, text: str, width: int = 1280):
    driver.set_window_size(width, 900)
    driver.get(url)
    box = driver.find_element(By.ID, "us-text")
    # typing 3,000 characters key by key is slow; setting the value is what a paste does
    driver.execute_script("arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'));",
                          box, text)
    driver.find_element(By.ID, "us-check").click()
    return WebDriverWait(driver, WAIT_S).until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".us-report")))


def _press(driver, key) -> None:
    """A key press on whatever has the focus (as a person types; a file input never gets keys as a path)."""
    ActionChains(driver).send_keys(key).perform()


def _no_horizontal_scroll(driver) -> bool:
    return driver.execute_script(
        "return document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1")


def _seed_text() -> str:
    seeds = sorted(SEEDS.glob("*thesaurus*.txt")) or sorted(SEEDS.glob("*.txt"))
    if not seeds:
        pytest.skip(f"no spun seed article in {SEEDS} (the shared data is not beside this checkout)")
    return seeds[0].read_text(encoding="utf-8")


def test_pasted_seed_shows_spans_with_visible_originals(server, browser):
    report = _check_text(browser, server, _seed_text())
    originals = [o for o in report.find_elements(By.CSS_SELECTOR, ".us-span .us-orig") if o.is_displayed()]
    assert originals and all(o.text.strip() for o in originals)
    assert report.find_element(By.CSS_SELECTOR, ".us-legend").is_displayed()
    assert report.find_element(By.CSS_SELECTOR, ".us-verdict-label").text.strip()
    assert report.find_element(By.CSS_SELECTOR, "[role=meter]").is_displayed()
    unknown = report.find_elements(By.CSS_SELECTOR, ".us-span.us-unknown")
    assert all(not u.find_elements(By.CSS_SELECTOR, ".us-orig") for u in unknown)  # no guess shown as original
    _screenshot(browser, "seed-marked", 1280)
    browser.set_window_size(375, 900)
    assert _no_horizontal_scroll(browser)
    _screenshot(browser, "seed-marked", 375)


def test_keyboard_opens_a_span_and_switches_to_the_restored_text(server, browser):
    report = _check_text(browser, server, COPY, width=375)
    # from the Check button, Tab moves through the report: the selected tab, then the spans
    browser.execute_script("document.getElementById('us-check').focus()")
    active = None
    for _ in range(10):
        _press(browser, Keys.TAB)
        active = browser.switch_to.active_element
        if "us-span" in (active.get_attribute("class") or ""):
            break
    assert "us-span" in active.get_attribute("class"), "no span reached with the Tab key"
    tip = active.find_element(By.CSS_SELECTOR, ".us-tip")
    assert tip.is_displayed() and tip.text.strip()
    left, right, width = browser.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return [r.left, r.right, document.documentElement.clientWidth];",
        tip)
    assert 0 <= left and right <= width, (left, right, width)  # the details stay inside a 375 px screen
    active.send_keys(Keys.ENTER)
    assert active.get_attribute("aria-expanded") == "true"
    _screenshot(browser, "span-details", 375)

    marked_tab = report.find_element(By.ID, "us-tab-marked")
    marked_tab.send_keys(Keys.ARROW_RIGHT)  # tabs: arrow keys move between them
    restored_tab = report.find_element(By.ID, "us-tab-restored")
    assert restored_tab.get_attribute("aria-selected") == "true"
    assert browser.switch_to.active_element == restored_tab
    panel = report.find_element(By.ID, "us-panel-restored")
    assert panel.is_displayed() and not report.find_element(By.ID, "us-panel-marked").is_displayed()
    changed = [c for c in panel.find_elements(By.CSS_SELECTOR, "ins.us-changed") if c.is_displayed()]
    assert changed, "no restored word highlighted"
    _screenshot(browser, "restored", 375)

    restored_tab.send_keys(Keys.ARROW_RIGHT)
    table = report.find_element(By.ID, "us-panel-changes")
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert table.is_displayed() and rows
    _screenshot(browser, "changes", 1280)

    # the downloads: catch the file the page hands the browser instead of saving it
    browser.execute_script("window.usBlobs = []; URL.createObjectURL = b => { window.usBlobs.push(b); return 'x'; };"
                           "HTMLAnchorElement.prototype.click = function () {};")
    table.find_element(By.CSS_SELECTOR, ".us-download[data-format=csv]").click()
    table.find_element(By.CSS_SELECTOR, ".us-download[data-format=json]").click()
    csv_text, json_text = browser.execute_async_script(
        "const done = arguments[0]; Promise.all(window.usBlobs.map(b => b.text())).then(done);")
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("start,end,observed,proposed_original,confidence") and len(lines) == len(rows) + 1
    # The JSON is the whole result: the table's spans, and the weak guesses it leaves out as not suspect.
    assert sum(span["suspect"] for span in json.loads(json_text)["spans"]) == len(rows)
    table.find_element(By.CSS_SELECTOR, ".us-copy").click()
    status = table.find_element(By.CSS_SELECTOR, ".us-status")
    WebDriverWait(browser, WAIT_S).until(lambda _d: status.text.strip())
    assert status.text in ("Copied.", "Copy failed: use a download.")


def test_trace_shows_the_source_and_its_alignment(server, browser):
    report = _check_text(browser, server, COPY)
    sources = report.find_element(By.CSS_SELECTOR, ".us-sources")
    assert "council-school" in sources.text and "coverage" in sources.text and "bread" not in sources.text
    frame = sources.find_element(By.CSS_SELECTOR, "iframe.us-alignment")
    browser.execute_script("arguments[0].scrollIntoView()", frame)
    _screenshot(browser, "trace", 1280)
    browser.switch_to.frame(frame)
    try:
        replaced = browser.find_elements(By.CSS_SELECTOR, ".sub_channel")
        assert any(r.text.strip() == "purchase" for r in replaced), [r.text for r in replaced]
    finally:
        browser.switch_to.default_content()


def test_an_uploaded_html_file_is_checked(server, browser, tmp_path):
    page = tmp_path / "copy.html"
    page.write_text(f"<!doctype html><html><body><nav>Home</nav><article><p>{COPY}</p></article></body></html>",
                    encoding="utf-8")
    browser.set_window_size(1280, 900)
    browser.get(server)
    browser.find_element(By.ID, "us-file").send_keys(str(page))
    browser.find_element(By.ID, "us-check").click()
    report = WebDriverWait(browser, WAIT_S).until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".us-report")))
    assert "copy.html" in report.find_element(By.CSS_SELECTOR, ".us-source").text
    assert "purchase" in report.find_element(By.ID, "us-panel-marked").text


def test_an_error_is_shown_clearly(server, browser):
    browser.set_window_size(375, 900)
    browser.get(server)
    browser.find_element(By.ID, "us-text").send_keys(
        "Der Minister sagte am Montag, dass der neue Plan für die Schule viel mehr kosten würde als erwartet, "
        "und die Eltern waren darüber nicht glücklich.")
    for _ in range(6):  # the keyboard alone: Tab to the Check button, then Enter
        _press(browser, Keys.TAB)
        if browser.switch_to.active_element.get_attribute("id") == "us-check":
            break
    assert browser.switch_to.active_element.get_attribute("id") == "us-check"
    _press(browser, Keys.ENTER)
    error = WebDriverWait(browser, WAIT_S).until(EC.visibility_of_element_located((By.ID, "us-error")))
    assert "Not English" in error.text


def test_docs_render_offline(server, browser):
    browser.set_window_size(1280, 900)
    browser.get(server + "docs")
    ops = WebDriverWait(browser, WAIT_S).until(
        EC.presence_of_all_elements_located((By.CSS_SELECTOR, ".swagger-ui .opblock")))
    assert any("/v1/check" in o.text for o in ops)
    _screenshot(browser, "docs", 1280)
