"""Checks of the prediction options against each other and the trained model.

``posthoc_tau``, ``prediction_prior`` and ``tau_norm`` can be changed after
fitting, so the classifiers check them both in ``fit`` and at prediction time.
"""

from ._retraining import check_retraining_options

__all__ = ["check_prediction_options"]


def check_prediction_options(estimator, criterion, retraining=None):
    """Refuse prediction options that count the class prior twice.

    Parameters
    ----------
    estimator : BaseLongTailClassifier
        Provides ``posthoc_tau``, ``prediction_prior`` and ``tau_norm``.
    criterion : torch.nn.Module
        The stage-1 loss.
    retraining : {"crt", "lws", "marc"} or None, default=None
        The second stage (``classifier_retraining``) the model has or will have.
    """
    posthoc_tau = estimator.posthoc_tau
    if posthoc_tau and estimator.prediction_prior is not None:
        raise ValueError(
            f"posthoc_tau={posthoc_tau} and prediction_prior="
            f"{estimator.prediction_prior!r} both set the prior that predictions "
            "target; use one of them (posthoc_tau=1 is prediction_prior="
            "'balanced' for loss='ce')."
        )
    if posthoc_tau and getattr(criterion, "prior_adjusted", False):
        raise ValueError(
            f"posthoc_tau={posthoc_tau} adjusts the logits of a model "
            f"trained without the class prior, but {type(criterion).__name__} "
            "already trains with it: adjusting again double-counts the prior "
            "(Menon et al., 2021, section 5.3). Use posthoc_tau=0 with this "
            "loss, or loss='ce' with posthoc_tau."
        )
    check_retraining_options(retraining, posthoc_tau, estimator.tau_norm)
