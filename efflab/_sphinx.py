"""A small Sphinx extension for the efflab book (loaded from ``_config.yml``; not part of the library's API).

Notebook Markdown is written in a dialect that also reads cleanly in Colab and JupyterLab, which render no MyST
directives (``tests/test_markdown_dialect.py`` enforces it). A chapter's takeaway is a plain block quote whose first
line is ``**Takeaway**``; here, in the book only, it becomes the tip box it used to be written as
(``:::{admonition} Takeaway``), which Colab showed as raw text. Widgets are saved with their state, so the book shows
them, but no kernel answers their controls: each gets a note saying it is a snapshot and how to make it live, and its
controls are made inert so that nothing looks draggable.

Fixes for what a reader's browser reported, each applied to the scripts of a page before it is written (the search
page's snippets also leave code cells out, see ``SEARCH_SNIPPETS_WITHOUT_CODE``):

- sphinx-thebe registers its inline configuration script once per ``env-before-read-docs`` event, and under Jupyter
  Book 1 that event can fire twice, so every page declared ``const THEBE_JS_URL`` twice ("Uncaught SyntaxError:
  Identifier 'THEBE_JS_URL' has already been declared"). Exact duplicate script entries are dropped.
- The ipywidgets HTML manager finds its icon fonts from the AMD module id it defines itself,
  ``@jupyter-widgets/html-manager/dist/embed-amd``, which RequireJS resolves against the page's folder, so every widget
  page requested six fonts at ``chapters/@jupyter-widgets/html-manager/dist/…`` and got 404. A RequireJS ``paths``
  entry, written just before the manager's script, points that id at the copy under ``_static``.
- The ipywidgets HTML manager typesets widget labels with the MathJax 2 call ``MathJax.Hub.Queue``; the book loads
  MathJax 3, which has no ``Hub`` ("TypeError: Cannot read properties of undefined (reading 'Queue')" once per
  widget). A small shim, placed right after the page's MathJax configuration, gives MathJax 3 a ``Hub.Queue`` that
  typesets the element with ``MathJax.typesetPromise``; calls made before MathJax has started are queued until then.
"""

from __future__ import annotations

# Runs after `window.MathJax = {...config...}` and before the deferred MathJax script.
MATHJAX2_HUB_SHIM = """(function () {
  var config = window.MathJax = window.MathJax || {};
  var pending = [];
  function typeset(job) {
    var element = job && job[2];
    return window.MathJax.typesetPromise(element ? [element] : undefined).catch(function () {});
  }
  config.Hub = {Queue: function (job) { pending.push(job); }};
  config.startup = config.startup || {};
  config.startup.ready = function () {
    window.MathJax.startup.defaultReady();
    window.MathJax.Hub = {Queue: typeset};
    window.MathJax.startup.promise.then(function () { pending.splice(0).forEach(typeset); });
  };
})();"""


HTML_MANAGER = "/html-manager/embed-amd.js"  # as _config.yml's nb_ipywidgets_js names it, under _static
HTML_MANAGER_ID = "@jupyter-widgets/html-manager/dist"  # the folder of the AMD module id embed-amd.js defines


# On the search page: a result's snippet is cut from the page's text around the first match, and code cells come first
# on most pages, so snippets showed import lines. Sphinx's searchtools has no option for it; this drops code cells
# (inputs only: outputs are the page's results) from the text the snippets are cut from.
SEARCH_SNIPPETS_WITHOUT_CODE = """document.addEventListener("DOMContentLoaded", function () {
  if (typeof Search === "undefined" || !Search.htmlToText) return;
  var original = Search.htmlToText;
  Search.htmlToText = function (htmlString, anchor) {
    var page = new DOMParser().parseFromString(htmlString, "text/html");
    page.querySelectorAll(".cell_input, .efflab-snapshot").forEach(function (el) { el.remove(); });
    return original(page.documentElement.outerHTML, anchor);
  };
});"""


def _fix_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        # the same inline script arrives once with filename None and once with "": compare what reaches the page
        attributes = tuple(sorted(getattr(script, "attributes", {}).items()))
        key = (getattr(script, "filename", script) or "", attributes)
        if key in seen:
            continue
        seen.add(key)
        filename = str(getattr(script, "filename", "") or "").split("?")[0]  # "_static/…", themes may add "?v=…"
        if filename.endswith(HTML_MANAGER) and "pathto" in context:
            folder = context["pathto"](filename.rsplit("/", 1)[0], 1)
            paths = f'requirejs.config({{paths: {{"{HTML_MANAGER_ID}": "{folder}"}}}});'
            unique.append(type(script)(None, priority=script.priority, body=paths))
        unique.append(script)
        if str(getattr(script, "attributes", {}).get("body", "")).startswith("window.MathJax ="):
            unique.append(type(script)(None, priority=script.priority, body=MATHJAX2_HUB_SHIM))
    if pagename == "search" and unique:
        unique.append(type(unique[0])(None, priority=900, body=SEARCH_SNIPPETS_WITHOUT_CODE))
    context["script_files"] = unique


TAKEAWAY = "Takeaway"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# Shown above every widget in the book: the saved state renders, but no kernel answers the controls. The style makes
# the controls inert (no handle moves, so nothing looks live) and marks them as a picture.
SNAPSHOT_NOTE = (
    "<style>.efflab-static-widget .jupyter-widgets{pointer-events:none;opacity:.8}"
    ".efflab-snapshot{font-size:.9em;color:var(--pst-color-text-muted,#555);margin:.25em 0}</style>"
    '<p class="efflab-snapshot">&#128247; A snapshot of these controls as the page was built: in the book they do not '
    "respond. To use them, open this page in Colab (the badge at the top of the page) or run it in JupyterLab after "
    "<code>make install</code>.</p>"
)


def _takeaways(app, doctree) -> None:
    """Block quotes opening with a bold "Takeaway" paragraph become tip admonitions titled "Takeaway"."""
    from docutils import nodes

    for quote in list(doctree.findall(nodes.block_quote)):
        first = quote.children[0] if quote.children else None
        if not isinstance(first, nodes.paragraph):
            continue
        parts = [c for c in first.children if not (isinstance(c, nodes.Text) and not c.astext().strip())]
        if len(parts) != 1 or not isinstance(parts[0], nodes.strong) or parts[0].astext().strip() != TAKEAWAY:
            continue
        box = nodes.admonition(classes=["admonition-takeaway", "tip"])
        box += nodes.title(text=TAKEAWAY)
        box.extend(child.deepcopy() for child in quote.children[1:])
        quote.replace_self(box)


def _static_widgets(app, doctree) -> None:
    """Every saved widget view gets a note that it is a snapshot, and its output container a class that makes it inert."""
    from docutils import nodes

    for raw in list(doctree.findall(nodes.raw)):
        if WIDGET_VIEW not in raw.astext() or "html" not in raw.get("format", ""):
            continue
        parent = raw.parent
        if "efflab-static-widget" not in parent["classes"]:
            parent["classes"].append("efflab-static-widget")
        parent.insert(parent.index(raw), nodes.raw("", SNAPSHOT_NOTE, format="html"))


def _drop_unloaded_assets(app, exception) -> None:
    """Remove what themes copy into ``_static`` that no page loads: source maps and message catalogues (3.4 MB)."""
    import shutil
    from pathlib import Path

    if exception is not None or app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    for path in static.rglob("*.map"):
        path.unlink()
    shutil.rmtree(static / "locales", ignore_errors=True)


def setup(app):
    app.connect("build-finished", _drop_unloaded_assets)
    app.connect("doctree-read", _takeaways)
    app.connect("doctree-read", _static_widgets)
    app.connect("html-page-context", _fix_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
