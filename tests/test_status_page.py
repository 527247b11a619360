"""The status page (rwsgi-express --status-url, the WSGIStatusPage
directive; docs/status.md) in a real browser: headless Chromium (Debian's
chromium and chromium-driver, driven by selenium) loads the page from a
running daemon-mode server while the test sends requests, and the numbers
the page renders must be those of the requests sent: the group's request
count and status classes, the slow request on its busy thread, the error
with its RWSGI id. The JSON beside the page is checked too. A screenshot is
saved in the test's workspace (its path is printed)."""

import shutil
import threading
from pathlib import Path

import pytest
import requests

from conftest import wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def app_dir(ws):
    d = ws.new_dir("observe")
    shutil.copy(ws.apps / "observe" / "app.wsgi", d / "app.wsgi")
    (d / "app.wsgi").chmod(0o644)
    return d


@pytest.fixture(scope="module")
def srv(servers, ws):
    args = ["--status-url", "/rwsgi-status", "--processes", "2", "--threads", "4"]
    s = servers.start("status", app_dir(ws) / "app.wsgi", "event", args, mode="daemon")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("headless Chromium is not installed (apt-get install chromium chromium-driver, "
                    "scripts/install-deps.sh)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1280,1600"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def status_json(srv):
    r = requests.get(srv.url("/rwsgi-status.json"), timeout=30)
    assert r.status_code == 200, (r.status_code, srv.error_log_tail())
    assert r.headers["Content-Type"] == "application/json"
    return r.json()


def daemon_group(doc):
    names = [g["name"] for g in doc["groups"] if g["mode"] == "daemon"]
    assert len(names) == 1, names
    return names[0]


def daemons_up(srv):
    """Both daemon processes have started (they fill their slots once Python is up)."""
    def up():
        doc = status_json(srv)
        return all(len(g["processes"]) == 2 for g in doc["groups"] if g["mode"] == "daemon")
    assert wait_until(up, timeout=30), status_json(srv)


def test_json_document(srv):
    daemons_up(srv)
    doc = status_json(srv)
    assert doc["version"] == 1
    assert doc["server_pid"] == srv.pid()
    modes = {g["name"]: g["mode"] for g in doc["groups"]}
    assert modes["%{GLOBAL}"] == "embedded"
    g = next(g for g in doc["groups"] if g["mode"] == "daemon")
    assert len(g["processes"]) == 2
    for p in g["processes"]:
        assert p["threads"] == 4 and p["rss_bytes"] > 0 and p["uptime_seconds"] >= 0
    page = requests.get(srv.url("/rwsgi-status"), timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    # Self-contained: nothing is loaded from elsewhere.
    assert "http://" not in page.text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page.text and "src=" not in page.text
    assert [line for line in page.text.splitlines() if "<link" in line] == ['<link rel="icon" href="data:,">']


# What the page shows, read from its DOM in one script (the page rebuilds
# its tables every second, so elements found one by one could go stale).
READ_PAGE = """
const card = [...document.querySelectorAll(".group")].find(c => c.dataset.group === arguments[0]);
const field = n => { const e = card && card.querySelector('[data-field="' + n + '"]'); return e ? e.textContent : null; };
const rows = sel => [...document.querySelectorAll(sel)].map(r => [...r.cells].map(c => c.textContent));
return {
  requests: field("requests"), s2xx: field("status-2xx"), s5xx: field("status-5xx"), busy: field("busy"),
  busyThreads: rows("#busy tr.busy-thread"),
  errors: rows("#errors tr.error"),
  pids: card ? [...card.querySelectorAll("table.processes tr[data-pid]")].map(r => Number(r.dataset.pid)) : [],
  rateChart: document.querySelectorAll("#rate-chart polyline").length,
  latencyChart: document.querySelectorAll("#latency-chart polyline").length,
  samples: samples.length,
};
"""


def test_page_in_chromium_shows_what_was_sent(srv, browser, ws):
    daemons_up(srv)
    before = status_json(srv)
    group = daemon_group(before)
    start = next(g for g in before["groups"] if g["name"] == group)

    browser.get(srv.url("/rwsgi-status"))
    page = {}

    def read():
        page.update(browser.execute_script(READ_PAGE, group))
        return page

    assert wait_until(lambda: read()["requests"] is not None, timeout=15), browser.page_source[:2000]

    # The load: one slow request, and while it runs many quick ones, one failing.
    slow = threading.Thread(target=lambda: requests.get(srv.url("/sleep?4"), timeout=30))
    slow.start()
    sent = {"2xx": 1, "5xx": 0}
    try:
        def slow_request_shown():
            # group, pid, thread, method, path, client, elapsed
            return any(r[3] == "GET" and r[4] == "/sleep?4" and r[5] == "127.0.0.1"
                       for r in read()["busyThreads"])

        assert wait_until(slow_request_shown, timeout=15), page
        for _ in range(30):
            assert requests.get(srv.url("/hello"), timeout=30).status_code == 200
            sent["2xx"] += 1
        assert requests.get(srv.url("/fail"), timeout=30).status_code == 500
        sent["5xx"] += 1
    finally:
        slow.join()

    want = {
        "requests": str(start["requests"] + sent["2xx"] + sent["5xx"]),
        "s2xx": str(start["statuses"]["2xx"] + sent["2xx"]),
        "s5xx": str(start["statuses"]["5xx"] + sent["5xx"]),
        "busy": "0",
    }
    assert wait_until(lambda: all(read()[k] == v for k, v in want.items()), timeout=15), (
        want, {k: page[k] for k in want}, status_json(srv))
    # The failure is among the last errors, with its id.
    assert any(e[2] == "RWSGI0020" and "app.wsgi" in e[3] for e in page["errors"]), page["errors"]
    # The processes table: one row per daemon process.
    doc = status_json(srv)
    pids = {p["pid"] for g in doc["groups"] if g["name"] == group for p in g["processes"]}
    assert set(page["pids"]) == pids and len(pids) == 2
    # Charts drawn from successive samples.
    assert wait_until(lambda: read()["rateChart"] == 1 and page["latencyChart"] == 1, timeout=10)
    assert page["samples"] >= 2
    shot = ws.new_dir("status-page") / "status-page.png"
    browser.save_screenshot(str(shot))
    print(f"status page screenshot: {shot}")
    assert shot.stat().st_size > 10_000
