"""Run every example of the gallery (``examples/plot_*.py``) in quick mode."""

import os
import runpy
from pathlib import Path

import matplotlib
import pandas  # noqa: F401 (the examples use it)
import pytest
import threadpoolctl

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("plot_*.py"))


def test_examples_are_found():
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_example_runs(path, monkeypatch, capsys):
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


MODULES = [
    "classifiers",
    "losses",
    "weights",
    "schedules",
    "modules",
    "augmentation",
    "datasets",
    "metrics",
    "posthoc",
    "label_shift",
    "plotting",
    "persistence",
    "demo",
]


def test_api_reference_lists_every_public_name():
    """docs/api.rst names every export of the package and of its modules."""
    import importlib
    import re

    import sklearn_lt

    api = (Path(__file__).parents[1] / "docs" / "api.rst").read_text()
    listed = set(re.findall(r"^   (\w+)$", api, flags=re.MULTILINE))
    linked = set(re.findall(r"~sklearn_lt\.(\w+)`", api))
    missing = sorted(
        name
        for name in sklearn_lt.__all__
        if name != "__version__" and name not in listed
    )
    for module_name in MODULES:
        module = importlib.import_module(f"sklearn_lt.{module_name}")
        assert f".. automodule:: sklearn_lt.{module_name}" in api
        missing += [
            f"{module_name}.{name}"
            for name in module.__all__
            if name not in listed
            and not (name in sklearn_lt.__all__ and name in linked)
        ]
    assert not missing, f"add to docs/api.rst: {missing}"
