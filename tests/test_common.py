"""scikit-learn's estimator checks for every public estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_lt import (
    LongTailClassifier,
    LongTailImageClassifier,
)
from sklearn_lt.losses import LOSSES
from sklearn_lt.schedules import REWEIGHT_SCHEDULES

# Stochastic mini-batch training visits a repeated example twice per epoch in
# different batches, while a weight of 2 scales its gradient inside one batch, so
# the two fits follow different optimization paths. scikit-learn excuses
# SGDClassifier from this check for the same reason.
STOCHASTIC_TRAINING = {
    check: "mini-batch SGD: weighting an example is not the same as repeating it"
    for check in (
        "check_sample_weight_equivalence_on_dense_data",
        "check_sample_weight_equivalence_on_sparse_data",
    )
}


def _estimators():
    fast = {"max_epochs": 8, "random_state": 0}
    for loss in LOSSES:
        for schedule in (None, "drw"):
            yield LongTailClassifier(loss=loss, reweight_schedule=schedule, **fast)
    for schedule in sorted(set(REWEIGHT_SCHEDULES) - {"drw"}):
        yield LongTailClassifier(loss="ldam", reweight_schedule=schedule, **fast)
    yield LongTailClassifier(validation_fraction=0.2, n_iter_no_change=3, **fast)
    yield LongTailClassifier(loss="ce", posthoc_tau=1.0, tau_norm=1.0, **fast)
    yield LongTailClassifier(prediction_prior="train", **fast)
    yield LongTailClassifier(
        loss="ce", reweight_schedule="drw", optimizer="sam", **fast
    )
    yield LongTailClassifier(
        loss="ldam",
        reweight_schedule="drw",
        optimizer="sam",
        sam_tail_only=True,
        **fast,
    )
    yield LongTailClassifier(loss="ldam", sample_attention=5.0, **fast)
    yield LongTailClassifier(loss="ce", classifier_retraining="crt", **fast)
    yield LongTailClassifier(
        loss="ldam", reweight_schedule="drw", classifier_retraining="lws", **fast
    )
    yield LongTailClassifier(loss="sigmoid", classifier_retraining="marc", **fast)
    yield LongTailClassifier(mixup="mixup", **fast)
    yield LongTailClassifier(
        loss="ldam", reweight_schedule="drw", mixup="mixup", **fast
    )
    yield LongTailImageClassifier(architecture="cnn", **fast)
    yield LongTailImageClassifier(
        architecture="cnn", loss="ldam", reweight_schedule="drw", **fast
    )
    yield LongTailImageClassifier(
        architecture="cnn", classifier_retraining="crt", **fast
    )
    yield LongTailImageClassifier(architecture="cnn", mixup="cutmix", **fast)
    yield LongTailImageClassifier(architecture="cnn", mixup="cmo", **fast)
    # ResNet-32 on the checks' 1 x d "images" needs a few more steps to fit.
    yield LongTailImageClassifier(
        architecture="resnet32",
        loss="ldam",
        reweight_schedule="drw",
        max_epochs=20,
        random_state=0,
    )


@parametrize_with_checks(
    list(_estimators()), expected_failed_checks=lambda est: STOCHASTIC_TRAINING
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
