"""Real third-party WSGI applications from PyPI, served unchanged.

Nobody on this project wrote these apps; each is installed by
scripts/test-env.sh and served by `rwsgi-express setup-server` at '/':

- httpbin (Flask): an HTTP API echoing requests back as JSON;
- Radicale 3: a CalDAV server (MKCALENDAR, PUT, GET, PROPFIND, REPORT,
  DELETE with XML bodies);
- Trac 1.6: a server-rendered app with a SQLite database, CSRF form tokens
  and an anonymous session cookie.

The httpbin /basic-auth and /bearer tests and the Radicale tests need the
Authorization header to reach the application: rwsgi-express writes
`WSGIPassAuthorization On`, as mod_wsgi-express does (without it they get a
401).

Each app is served in both modes (conftest's MODES), under the event MPM.
"""

import base64
import gzip
import json
import os
import random
import re
import shutil
import uuid
import xml.etree.ElementTree as ET

import pytest
import requests

from conftest import APACHE_GROUP, APACHE_USER, MODES, python_home, run

# --------------------------------------------------------------------------
# Serving modes
# --------------------------------------------------------------------------

# Every app below is served once per mode of the core suite (conftest's
# MODES: embedded, and daemon, rwsgi-express's default), under the event MPM
# only, to keep the suite's time low.
MPM = "event"


@pytest.fixture(scope="module", params=MODES)
def mode(request):
    """This module's own mode parameter (module-scoped: each app's server
    is started once per mode)."""
    return request.param


def start_app(servers, name, script, mode, args=()):
    return servers.start(f"{name}-{mode}", script, MPM,
                         ["--log-level", "info", *args], mode=mode)


def thirdparty_src(ws):
    return ws.apps / "thirdparty"


def site_dir(ws, name, *files):
    """A fresh per-server directory (readable by the Apache user) holding
    copies of `files` from tests/apps/thirdparty, so each server gets its own
    configuration and data next to its script."""
    d = ws.new_dir(name)
    for f in files:
        shutil.copy(thirdparty_src(ws) / f, d / f)
        (d / f).chmod(0o644)
    return d


def chown_to_apache(path):
    """Gives `path` (recursively) to the Apache user: the apps write there."""
    for root, dirs, files in os.walk(path):
        shutil.chown(root, APACHE_USER, APACHE_GROUP)
        for name in files:
            shutil.chown(os.path.join(root, name), APACHE_USER, APACHE_GROUP)


def fail_info(r, srv):
    return (f"{r.request.method} {r.url} -> {r.status_code}\n{r.text[:2000]}\n"
            f"--- error_log ---\n{srv.error_log_tail()}")


# --------------------------------------------------------------------------
# httpbin
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def httpbin(servers, ws, mode):
    srv = start_app(servers, "httpbin", thirdparty_src(ws) / "httpbin.wsgi", mode)
    yield srv
    srv.stop()


def test_httpbin_get_echoes_query_and_headers(httpbin):
    r = httpbin.get("/get", params=[("name", "Zoë & co"), ("x", "1"), ("x", "2")],
                    headers={"X-Rwsgi-Test": "hello", "User-Agent": "rwsgi-tests/1"})
    assert r.status_code == 200, fail_info(r, httpbin)
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert body["args"] == {"name": "Zoë & co", "x": ["1", "2"]}
    assert body["headers"]["X-Rwsgi-Test"] == "hello"
    assert body["headers"]["User-Agent"] == "rwsgi-tests/1"
    assert body["headers"]["Host"] == f"127.0.0.1:{httpbin.port}"
    assert body["origin"] == "127.0.0.1"
    # Werkzeug's request.url decodes percent-encoded UTF-8 (an IRI).
    assert body["url"] == httpbin.url("/get?name=Zoë+%26+co&x=1&x=2")


def test_httpbin_headers(httpbin):
    r = httpbin.get("/headers", headers={"X-One": "1", "X-Two": "two, three",
                                         "Accept-Language": "fr-CH"})
    assert r.status_code == 200, fail_info(r, httpbin)
    headers = r.json()["headers"]
    assert headers["X-One"] == "1"
    assert headers["X-Two"] == "two, three"
    assert headers["Accept-Language"] == "fr-CH"


def test_httpbin_post_json(httpbin):
    payload = {"name": "Zoë", "n": [1, 2.5, None, True], "nested": {"€": "euro"}}
    r = httpbin.post("/post?q=1", json=payload)
    assert r.status_code == 200, fail_info(r, httpbin)
    body = r.json()
    assert body["json"] == payload
    assert json.loads(body["data"]) == payload
    assert body["args"] == {"q": "1"}
    assert body["headers"]["Content-Type"] == "application/json"
    assert body["form"] == {} and body["files"] == {}


def test_httpbin_post_form(httpbin):
    data = {"name": "Zoë & co", "item": ["a", "b=c"], "text": "line1\r\nline2 €"}
    r = httpbin.post("/post", data=data)
    assert r.status_code == 200, fail_info(r, httpbin)
    body = r.json()
    assert body["form"] == {"name": "Zoë & co", "item": ["a", "b=c"],
                            "text": "line1\r\nline2 €"}
    assert body["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


def test_httpbin_post_multipart_and_binary(httpbin):
    r = httpbin.post("/post", files={"f": ("notes.txt", b"first line\nsecond\n", "text/plain")},
                     data={"note": "hi"})
    assert r.status_code == 200, fail_info(r, httpbin)
    assert r.json()["files"] == {"f": "first line\nsecond\n"}
    assert r.json()["form"] == {"note": "hi"}
    # A binary body comes back as a base64 data URL: every byte made it
    # through wsgi.input.
    blob = random.Random(7).randbytes(300 * 1024 + 5)
    r = httpbin.request("PUT", "/anything/some/where", data=blob,
                        headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200, fail_info(r, httpbin)
    body = r.json()
    assert body["method"] == "PUT"
    assert body["url"] == httpbin.url("/anything/some/where")
    prefix = "data:application/octet-stream;base64,"
    assert body["data"].startswith(prefix)
    assert base64.b64decode(body["data"][len(prefix):]) == blob


@pytest.mark.parametrize("code", [200, 201, 204, 304, 404, 418, 503])
def test_httpbin_status(httpbin, code):
    r = httpbin.get(f"/status/{code}", allow_redirects=False)
    assert r.status_code == code, fail_info(r, httpbin)
    if code == 418:
        assert "teapot" in r.text
        assert r.headers["x-more-info"] == "http://tools.ietf.org/html/rfc2324"
    elif code in (204, 304):
        assert r.content == b""


def test_httpbin_status_redirect(httpbin):
    r = httpbin.get("/status/302", allow_redirects=False)
    assert r.status_code == 302
    assert r.headers["Location"] == "/redirect/1"


def test_httpbin_bytes_byte_for_byte(httpbin):
    # httpbin seeds Python's random module and draws randint(0, 255) per byte.
    n, seed = 50_000, 1234
    rng = random.Random(seed)
    expected = bytes(rng.randint(0, 255) for _ in range(n))
    r = httpbin.get(f"/bytes/{n}", params={"seed": seed})
    assert r.status_code == 200, fail_info(r, httpbin)
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Content-Length"] == str(n)
    assert r.content == expected


def test_httpbin_stream_bytes_chunked(httpbin):
    # A generator response without Content-Length: Apache sends it chunked.
    n, seed = 70_001, 99
    rng = random.Random(seed)
    expected = bytes(rng.randint(0, 255) for _ in range(n))
    r = httpbin.get(f"/stream-bytes/{n}", params={"seed": seed, "chunk_size": 4096})
    assert r.status_code == 200, fail_info(r, httpbin)
    assert r.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in r.headers
    assert r.content == expected


def test_httpbin_range(httpbin):
    r = httpbin.get("/range/1000", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206, fail_info(r, httpbin)
    assert r.headers["Content-Range"] == "bytes 10-19/1000"
    # /range serves the alphabet, repeated.
    assert r.content == bytes(ord("a") + i % 26 for i in range(10, 20))


def test_httpbin_gzip(httpbin):
    r = httpbin.get("/gzip", stream=True)
    assert r.status_code == 200, fail_info(r, httpbin)
    assert r.headers["Content-Encoding"] == "gzip"
    raw = r.raw.read(decode_content=False)
    assert raw[:2] == b"\x1f\x8b"
    assert len(raw) == int(r.headers["Content-Length"])
    body = json.loads(gzip.decompress(raw))
    assert body["gzipped"] is True
    assert body["method"] == "GET"


def test_httpbin_response_headers_and_base64(httpbin):
    r = httpbin.get("/response-headers", params={"X-Custom": "Zoë", "X-Two": "2"})
    assert r.status_code == 200, fail_info(r, httpbin)
    # Werkzeug sends header values as latin-1 (b"Zo\xeb"); requests decodes
    # them as latin-1 too.
    assert r.headers["X-Custom"] == "Zoë"
    assert r.headers["X-Two"] == "2"
    assert r.json()["X-Custom"] == "Zoë"
    value = base64.urlsafe_b64encode("rwsgi ünïcode".encode()).decode()
    r = httpbin.get(f"/base64/{value}")
    assert r.status_code == 200, fail_info(r, httpbin)
    assert r.content == "rwsgi ünïcode".encode()


def test_httpbin_redirects_followed(httpbin):
    r = httpbin.get("/redirect/3")
    assert r.status_code == 200, fail_info(r, httpbin)
    assert [h.status_code for h in r.history] == [302, 302, 302]
    assert [h.headers["Location"] for h in r.history] == [
        "/relative-redirect/2", "/relative-redirect/1", "/get"]
    assert r.url == httpbin.url("/get")
    assert r.json()["url"] == httpbin.url("/get")
    # Absolute redirects are built from the Host header the app saw.
    r = httpbin.get("/absolute-redirect/2")
    assert r.status_code == 200, fail_info(r, httpbin)
    assert [h.headers["Location"] for h in r.history] == [
        httpbin.url("/absolute-redirect/1"), httpbin.url("/get")]


def test_httpbin_cookies(httpbin):
    with requests.Session() as s:
        r = s.get(httpbin.url("/cookies/set"), params={"flavour": "oatmeal", "n": "42"},
                  timeout=30)
        assert r.status_code == 200, fail_info(r, httpbin)
        assert [h.status_code for h in r.history] == [302]
        assert r.url == httpbin.url("/cookies")
        assert r.json() == {"cookies": {"flavour": "oatmeal", "n": "42"}}
        assert s.cookies.get("flavour") == "oatmeal"
        r = s.get(httpbin.url("/cookies"), timeout=30)
        assert r.json() == {"cookies": {"flavour": "oatmeal", "n": "42"}}
        r = s.get(httpbin.url("/cookies/delete"), params={"flavour": ""}, timeout=30)
        assert r.json() == {"cookies": {"n": "42"}}


def test_httpbin_basic_auth(httpbin):
    # Needs WSGIPassAuthorization On (see the module docstring).
    r = httpbin.get("/basic-auth/alice/s3cret", auth=("alice", "s3cret"))
    assert r.status_code == 200, fail_info(r, httpbin)
    assert r.json() == {"authenticated": True, "user": "alice"}
    r = httpbin.get("/basic-auth/alice/s3cret", auth=("alice", "wrong"))
    assert r.status_code == 401


def test_httpbin_bearer(httpbin):
    # Needs WSGIPassAuthorization On (see the module docstring).
    r = httpbin.get("/bearer", headers={"Authorization": "Bearer abc.def-123"})
    assert r.status_code == 200, fail_info(r, httpbin)
    assert r.json() == {"authenticated": True, "token": "abc.def-123"}


# --------------------------------------------------------------------------
# Radicale (CalDAV)
# --------------------------------------------------------------------------

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
NS = {"d": DAV, "c": CALDAV}
RADICALE_USER = ("alice", "any-password")  # auth type = none: any password


@pytest.fixture(scope="module")
def radicale(servers, ws, mode):
    site = site_dir(ws, "radicale", "radicale.wsgi")
    storage = site / "collections"
    storage.mkdir()
    chown_to_apache(storage)
    conf = (thirdparty_src(ws) / "radicale.conf.in").read_text()
    (site / "radicale.conf").write_text(conf.replace("@STORAGE_FOLDER@", str(storage)))
    (site / "radicale.conf").chmod(0o644)
    srv = start_app(servers, "radicale", site / "radicale.wsgi", mode)
    srv.storage = storage
    yield srv
    srv.stop()


def dav(srv, method, path, body=None, headers=None, **kw):
    headers = dict(headers or {})
    if isinstance(body, str):
        body = body.encode("utf-8")
    if body is not None and "Content-Type" not in headers:
        headers["Content-Type"] = "application/xml; charset=utf-8"
    return srv.request(method, path, data=body, headers=headers, auth=RADICALE_USER, **kw)


def multistatus(r, srv):
    assert r.status_code == 207, fail_info(r, srv)
    assert r.headers["Content-Type"].startswith(("text/xml", "application/xml"))
    root = ET.fromstring(r.content)
    assert root.tag == f"{{{DAV}}}multistatus", r.text
    return {resp.findtext("d:href", namespaces=NS): resp
            for resp in root.findall("d:response", NS)}


def ics_event(uid, summary):
    # Radicale stores and serves what vobject serialises; this is already in
    # that form (CRLF, this property order), so GET returns these very bytes.
    return ("BEGIN:VCALENDAR\r\n"
            "VERSION:2.0\r\n"
            "PRODID:-//rwsgi tests//EN\r\n"
            "BEGIN:VEVENT\r\n"
            f"UID:{uid}\r\n"
            "DTSTART:20250315T100000Z\r\n"
            "DTEND:20250315T110000Z\r\n"
            "DTSTAMP:20250101T090000Z\r\n"
            f"SUMMARY:{summary}\r\n"
            "END:VEVENT\r\n"
            "END:VCALENDAR\r\n").encode("utf-8")


MKCALENDAR_BODY = f"""<?xml version="1.0" encoding="utf-8"?>
<c:mkcalendar xmlns:d="{DAV}" xmlns:c="{CALDAV}">
  <d:set><d:prop>
    <d:displayname>Zoë's calendar</d:displayname>
    <c:supported-calendar-component-set><c:comp name="VEVENT"/></c:supported-calendar-component-set>
  </d:prop></d:set>
</c:mkcalendar>"""

PROPFIND_BODY = f"""<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="{DAV}">
  <d:prop><d:resourcetype/><d:displayname/><d:getetag/><d:getcontenttype/>
          <d:current-user-principal/></d:prop>
</d:propfind>"""

REPORT_BODY = f"""<?xml version="1.0" encoding="utf-8"?>
<c:calendar-query xmlns:d="{DAV}" xmlns:c="{CALDAV}">
  <d:prop><d:getetag/><c:calendar-data/></d:prop>
  <c:filter>
    <c:comp-filter name="VCALENDAR">
      <c:comp-filter name="VEVENT">
        <c:time-range start="20250315T000000Z" end="20250316T000000Z"/>
      </c:comp-filter>
    </c:comp-filter>
  </c:filter>
</c:calendar-query>"""


def test_radicale_calendar_round_trip(radicale):
    user = RADICALE_USER[0]
    cal = f"/{user}/cal-{uuid.uuid4().hex[:8]}/"
    # Needs WSGIPassAuthorization On: without the header Radicale sees an
    # anonymous user and answers 401.
    r = dav(radicale, "MKCALENDAR", cal, MKCALENDAR_BODY)
    assert r.status_code == 201, fail_info(r, radicale)

    # The collection is a calendar, with the name we gave it.
    resps = multistatus(dav(radicale, "PROPFIND", cal, PROPFIND_BODY, {"Depth": "0"}),
                        radicale)
    assert list(resps) == [cal]
    prop = resps[cal].find("d:propstat/d:prop", NS)
    assert prop.find("d:resourcetype/d:collection", NS) is not None
    assert prop.find("d:resourcetype/c:calendar", NS) is not None
    assert prop.findtext("d:displayname", namespaces=NS) == "Zoë's calendar"

    # PUT an event, GET it back byte for byte.
    uid = f"{uuid.uuid4()}@rwsgi.test"
    event = ics_event(uid, "Réunion rwsgi ✓")
    href = cal + "meeting.ics"
    r = dav(radicale, "PUT", href, event,
            {"Content-Type": "text/calendar; charset=utf-8", "If-None-Match": "*"})
    assert r.status_code == 201, fail_info(r, radicale)
    etag = r.headers["ETag"]
    r = dav(radicale, "GET", href)
    assert r.status_code == 200, fail_info(r, radicale)
    assert r.headers["Content-Type"].startswith("text/calendar")
    assert r.headers["ETag"] == etag
    assert r.content == event
    # It is on disk, in the storage folder the app (as nobody) writes to.
    stored = radicale.storage / "collection-root" / user / cal.strip("/").split("/")[1]
    assert (stored / "meeting.ics").read_bytes() == event
    # A second PUT with If-None-Match: * must not overwrite it.
    r = dav(radicale, "PUT", href, ics_event(uid, "other"),
            {"Content-Type": "text/calendar", "If-None-Match": "*"})
    assert r.status_code == 412, fail_info(r, radicale)

    # PROPFIND Depth: 1 lists the calendar and the event with its ETag.
    resps = multistatus(dav(radicale, "PROPFIND", cal, PROPFIND_BODY, {"Depth": "1"}),
                        radicale)
    assert set(resps) == {cal, href}
    prop = resps[href].find("d:propstat/d:prop", NS)
    assert prop.findtext("d:getetag", namespaces=NS) == etag
    assert prop.findtext("d:getcontenttype", namespaces=NS).startswith("text/calendar")

    # A calendar-query REPORT over the event's day finds it, with its data.
    resps = multistatus(dav(radicale, "REPORT", cal, REPORT_BODY, {"Depth": "1"}), radicale)
    assert list(resps) == [href]
    prop = resps[href].find("d:propstat/d:prop", NS)
    assert prop.findtext("d:getetag", namespaces=NS) == etag
    data = prop.findtext("c:calendar-data", namespaces=NS)
    assert f"UID:{uid}" in data
    assert "SUMMARY:Réunion rwsgi ✓" in data
    # ... and one over another day does not.
    other_day = REPORT_BODY.replace("20250315T000000Z", "20250401T000000Z").replace(
        "20250316T000000Z", "20250402T000000Z")
    assert multistatus(dav(radicale, "REPORT", cal, other_day, {"Depth": "1"}), radicale) == {}

    # DELETE it: gone from GET and from the listing.
    r = dav(radicale, "DELETE", href, headers={"If-Match": etag})
    assert r.status_code in (200, 204), fail_info(r, radicale)
    assert dav(radicale, "GET", href).status_code == 404
    resps = multistatus(dav(radicale, "PROPFIND", cal, PROPFIND_BODY, {"Depth": "1"}),
                        radicale)
    assert list(resps) == [cal]


def test_radicale_principal_is_the_basic_auth_user(radicale):
    # With `auth type = none` Radicale accepts any password but still takes
    # the user from the Authorization header: its principal is /USER/,
    # created on the first request.
    user = f"u{uuid.uuid4().hex[:8]}"
    r = radicale.request("PROPFIND", "/", data=PROPFIND_BODY, auth=(user, "whatever"),
                         headers={"Depth": "0", "Content-Type": "application/xml"})
    resps = multistatus(r, radicale)
    prop = resps["/"].find("d:propstat/d:prop", NS)
    assert prop.findtext("d:current-user-principal/d:href", namespaces=NS) == f"/{user}/"
    r = radicale.request("PROPFIND", f"/{user}/", data=PROPFIND_BODY, auth=(user, "x"),
                         headers={"Depth": "0", "Content-Type": "application/xml"})
    resps = multistatus(r, radicale)
    prop = resps[f"/{user}/"].find("d:propstat/d:prop", NS)
    assert prop.find("d:resourcetype/d:principal", NS) is not None
    assert (radicale.storage / "collection-root" / user).is_dir()
    # Without credentials Radicale asks for them.
    r = radicale.request("PROPFIND", "/", data=PROPFIND_BODY,
                         headers={"Depth": "0", "Content-Type": "application/xml"})
    assert r.status_code == 401, fail_info(r, radicale)
    assert r.headers["WWW-Authenticate"].startswith("Basic realm=")


# --------------------------------------------------------------------------
# Trac
# --------------------------------------------------------------------------

TRAC_PROJECT = "rwsgi Trac test"
FORM_TOKEN_RE = re.compile(r'name="__FORM_TOKEN" value="([^"]+)"')


@pytest.fixture(scope="module")
def trac(servers, ws, mode):
    site = site_dir(ws, "trac", "trac.wsgi")
    env_dir = site / "trac-env"
    admin = python_home() / "bin" / "trac-admin"
    for cmd in (["initenv", TRAC_PROJECT, "sqlite:db/trac.db"],
                ["permission", "add", "anonymous", "TICKET_CREATE"]):
        proc = run([admin, env_dir, *cmd], timeout=120)
        assert proc.returncode == 0, f"trac-admin {' '.join(cmd)} failed:\n{proc.out}"
    chown_to_apache(env_dir)
    srv = start_app(servers, "trac", site / "trac.wsgi", mode)
    yield srv
    srv.stop()


def trac_form_token(session, srv, path):
    r = session.get(srv.url(path), timeout=30)
    assert r.status_code == 200, fail_info(r, srv)
    m = FORM_TOKEN_RE.search(r.text)
    assert m, r.text[:3000]
    assert session.cookies.get("trac_form_token") == m.group(1)
    return m.group(1), r


def test_trac_wiki_front_page(trac):
    r = trac.get("/")
    assert r.status_code == 200, fail_info(r, trac)
    assert r.headers["Content-Type"].startswith("text/html")
    title = re.search(r"<title>(.*?)</title>", r.text, re.S)
    assert title and TRAC_PROJECT in title.group(1), r.text[:2000]
    assert "Welcome to Trac" in r.text
    assert 'href="/wiki/TracGuide"' in r.text
    # Static resources come from the app too.
    r = trac.get("/chrome/common/css/trac.css")
    assert r.status_code == 200, fail_info(r, trac)
    assert r.headers["Content-Type"].startswith("text/css")
    assert b"body" in r.content


def test_trac_create_ticket(trac):
    summary = f"rwsgi ticket {uuid.uuid4().hex[:8]} — ünïcode"
    with requests.Session() as s:
        token, r = trac_form_token(s, trac, "/newticket")
        assert 'name="field_summary"' in r.text
        # Without the form token Trac refuses the POST (CSRF protection).
        r = s.post(trac.url("/newticket"), timeout=30,
                   data={"field_summary": summary, "submit": "Create ticket"})
        assert r.status_code == 400, fail_info(r, trac)
        assert "Missing or invalid form token" in r.text
        r = s.post(trac.url("/newticket"), allow_redirects=False, timeout=30, data={
            "__FORM_TOKEN": token,
            "field_summary": summary,
            "field_description": "Created through '''rwsgi''' by the test suite.",
            "field_reporter": "zoe",
            "field_type": "defect",
            "field_priority": "major",
            "submit": "Create ticket",
        })
        assert r.status_code == 303, fail_info(r, trac)
        location = r.headers["Location"]
        m = re.fullmatch(re.escape(trac.url("/ticket/")) + r"(\d+)", location)
        assert m, location
        ticket = int(m.group(1))
    # A fresh client sees it.
    r = trac.get(f"/ticket/{ticket}")
    assert r.status_code == 200, fail_info(r, trac)
    assert summary in r.text
    assert "<strong>rwsgi</strong>" in r.text  # the wiki markup was rendered
    assert "zoe" in r.text
    # The first ticket of the fresh environment is #1.
    assert ticket == 1
    r = trac.get("/query", params={"summary": f"~{summary.split()[2]}", "format": "csv"})
    assert r.status_code == 200, fail_info(r, trac)
    assert summary in r.content.decode("utf-8-sig")


def test_trac_anonymous_session_preferences(trac):
    name, email = "Zoë Tester", "zoe@example.org"
    with requests.Session() as s:
        token, r = trac_form_token(s, trac, "/prefs")
        # Trac gives the anonymous visitor a session cookie.
        session_id = s.cookies.get("trac_session")
        assert session_id, r.headers
        r = s.post(trac.url("/prefs"), allow_redirects=False, timeout=30, data={
            "__FORM_TOKEN": token, "action": "save", "name": name, "email": email})
        assert r.status_code == 303, fail_info(r, trac)
        assert r.headers["Location"] == trac.url("/prefs")
        assert s.cookies.get("trac_session") == session_id
        form_token = s.cookies.get("trac_form_token")
    # A new client with only those cookies sees the saved preferences.
    with requests.Session() as s2:
        s2.cookies.set("trac_session", session_id)
        s2.cookies.set("trac_form_token", form_token)
        r = s2.get(trac.url("/prefs"), timeout=30)
        assert r.status_code == 200, fail_info(r, trac)
        assert f'value="{name}"' in r.text, r.text[:4000]
        assert f'value="{email}"' in r.text
    # Without the cookie the preferences are empty.
    r = trac.get("/prefs")
    assert r.status_code == 200
    assert f'value="{name}"' not in r.text


# --------------------------------------------------------------------------
# Whatever the apps did, no Apache child crashed
# --------------------------------------------------------------------------

CRASH_SIGNS = ("Segmentation fault", "exit signal", "panicked at", "Fatal Python error",
               "core dumped", "RWSGI0020")


@pytest.mark.parametrize("which", ["httpbin", "radicale", "trac"])
def test_thirdparty_servers_healthy(request, mode, which):
    srv = request.getfixturevalue(which)
    # Still serving.
    if which == "httpbin":
        assert "Disallow: /deny" in srv.get("/robots.txt").text
    elif which == "radicale":
        r = srv.request("OPTIONS", "/", auth=RADICALE_USER)
        assert r.status_code == 200, fail_info(r, srv)
        assert "calendar-access" in r.headers["DAV"]
    else:
        assert "Welcome to Trac" in srv.get("/").text
    log = srv.error_log()
    for bad in CRASH_SIGNS:
        assert bad not in log, f"{bad!r} in {srv.error_log_path}:\n{log[-6000:]}"
