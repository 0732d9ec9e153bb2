"""The compendium's site as a reader meets it: the source to re-run it, and nothing the reader cannot use.

A small Sphinx extension, loaded by ``_config.yml`` (``sphinx.local_extensions``):

* packs the repository's tracked files (``git archive`` of the working tree) as a versioned zip,
  ``_source/rarelib-compendium-<version>-g<commit>.zip``, into the site, and writes each chapter's
  *executed* notebook (from the execution cache, or MyST-NB's ``_build/jupyter_execute``) to
  ``_executed/`` where it has outputs;
* adds both to every page's download menu, next to the bare notebook, and offers the zip's link to
  the prose as the MyST substitution ``{{ source_zip }}``;
* launch buttons (Binder, Colab) follow the one ``repository.url`` setting: without it there is no
  launch button and no Thebe script (sphinx-thebe's event handlers are disconnected); scripts that a
  page would include twice are included once;
* moves MyST-NB's execution reports (``reports/*.err.log``, with absolute paths) out of the site;
* replaces the bare redirect ``index.html`` by a page that says where the book starts.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

SOURCE_DIR = "_source"
EXECUTED_DIR = "_executed"
ARCHIVE_STEM = "rarelib-compendium"


@dataclass(frozen=True)
class SourceArchive:
    """What ``git archive`` packs: the tree (a commit id) and the zip's file name."""

    tree: str
    name: str


def read_version(init_text: str) -> str:
    """The ``__version__ = "..."`` string of a package's ``__init__.py``; ValueError if absent."""
    match = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", init_text, flags=re.M)
    if match is None:
        raise ValueError('no __version__ = "..." line in rarelib/__init__.py')
    return match.group(1)


def archive_name(version: str, commit: str, dirty: bool) -> str:
    """Versioned zip name, e.g. ``rarelib-compendium-0.1.0-g747c933.zip`` (``-dirty`` if uncommitted)."""
    return f"{ARCHIVE_STEM}-{version}-g{commit}{'-dirty' if dirty else ''}.zip"


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


def source_archive(root: Path) -> SourceArchive | None:
    """The tree to pack and its name; None where ``root`` is not a git checkout (e.g. an unpacked zip)."""
    try:
        if Path(_git(root, "rev-parse", "--show-toplevel")).resolve() != root.resolve():
            return None  # unpacked inside some other repository
        commit = _git(root, "rev-parse", "--short=7", "HEAD")
        # `git stash create` records uncommitted changes to tracked files as a commit without touching
        # the working tree; it prints nothing when there are none.
        stash = _git(root, "stash", "create")
    except (OSError, subprocess.CalledProcessError):
        return None
    version = read_version((root / "rarelib" / "__init__.py").read_text(encoding="utf8"))
    return SourceArchive(tree=stash or "HEAD", name=archive_name(version, commit, dirty=bool(stash)))


def launch_settings(theme_options: dict) -> dict:
    """Theme options with launch and repository buttons only where ``repository_url`` is set."""
    options = dict(theme_options)
    has_repository = bool(options.get("repository_url"))
    if not has_repository:
        options["launch_buttons"] = {}
    options["use_repository_button"] = has_repository
    return options


def wants_thebe(theme_options: dict) -> bool:
    return bool(theme_options.get("repository_url")) and bool(theme_options.get("launch_buttons", {}).get("thebe"))


def unique_scripts(scripts: list) -> list:
    """Scripts in order, each once (equal filename, priority and attributes, inline body included)."""
    seen, kept = set(), []
    for script in scripts:
        key = (str(getattr(script, "filename", script)), tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    return kept


def index_page(title: str, start: str, icon: str | None = None) -> str:
    """A small real page at the site's root that sends the reader to the first page of the book."""
    title, start = html.escape(title), html.escape(start, quote=True)
    icon_link = f'<link rel="icon" href="{html.escape(icon, quote=True)}">\n' if icon else ""
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{title}</title>\n{icon_link}'
        f'<meta http-equiv="refresh" content="0; url={start}">\n<link rel="canonical" href="{start}">\n'
        f'</head>\n<body>\n<h1>{title}</h1>\n<p>The book starts at <a href="{start}">its introduction</a>.</p>\n'
        f"</body>\n</html>\n"
    )


# --- Sphinx events -------------------------------------------------------------------------------------------


def _on_config_inited(app, config):
    config.html_theme_options = launch_settings(config.html_theme_options)
    app.site_thebe = wants_thebe(config.html_theme_options)
    if not app.site_thebe:
        for listeners in app.events.listeners.values():
            for listener in list(listeners):
                if getattr(listener.handler, "__module__", "").startswith("sphinx_thebe"):
                    app.disconnect(listener.id)
    archive = source_archive(Path(app.srcdir))
    app.site_source_archive = archive
    if archive is None:
        logger.info("[site_source] not a git checkout: the site carries no source zip")
        link = "the source archive (not packed: this build did not run in a git checkout)"
    else:
        link = f'<a href="../{SOURCE_DIR}/{archive.name}" download>{archive.name}</a>'
    config.myst_substitutions = {**config.myst_substitutions, "source_zip": link}


def has_outputs(notebook) -> bool:
    return any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")


def _executed_notebook(app, docname: str):
    """The chapter's notebook with its outputs, or None. With `execute_notebooks: cache` it comes from the
    execution cache (MyST-NB's own copy in _build/jupyter_execute lacks the outputs of a cache hit)."""
    memo = app.__dict__.setdefault("site_executed", {})
    if docname not in memo:
        import nbformat

        memo[docname] = None
        source = Path(app.env.doc2path(docname))
        if source.suffix == ".ipynb":
            candidates = []
            if app.config.nb_execution_mode == "cache":
                from jupyter_cache import get_cache

                try:
                    cache = get_cache(app.config.nb_execution_cache_path or ".jupyter_cache")
                    candidates.append(cache.merge_match_into_notebook(nbformat.read(source, as_version=4))[1])
                except KeyError:  # not in the cache (excluded from execution, or it failed)
                    pass
            written = Path(app.outdir).parent / "jupyter_execute" / f"{docname}.ipynb"
            if written.exists():
                candidates.append(nbformat.read(written, as_version=4))
            memo[docname] = next((nb for nb in candidates if has_outputs(nb)), None)
    return memo[docname]


def _on_page_context(app, pagename, templatename, context, doctree):
    if "script_files" in context:
        context["script_files"] = unique_scripts(context["script_files"])
    if not getattr(app, "site_thebe", True) and "css_files" in context:  # its stylesheet was added at setup
        context["css_files"] = [
            css for css in context["css_files"] if "sphinx-thebe" not in str(getattr(css, "filename", css))
        ]
    group = next(
        (button for button in context.get("header_buttons", []) if button.get("label") == "download-buttons"), None
    )
    if group is None:
        return
    pathto = context["pathto"]
    extra = []
    for button in group["buttons"]:
        if button.get("text") == ".ipynb":
            button["tooltip"] = "Download the notebook (without outputs)"
    if context.get("page_source_suffix") == ".ipynb" and _executed_notebook(app, pagename) is not None:
        extra.append(
            {
                "type": "link",
                "url": pathto(f"{EXECUTED_DIR}/{pagename}.ipynb", 1),
                "text": ".ipynb, executed",
                "icon": "fas fa-book-open",
                "tooltip": "Download the executed notebook (with outputs)",
                "label": "download-executed-button",
            }
        )
    archive = getattr(app, "site_source_archive", None)
    if archive is not None:
        extra.append(
            {
                "type": "link",
                "url": pathto(f"{SOURCE_DIR}/{archive.name}", 1),
                "text": "source .zip",
                "icon": "fas fa-file-zipper",
                "tooltip": "Download the compendium's source, to re-run the book with make book",
                "label": "download-compendium-button",
            }
        )
    pdf = next((i for i, button in enumerate(group["buttons"]) if button.get("text") == ".pdf"), len(group["buttons"]))
    group["buttons"][pdf:pdf] = extra


def _on_build_finished(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    reports = outdir / "reports"
    if reports.exists():  # execution tracebacks with absolute paths: for the developer, not for the site
        target = outdir.parent / "reports"
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(str(reports), str(target))
        logger.info(f"[site_source] execution reports moved out of the site to {target}")
    executed = outdir / EXECUTED_DIR
    shutil.rmtree(executed, ignore_errors=True)
    import nbformat

    for docname in sorted(app.env.found_docs):
        notebook = _executed_notebook(app, docname)
        if notebook is not None:
            (executed / docname).parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, executed / f"{docname}.ipynb")
    archive = app.site_source_archive
    if archive is not None:
        folder = outdir / SOURCE_DIR
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        prefix = archive.name.removesuffix(".zip") + "/"
        _git(
            Path(app.srcdir),
            "archive",
            "--format=zip",
            f"--prefix={prefix}",
            "-o",
            str(folder / archive.name),
            archive.tree,
        )
        logger.info(f"[site_source] source packed as {SOURCE_DIR}/{archive.name}")
    root = app.config.root_doc
    if root != "index":
        favicon = app.config.html_favicon
        icon = f"_static/{Path(favicon).name}" if favicon and "://" not in favicon else favicon
        (outdir / "index.html").write_text(index_page(app.config.project, f"{root}.html", icon), encoding="utf8")


def setup(app):
    app.connect("config-inited", _on_config_inited, priority=900)
    app.connect("html-page-context", _on_page_context, priority=900)
    app.connect("build-finished", _on_build_finished, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
