"""Tests for the ``sklearn-lt demo`` command and :func:`sklearn_lt.demo.run_demo`."""

import math
import sys

import matplotlib  # noqa: F401 (the demo draws its figure with it)
import pytest

from sklearn_lt.__main__ import main
from sklearn_lt.demo import run_demo

METHODS = ["ERM", "LDAM-DRW", "LA loss", "SMOTE + ERM"]


def test_demo_quick_prints_table_and_writes_png(tmp_path, capsys):
    assert main(["demo", "--quick", "--output", tmp_path]) == 0
    out = capsys.readouterr().out
    assert "balanced acc." in out
    assert 'groups="quantile"' in out
    for method in METHODS:
        assert method in out
    png = tmp_path / "per_class_accuracy_digits.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(png) in out


def test_demo_output_png_path(tmp_path, capsys):
    target = tmp_path / "nested" / "plot.png"
    assert main(["demo", "--quick", "--epochs", "1", "--output", str(target)]) == 0
    assert target.is_file()


def test_run_demo_returns_the_table():
    results = run_demo(quick=True, epochs=2, plot=False, verbose=False)
    assert [row["method"] for row in results] == METHODS
    for row in results:
        assert set(row) == {
            "method",
            "parameters",
            "balanced_accuracy",
            "head",
            "middle",
            "tail",
            "fit_time",
        }
        for key in ("balanced_accuracy", "head", "middle", "tail"):
            assert 0.0 <= row[key] <= 1.0 and not math.isnan(row[key])
        assert row["fit_time"] > 0
    assert "reweight_schedule='drw'" in results[1]["parameters"]
    assert results[3]["parameters"].startswith("SMOTE(")


def test_run_demo_is_reproducible():
    first = run_demo(quick=True, epochs=1, model="mlp", plot=False, verbose=False)
    second = run_demo(quick=True, epochs=1, model="mlp", plot=False, verbose=False)
    key = "balanced_accuracy"
    assert [r[key] for r in first] == [r[key] for r in second]


def test_demo_without_matplotlib_skips_the_plot(tmp_path, capsys, monkeypatch):
    # A None entry in sys.modules makes `import matplotlib` raise ImportError.
    for name in [m for m in sys.modules if m.split(".")[0] == "matplotlib"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    code = main(["demo", "--quick", "--epochs", "1", "--output", str(tmp_path)])
    assert code == 0
    assert "matplotlib is not installed" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())


def test_help_documents_the_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--device",
        "--dataset",
        "--imbalance-ratio",
        "--output",
        "--epochs",
        "--seed",
        "--quick",
    ):
        assert option in out


def test_top_level_help_lists_demo(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "demo" in capsys.readouterr().out


def test_no_command_prints_usage(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err


def test_bad_dataset_name_errors_clearly(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--dataset", "cifar-10"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'cifar-10'" in err
    assert "digits" in err and "fashion-mnist" in err


def test_run_demo_bad_dataset_raises():
    with pytest.raises(ValueError, match="Unknown dataset 'cifar'"):
        run_demo(dataset="cifar", plot=False, verbose=False)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--imbalance-ratio", "0.5"], "expected a finite number >= 1"),
        (["--epochs", "0"], "expected an integer >= 1"),
        (["--model", "resnet"], "invalid choice"),
    ],
)
def test_bad_option_values_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_fashion_mnist_is_a_clear_error(tmp_path, capsys):
    code = main(["demo", "--dataset", "fashion-mnist", "--data-home", str(tmp_path)])
    assert code == 1
    err = capsys.readouterr().err
    assert "Fashion-MNIST not found" in err
    assert "dataset-fashion-mnist" in err


def test_unavailable_device_is_a_clear_error(capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["demo", "--quick", "--device", "cuda", "--no-plot"]) == 1
    assert "CUDA is not available" in capsys.readouterr().err


def test_ratio_leaving_a_single_tail_example_is_rejected(capsys):
    assert main(["demo", "--imbalance-ratio", "100", "--no-plot"]) == 1
    assert "SMOTE needs at least 2" in capsys.readouterr().err


def test_output_with_another_suffix_is_rejected(tmp_path, capsys):
    target = tmp_path / "plot.jpg"
    assert main(["demo", "--quick", "--output", str(target)]) == 1
    assert "must be a .png file or a directory" in capsys.readouterr().err
