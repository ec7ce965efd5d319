"""The generated sections of ``docs/benchmarks.md``.

Each benchmark writes its tables to ``benchmarks/results/<name>.md``;
:func:`update_docs` puts them between the markers ``<!-- BEGIN <name> -->``
and ``<!-- END <name> -->`` of ``docs/benchmarks.md``, leaving the text
outside the markers (the discussion) alone.
"""

import re

from _common import REPO_ROOT, RESULTS_DIR

DOCS = REPO_ROOT / "docs" / "benchmarks.md"
_IMAGE = re.compile(r"(!\[[^\]]*\]\()([^)/:]+\.png\))")


def _markers(name):
    return f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"


def _for_docs(text):
    """Point image links of a result file at benchmarks/results/ from docs/."""
    prefix = RESULTS_DIR.relative_to(REPO_ROOT)
    return _IMAGE.sub(rf"\g<1>../{prefix.as_posix()}/\g<2>", text)


def update_docs(sections, path=DOCS):
    """Replace (or append) the generated sections ``{name: markdown}``."""
    document = path.read_text() if path.exists() else "# Benchmarks\n"
    for name, text in sections.items():
        begin, end = _markers(name)
        block = f"{begin}\n{_for_docs(text).strip()}\n{end}"
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
        if pattern.search(document):
            document = pattern.sub(lambda _, block=block: block, document)
        else:
            document = document.rstrip() + f"\n\n{block}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document)
