"""A small Sphinx extension for the efflab book (loaded from ``_config.yml``; not part of the library's API).

sphinx-thebe registers its inline configuration script once per ``env-before-read-docs`` event, and under Jupyter
Book 1 that event can fire twice, so every page declared ``const THEBE_JS_URL`` twice and the browser reported
"Uncaught SyntaxError: Identifier 'THEBE_JS_URL' has already been declared". Dropping exact duplicate script entries
before each page is written fixes that without touching the extension.
"""

from __future__ import annotations


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        # the same inline script arrives once with filename None and once with "": compare what reaches the page
        attributes = tuple(sorted(getattr(script, "attributes", {}).items()))
        key = (getattr(script, "filename", script) or "", attributes)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
