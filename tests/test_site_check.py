"""The browser check of the built site (scripts/site_check.py) and the site's Sphinx extension
(book/_ext/site_source.py): their pure parts always, the browser on a tiny site where Chromium is installed."""

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


site_check = load("site_check", REPO / "scripts" / "site_check.py")
site_source = load("site_source", REPO / "book" / "_ext" / "site_source.py")


# --- scripts/site_check.py ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "alt, expected",
    [
        (None, True),
        ("", True),
        ("  ", True),
        ("../_images/507f3a.png", True),
        ("figure.SVG", True),
        ("Histogram of ARI, model against corpus", False),
        ("Two panels: log Z against λ.", False),
    ],
)
def test_alt_text_that_is_a_file_name(alt, expected):
    assert site_check.is_file_name(alt) is expected


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://localhost:8000/notebooks/05_mbar.html", True),
        ("http://127.0.0.1:9/x.js", True),
        ("data:image/png;base64,AAAA", True),
        ("about:blank", True),
        ("https://unpkg.com/thebe@0.8.2/lib/index.js", False),
        ("https://doi.org/10.1063/1.2978177", False),
    ],
)
def test_local_urls(url, expected):
    assert site_check.is_local(url) is expected


def test_error_lines_find_tracebacks_and_raised_errors_only():
    output = (
        "MBAR: exact inside the 96% interval at 12/12 thresholds; max |log10 error| 0.1\n"
        'Traceback (most recent call last):\n  File "x.py", line 1\n'
        "AssertionError: the exact tail lies inside MBAR's 96% intervals\n"
    )
    assert site_check.error_lines(output) == ["Traceback (most recent call last)", "AssertionError:"]
    assert site_check.error_lines("relative error 0.02; no Error here in the middle of a line") == []


def test_anchors_and_link_targets(tmp_path):
    assert site_check.anchors_of('<h1 id="top">T</h1><a name="old"></a><p id="">x</p>') == {"top", "old"}
    base = "http://localhost:8000/"
    assert site_check.link_target(base + "notebooks/a.html#fig-1", base, tmp_path) == (
        tmp_path / "notebooks" / "a.html",
        "fig-1",
    )
    assert site_check.link_target(base + "book/", base, tmp_path) == (tmp_path / "book" / "index.html", "")
    assert site_check.link_target("https://arxiv.org/abs/2410.02724", base, tmp_path) is None
    assert site_check.link_target("http://localhost:9999/other.html", base, tmp_path) is None


def test_site_pages_leave_out_the_theme_and_downloads(tmp_path):
    for page in ["index.html", "book/intro.html", "_static/x.html", "_sources/a.html", "_executed/n.html"]:
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / page).write_text("<html></html>")
    assert site_check.site_pages(tmp_path) == ["book/intro.html", "index.html"]


def test_leaked_build_paths(tmp_path):
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "05_mbar.err.log").write_text('File "/work/repo/rarelib/x.py", line 3')
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "theme.js").write_text("/work/repo")  # the theme's files are not the book's
    (tmp_path / "page.html").write_text("<p>clean</p>")
    assert site_check.leaked_paths(tmp_path, ["/work/repo"]) == ["reports/05_mbar.err.log contains /work/repo"]


def test_summary_and_table():
    good = site_check.PageReport("a.html", weight_bytes=2_000_000, math=3, images=1, links=5)
    bad = site_check.PageReport("b.html", failures=["broken link: c.html"], weight_bytes=1_000_000)
    overall = site_check.summarise([good, bad])
    assert overall["ok"] is False and overall["pages"] == 2 and overall["failing_pages"] == 1
    assert overall["weight_bytes"] == {"min": 1_000_000, "median": 1_500_000, "max": 2_000_000}
    assert site_check.summarise([good])["ok"] is True and site_check.summarise([])["ok"] is False
    table = site_check.format_table([good, bad])
    assert "FAIL (1)" in table and "broken link: c.html" in table


# --- book/_ext/site_source.py -------------------------------------------------------------------------------


def test_version_and_archive_name():
    assert site_source.read_version('"""Doc."""\n__version__ = "0.1.0"\n') == "0.1.0"
    with pytest.raises(ValueError, match="__version__"):
        site_source.read_version("version = 1")
    assert site_source.archive_name("0.1.0", "747c933", dirty=False) == "rarelib-compendium-0.1.0-g747c933.zip"
    assert site_source.archive_name("0.1.0", "747c933", dirty=True).endswith("-g747c933-dirty.zip")
    assert site_source.read_version((REPO / "rarelib" / "__init__.py").read_text()) != ""


def test_launch_buttons_follow_the_repository_url():
    buttons = {"binderhub_url": "https://mybinder.org", "thebe": True}
    without = site_source.launch_settings({"repository_url": "", "launch_buttons": buttons})
    assert without["launch_buttons"] == {} and without["use_repository_button"] is False
    assert not site_source.wants_thebe(without)
    url = "https://github.com/example/compendium"
    with_url = site_source.launch_settings({"repository_url": url, "launch_buttons": buttons})
    assert with_url["launch_buttons"] == buttons and with_url["use_repository_button"] is True
    assert site_source.wants_thebe(with_url)


def test_each_script_once():
    from sphinx.builders.html._assets import _JavaScript

    body = 'const THEBE_JS_URL = "x"'
    scripts = [
        _JavaScript("a.js"),
        _JavaScript(None, body=body),
        _JavaScript("a.js"),
        _JavaScript(None, body=body),
        _JavaScript("b.js", defer="defer"),
    ]
    assert site_source.unique_scripts(scripts) == [scripts[0], scripts[1], scripts[4]]


def test_index_page_is_a_real_page():
    page = site_source.index_page("Rare <Events>", "book/intro.html", "_static/favicon.svg")
    assert "<title>Rare &lt;Events&gt;</title>" in page and 'href="book/intro.html"' in page
    assert 'rel="icon"' in page and 'lang="en"' in page


def test_source_archive_outside_git_is_none(tmp_path):
    assert site_source.source_archive(tmp_path) is None


# --- the browser, on a tiny site ----------------------------------------------------------------------------

browser_missing = (
    not Path(site_check.CHROMIUM).exists()
    or not Path(site_check.CHROMEDRIVER).exists()
    or importlib.util.find_spec("selenium") is None
)


@pytest.mark.skipif(
    browser_missing,
    reason="needs /usr/bin/chromium, /usr/bin/chromedriver and selenium (`make site-check` installs them)",
)
def test_browser_finds_what_a_reader_would_meet(tmp_path):
    site = tmp_path / "html"
    (site / "_images").mkdir(parents=True)
    shutil.copy(REPO / "book" / "_static" / "favicon.svg", site / "_images" / "plot.svg")
    head = '<head><meta charset="utf-8"><link rel="icon" href="data:,"><title>t</title></head>'
    (site / "index.html").write_text(
        f'<!DOCTYPE html><html lang="en">{head}<body><h1 id="top">Fine</h1>'
        '<img src="_images/plot.svg" alt="A curve falling from left to right"><a href="#top">up</a>'
        '<a href="bad.html">a page</a></body></html>'
    )
    (site / "bad.html").write_text(
        f'<!DOCTYPE html><html lang="en">{head}<body><img src="_images/plot.svg" alt="plot.svg">'
        '<a href="index.html#nowhere">x</a><a href="missing.html">y</a>'
        '<div class="cell_output"><div class="output stream">AssertionError: no</div></div>'
        '<script>console.error("boom")</script><img src="https://example.org/x.png" alt="outside"></body></html>'
    )
    out = tmp_path / "site_check.json"
    assert site_check.main(["--site", str(site), "--out", str(out)]) == 1
    result = json.loads(out.read_text())
    assert result["pages"]["index.html"]["ok"], result["pages"]["index.html"]
    failures = "\n".join(result["pages"]["bad.html"]["failures"])
    for expected in [
        "console error",
        "request to a non-local host",
        "image without real alt text",
        "broken anchor: index.html#nowhere",
        "broken link: missing.html",
        "error in an output",
    ]:
        assert expected in failures
    assert result["overall"]["pages"] == 2 and result["overall"]["failing_pages"] == 1
