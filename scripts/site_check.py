"""Open every page of the built site in headless Chromium, as a reader would, and check it.

    python scripts/site_check.py [--site _build/html] [--out benchmarks/results/site_check.json]

Builds nothing. Serves the site on localhost and loads each page with the network limited to
localhost; a page passes when it has

* no console error (level SEVERE in Chromium's log);
* no request to a host other than localhost;
* every `.math` element typeset by MathJax (an `mjx-container`, no `merror`), and no inline formula
  running off a 375 px screen (one inside a sideways-scrolling container can be reached and passes);
* no output block with a traceback or an error (`Traceback (most recent call last)`, `…Error: …`);
* every `<img>` loaded, with alt text that is not a file name;
* no internal link to a missing file or anchor (checked against the files on disk);
* on a chapter page, links to the executed notebook and to the source zip;

and no published file carries the absolute path of the machine that built it.

Writes one record per page and an overall verdict to the JSON file, prints a table, and exits
with status 1 if any page fails. Needs Chromium, chromedriver and selenium (`make site-check`
installs them).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # every host but localhost fails to resolve: the page sees only the site itself
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
]
DESKTOP, PHONE = (1280, 900), (375, 812)
LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}
SKIPPED_DIRS = {"_static", "_sources", "_images", "_executed", "_source", "reports"}
IMAGE_NAME = re.compile(r"^[\w.~%/-]*\.(png|jpe?g|gif|svg|webp)$", re.IGNORECASE)
ERROR_LINE = re.compile(r"^\s*(Traceback \(most recent call last\)|[A-Z]\w*(Error|Exception)(:|$))", re.MULTILINE)


# --- pure helpers (tested in tests/test_site_check.py) -------------------------------------------------------


def site_pages(site: Path) -> list[str]:
    """The HTML pages of a built site, as paths relative to it, without the theme's and build's folders."""
    return sorted(
        path.relative_to(site).as_posix()
        for path in site.rglob("*.html")
        if not SKIPPED_DIRS.intersection(path.relative_to(site).parts[:-1])
    )


def is_file_name(alt: str | None) -> bool:
    """True when alt text is missing, empty, or just an image's file name or path."""
    return alt is None or not alt.strip() or bool(IMAGE_NAME.match(alt.strip()))


def is_local(url: str) -> bool:
    """True for URLs the browser resolves without the network: localhost, data:, blob:, about:."""
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "javascript", "chrome", "chrome-error"):
        return True
    return (parts.hostname or "") in LOCAL_HOSTS


def error_lines(text: str) -> list[str]:
    """Lines of an output block that show a traceback or a raised error."""
    return [match.group(0).strip() for match in ERROR_LINE.finditer(text)]


class _Anchors(HTMLParser):
    def __init__(self):
        super().__init__()
        self.anchors: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value and (name == "id" or (tag == "a" and name == "name")):
                self.anchors.add(value)


def anchors_of(html: str) -> set[str]:
    """Every id (and `<a name>`) in an HTML document: the fragments a link may point to."""
    parser = _Anchors()
    parser.feed(html)
    return parser.anchors


def link_target(url: str, base_url: str, site: Path) -> tuple[Path, str] | None:
    """The file under `site` and the fragment an internal link points to; None for other hosts."""
    if not is_local(url) or urlsplit(url).scheme not in ("http", "https"):
        return None
    without_fragment, fragment = urldefrag(url)
    base_root = urlsplit(base_url)
    path = unquote(urlsplit(without_fragment).path)
    if urlsplit(without_fragment).netloc != base_root.netloc:
        return None
    target = site / path.lstrip("/")
    if path.endswith("/"):
        target = target / "index.html"
    return target, unquote(fragment)


def leaked_paths(site: Path, needles: list[str]) -> list[str]:
    """Published text files (pages, notebooks, logs, data) that contain one of `needles`: the absolute
    paths of the machine that built the site, which mean nothing to a reader (the theme's own files left out)."""
    suffixes = {".html", ".ipynb", ".txt", ".log", ".json", ".js", ".md", ".py", ".csv"}
    leaks = []
    for path in sorted(site.rglob("*")):
        relative = path.relative_to(site)
        if path.is_file() and path.suffix in suffixes and relative.parts[0] != "_static":
            text = path.read_text(encoding="utf8", errors="replace")
            leaks += [f"{relative.as_posix()} contains {needle}" for needle in needles if needle in text]
    return leaks


@dataclass
class PageReport:
    page: str
    failures: list[str] = field(default_factory=list)
    weight_bytes: int = 0
    requests: int = 0
    math: int = 0
    images: int = 0
    links: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "failures": self.failures,
            "weight_bytes": self.weight_bytes,
            "requests": self.requests,
            "math": self.math,
            "images": self.images,
            "links": self.links,
        }


def summarise(reports: list[PageReport]) -> dict:
    """The overall verdict: pages, failing pages, failures, and page weights (bytes)."""
    weights = [report.weight_bytes for report in reports]
    return {
        "ok": bool(reports) and all(report.ok for report in reports),
        "pages": len(reports),
        "failing_pages": sum(not report.ok for report in reports),
        "failures": sum(len(report.failures) for report in reports),
        "math": sum(report.math for report in reports),
        "images": sum(report.images for report in reports),
        "links": sum(report.links for report in reports),
        "weight_bytes": {
            "min": min(weights, default=0),
            "median": int(statistics.median(weights)) if weights else 0,
            "max": max(weights, default=0),
        },
    }


def format_table(reports: list[PageReport]) -> str:
    rows = [f"{'page':44s} {'MB':>5s} {'req':>4s} {'math':>5s} {'img':>4s} {'links':>5s}  result"]
    for report in reports:
        verdict = "ok" if report.ok else f"FAIL ({len(report.failures)})"
        rows.append(
            f"{report.page:44s} {report.weight_bytes / 1e6:5.2f} {report.requests:4d} {report.math:5d} "
            f"{report.images:4d} {report.links:5d}  {verdict}"
        )
        rows.extend(f"    - {failure}" for failure in report.failures[:10])
        if len(report.failures) > 10:
            rows.append(f"    … and {len(report.failures) - 10} more")
    return "\n".join(rows)


# --- the browser --------------------------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://localhost:{server.server_address[1]}/"


def browser(user_data_dir: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={user_data_dir}", f"--window-size={DESKTOP[0]},{DESKTOP[1]}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})  # each page weighed as a first visit
    return driver


WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
  MathJax.startup.promise.then(() => done(true), () => done(false));
} else { done(null); }
"""

PAGE_FACTS = """
const math = Array.from(document.querySelectorAll('.math'));
const outputs = Array.from(document.querySelectorAll('.cell_output .output, .output.traceback, .output.error'));
return {
  math: math.length,
  untypeset: math.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 80)),
  merror: math.filter(e => e.querySelector('mjx-merror')).map(e => e.textContent.slice(0, 80)),
  tracebacks: document.querySelectorAll('.output.traceback, .output.error').length,
  outputs: outputs.map(e => e.innerText),
  images: Array.from(document.images).map(i => ({src: i.getAttribute('src'), alt: i.getAttribute('alt'),
                                                 loaded: i.complete && i.naturalWidth > 0})),
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  weight: performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
          .reduce((sum, e) => sum + (e.transferSize || e.encodedBodySize || 0), 0),
};
"""

INLINE_OVERFLOW = """
const width = document.documentElement.clientWidth;
return Array.from(document.querySelectorAll('mjx-container:not([display="true"])'))
  .filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.right > width + 1; })
  .filter(e => {  // inside a container that scrolls sideways (a wide table), the reader can still reach it
    for (let a = e.parentElement; a; a = a.parentElement) {
      const overflow = getComputedStyle(a).overflowX;
      if ((overflow === 'auto' || overflow === 'scroll') && a.scrollWidth > a.clientWidth) return false;
    }
    return true;
  })
  .map(e => (e.closest('.math') || e).textContent.slice(0, 80));
"""


def requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def check_page(driver, base_url: str, site: Path, page: str, anchor_cache: dict) -> PageReport:
    report = PageReport(page)
    driver.set_window_size(*DESKTOP)
    driver.get(base_url + page)
    for _ in range(100):
        if driver.execute_script("return document.readyState") == "complete":
            break
        time.sleep(0.1)
    if driver.execute_async_script(WAIT_FOR_MATHJAX) is False:
        report.failures.append("MathJax failed to start")
    time.sleep(0.3)  # fonts and late resources
    facts = driver.execute_script(PAGE_FACTS)

    for entry in driver.get_log("browser"):
        if entry["level"] == "SEVERE":
            report.failures.append(f"console error: {entry['message'][:200]}")
    requests = requested_urls(driver)
    report.requests = len(requests)
    report.failures += [f"request to a non-local host: {url[:120]}" for url in requests if not is_local(url)]

    report.math = facts["math"]
    report.failures += [f"formula not typeset: {text}" for text in facts["untypeset"]]
    report.failures += [f"formula with a TeX error: {text}" for text in facts["merror"]]
    if facts["tracebacks"]:
        report.failures.append(f"{facts['tracebacks']} traceback/error output block(s)")
    for text in facts["outputs"]:
        report.failures += [f"error in an output: {line[:120]}" for line in error_lines(text)]

    report.images = len(facts["images"])
    for image in facts["images"]:
        if is_file_name(image["alt"]):
            report.failures.append(f"image without real alt text: {image['src']} (alt={image['alt']!r})")
        if not image["loaded"]:
            report.failures.append(f"image did not load: {image['src']}")

    links = set(facts["links"])
    report.links = len(links)
    for url in sorted(links):
        target = link_target(url, base_url, site)
        if target is None:
            continue
        path, fragment = target
        if not path.is_file():
            report.failures.append(f"broken link: {url.removeprefix(base_url)}")
        elif fragment and path.suffix == ".html":
            if path not in anchor_cache:
                anchor_cache[path] = anchors_of(path.read_text(encoding="utf8", errors="replace"))
            if fragment not in anchor_cache[path]:
                report.failures.append(f"broken anchor: {url.removeprefix(base_url)}")
    if page.startswith("notebooks/"):
        local = [url.removeprefix(base_url) for url in links]
        if not any(url.startswith("_executed/") and url.endswith(".ipynb") for url in local):
            report.failures.append("no link to the executed notebook")
        if not any(url.startswith("_source/") and url.endswith(".zip") for url in local):
            report.failures.append("no link to the source zip")

    report.weight_bytes = int(facts["weight"])
    driver.set_window_size(*PHONE)
    time.sleep(0.2)
    report.failures += [
        f"inline formula wider than a {PHONE[0]} px screen: {text}" for text in driver.execute_script(INLINE_OVERFLOW)
    ]
    driver.get_log("performance")  # drop what the resize logged
    return report


def chromium_version() -> str:
    try:
        return subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=REPO / "_build" / "html")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "site_check.json")
    parser.add_argument("--pages", nargs="*", help="only these pages (paths relative to the site)")
    parser.add_argument("--note", help="a remark on the build that was checked, stored in the JSON")
    args = parser.parse_args(argv)
    site = args.site.resolve()
    if not (site / "index.html").is_file():
        print(f"no built site at {site} (run `make book` first)", file=sys.stderr)
        return 2
    pages = args.pages or site_pages(site)
    server, base_url = serve(site)
    reports, anchor_cache = [], {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="site-check-chromium-") as user_data_dir:
        driver = browser(user_data_dir)
        try:
            for page in pages:
                reports.append(check_page(driver, base_url, site, page, anchor_cache))
        finally:
            driver.quit()
            server.shutdown()
    overall = summarise(reports)
    overall["leaked_paths"] = leaked_paths(site, [str(REPO), str(site)])
    overall["ok"] = overall["ok"] and not overall["leaked_paths"]
    zips = sorted(path.name for path in (site / "_source").glob("*.zip"))
    result = {
        "tool": "scripts/site_check.py",
        **({"note": args.note} if args.note else {}),
        "browser": chromium_version(),
        "viewports": {"desktop": list(DESKTOP), "phone": list(PHONE)},
        "source_zip": zips[0] if zips else None,
        "seconds": round(time.perf_counter() - started, 1),
        "overall": overall,
        "pages": {report.page: report.as_dict() for report in reports},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf8")
    print(format_table(reports))
    print(
        f"\n{overall['pages']} pages, {overall['failing_pages']} failing, {overall['failures']} failures; "
        f"{overall['math']} formulas, {overall['images']} images, {overall['links']} links; page weight "
        f"{overall['weight_bytes']['min'] / 1e6:.2f}–{overall['weight_bytes']['max'] / 1e6:.2f} MB "
        f"(median {overall['weight_bytes']['median'] / 1e6:.2f}); written to {args.out}"
    )
    for leak in overall["leaked_paths"]:
        print(f"published file with a build path: {leak}")
    return 0 if overall["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
