"""Model selection over LongTailClassifier on a dask.distributed cluster.

scikit-learn parallelizes GridSearchCV and cross_validate with joblib; joblib's
"dask" backend sends each fit to a worker of a dask.distributed cluster. Here
the cluster is a real LocalCluster of two worker processes on the loopback
interface, the same code path as a multi-machine cluster reached with
``Client("tcp://scheduler:8786")``.
"""

import os
import sys

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate

from sklearn_lt import LongTailClassifier
from sklearn_lt.datasets import make_long_tailed_classification

distributed = pytest.importorskip("distributed")
pytest.importorskip("dask")
joblib = pytest.importorskip("joblib")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        # The scheduler serves HTTP (health, metrics; the dashboard when bokeh
        # is installed) even without a dashboard: a free loopback port avoids
        # clashing with another cluster on the default port 8787.
        dashboard_address="127.0.0.1:0",
        worker_dashboard_address=None,
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(scope="module")
def data():
    X, y = make_long_tailed_classification(
        n_classes=4, n_features=8, n_max=120, imbalance_ratio=10, random_state=0
    )
    labels = np.array(["ant", "bee", "cat", "dog"])
    return X, labels[y]


def _estimator(**params):
    return LongTailClassifier(
        hidden_layer_sizes=(32,), max_epochs=5, random_state=0, device="cpu", **params
    )


def test_grid_search_on_dask_matches_sequential(client, data):
    X, y = data
    grid = {"loss": ["ce", "ldam"], "max_margin": [0.3, 0.5]}
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)

    with joblib.parallel_backend("dask"):
        distributed_search = GridSearchCV(
            _estimator(reweight_schedule="drw"),
            grid,
            scoring="balanced_accuracy",
            cv=cv,
            n_jobs=-1,
        ).fit(X, y)
    sequential_search = GridSearchCV(
        _estimator(reweight_schedule="drw"), grid, scoring="balanced_accuracy", cv=cv
    ).fit(X, y)

    # The fits ran in the worker processes, which had to import sklearn_lt.
    imported = client.run(lambda: "sklearn_lt.classifiers" in sys.modules)
    assert len(imported) == 2 and any(imported.values())
    np.testing.assert_allclose(
        distributed_search.cv_results_["mean_test_score"],
        sequential_search.cv_results_["mean_test_score"],
    )
    assert distributed_search.best_params_ == sequential_search.best_params_
    assert set(distributed_search.predict(X)) <= set(y)


def test_cross_validate_on_dask(client, data):
    X, y = data
    with joblib.parallel_backend("dask"):
        results = cross_validate(
            _estimator(loss="logit_adjusted"),
            X,
            y,
            cv=StratifiedKFold(n_splits=3, shuffle=True, random_state=0),
            scoring=["balanced_accuracy", "f1_macro"],
            return_estimator=True,
            n_jobs=-1,
        )
    assert results["test_balanced_accuracy"].shape == (3,)
    assert np.all(results["test_balanced_accuracy"] > 0.25)
    # Fitted estimators come back from the workers and predict here.
    for estimator in results["estimator"]:
        assert estimator.class_counts_.sum() > 0
        assert estimator.predict(X[:3]).shape == (3,)


def test_fits_run_on_the_workers(client, data):
    X, y = data

    def fit_and_report(X, y):
        clf = _estimator(loss="ce").fit(X, y)
        return os.getpid(), clf.device_.type

    futures = [client.submit(fit_and_report, X, y, pure=False) for _ in range(4)]
    results = client.gather(futures)
    worker_pids = set(client.run(os.getpid).values())
    assert len(worker_pids) == 2 and os.getpid() not in worker_pids
    assert {pid for pid, _ in results} <= worker_pids
    assert {device for _, device in results} == {"cpu"}
