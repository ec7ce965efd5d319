"""Copy the benchmark result tables into ``docs/benchmarks.md``.

Each suite writes ``benchmarks/results/<suite>.md``; this script puts each file
between the markers ``<!-- BEGIN <suite> -->`` and ``<!-- END <suite> -->`` of
``docs/benchmarks.md``, leaving the text outside the markers (the discussion)
alone. The suites call it at the end of a full run; run it by hand to rebuild
``accuracy.md`` from the per-suite ``accuracy_<suite>.json`` files and copy
the sections again:

    python benchmarks/report.py
"""

import sys

from _common import REPO_ROOT, RESULTS_DIR
from _docs import DOCS, update_docs

SUITES = ("accuracy", "speed")


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
