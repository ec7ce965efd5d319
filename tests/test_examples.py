"""Run every example of the gallery (``examples/plot_*.py``) in quick mode."""

import os
import runpy
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("plot_*.py"))


def test_examples_are_found():
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_example_runs(path, monkeypatch, capsys):
    matplotlib = pytest.importorskip("matplotlib")
    pytest.importorskip("pandas")
    threadpoolctl = pytest.importorskip("threadpoolctl")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setenv("SKLEARN_LT_EXAMPLES_QUICK", "1")
    # plt.show() is a no-op for the Agg backend, with a warning we do not need.
    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: None)
    monkeypatch.chdir(path.parent)
    try:
        # One BLAS/OpenMP thread, as torch in conftest.py: the examples' models
        # are small, and extra threads only slow them down on a busy machine.
        with threadpoolctl.threadpool_limits(limits=1):
            runpy.run_path(os.fspath(path), run_name="__main__")
    finally:
        plt.close("all")
    assert capsys.readouterr().out.strip()
