"""Copy the benchmark result tables into ``docs/benchmarks.md``.

Each suite writes ``benchmarks/results/<suite>.md``; this script puts each file
between the markers ``<!-- BEGIN <suite> -->`` and ``<!-- END <suite> -->`` of
``docs/benchmarks.md``, leaving the text outside the markers (the discussion)
alone. The suites call it at the end of a full run; run it by hand to rebuild
``accuracy.md`` from the per-suite ``accuracy_<suite>.json`` files and copy
the sections again:

    python benchmarks/report.py
"""

import re
import sys

from _common import REPO_ROOT, RESULTS_DIR

DOCS = REPO_ROOT / "docs" / "benchmarks.md"
SUITES = ("accuracy", "speed")
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


def main():
    if any(RESULTS_DIR.glob("accuracy_*.json")):
        import bench_accuracy  # rebuild accuracy.md from the per-suite files

        bench_accuracy.write_report(RESULTS_DIR)
    sections = {
        name: (RESULTS_DIR / f"{name}.md").read_text()
        for name in SUITES
        if (RESULTS_DIR / f"{name}.md").exists()
    }
    update_docs(sections)
    print(f"updated {DOCS.relative_to(REPO_ROOT)}: {', '.join(sections) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
