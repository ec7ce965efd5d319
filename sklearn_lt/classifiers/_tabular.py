"""LongTailClassifier: the estimator for tabular data (an MLP by default)."""

import numbers
from numbers import Real

import numpy as np
import scipy.sparse as sp

from .._compat import Interval, validate_data
from .._sparse import canonical_csr, column_scale
from ..modules import MLP
from ._base import BaseLongTailClassifier
from ._statistics import indicator_columns

__all__ = ["LongTailClassifier"]

#: Sparse ``X`` with at most this many features is standardized as its dense
#: form is (centered too), each batch made dense in the network: a 128-row
#: batch is then at most 2 MiB, and the first layer's forward and backward
#: pass took 1.3x the sparse kernel's time at 1% density and less from 5% on
#: (the dense weight gradient dominates both; 256 units, one CPU thread).
SPARSE_CENTERING_MAX_FEATURES = 4096


class LongTailClassifier(BaseLongTailClassifier):
    r"""Neural-network classifier for long-tailed tabular data.

    A multi-layer perceptron (or any ``torch.nn.Module``) trained with skorch on
    the losses and re-balancing schedules of the long-tail literature. Class
    counts are taken from the ``y`` of each ``fit``, so every cross-validation
    fold and every resampled pipeline gets its own margins, priors and weights.

    ``X`` may be dense or a scipy sparse matrix or array (CSR, CSC, COO...,
    converted to CSR): sparse data, such as TF-IDF features, stays sparse on
    the training device, and the first layer multiplies each sparse batch
    with a sparse kernel (see Notes).

    Parameters
    ----------
    loss : str or type, default="logit_adjusted"
        Training objective: ``"ce"``, ``"focal"``, ``"ldam"``,
        ``"logit_adjusted"``, ``"balanced_softmax"``, ``"vs"``, ``"sigmoid"``,
        ``"sigmoid_focal"`` (see :mod:`sklearn_lt.losses`), or a loss class; a
        class whose constructor takes ``class_counts`` receives them. LDAM gets a
        cosine (:class:`~sklearn_lt.modules.NormedLinear`) head automatically.
    reweight_schedule : {"reweight", "resample", "drw", "drs"} or None, default=None
        Class re-balancing over training: class-balanced weights or
        class-balanced sampling from the first epoch (``"reweight"``,
        ``"resample"``), or from ``deferral_start`` on (deferred re-weighting
        ``"drw"``, deferred re-sampling ``"drs"``). ``None`` trains on the data
        as given.
    deferral_start : float, default=0.8
        Fraction of ``max_epochs`` before the deferred schedules switch on
        (0.8 is epoch 160 of 200, as in Cao et al.).
    beta : float, default=0.9999
        Effective-number hyperparameter of the class-balanced weights used by
        every schedule (:func:`~sklearn_lt.weights.effective_number_weights`).
    max_margin : float, default=0.5
        Largest LDAM margin (read by ``"ldam"``).
    scale : float, default=30.0
        LDAM logit scale (read by ``"ldam"``).
    tau : float, default=1.0
        Logit-adjustment temperature (read by ``"logit_adjusted"`` and ``"vs"``).
    gamma : float or None, default=None
        Focusing parameter of ``"focal"`` and ``"sigmoid_focal"`` (their default
        is 1.0) and scaling exponent of ``"vs"`` (default 0.05); ``None`` keeps the
        loss's default.
    hidden_layer_sizes : tuple of int, default=(256, 256)
        Hidden widths of the default MLP.
    dropout : float, default=0.5
        Dropout probability after each hidden layer of the default MLP
        (training only; ignored with a custom ``module``). 0.5 raised the mean
        balanced accuracy of the six real tabular sets of the benchmark from
        84.3 to 85.3 (3 seeds), most on the small and noisy ones.
    module : type or callable, default=None
        A ``torch.nn.Module`` class (or factory) replacing the MLP. It is called
        with ``module_params`` plus ``n_features``, ``n_classes`` and
        ``cosine_head`` for those its signature accepts. A last layer named
        ``head`` lets the sigmoid losses set its bias and ``tau_norm`` rescale it.
    module_params : dict, default=None
        Keyword arguments of ``module``.
    max_epochs : int or "auto", default="auto"
        Training epochs. ``"auto"`` trains about 4,000 optimizer steps, at
        least 20 and at most 200 epochs
        (:func:`~sklearn_lt.schedules.auto_epochs`): small data sets get enough
        updates and large ones no more than 20 passes. An integer is exactly
        that many epochs.
    batch_size : int, default=128
        Mini-batch size.
    optimizer : {"sgd", "sam", "adam", "adamw"}, default="sgd"
        SGD with momentum as in the papers, sharpness-aware minimization
        (``"sam"``: the same SGD step taken with the gradient at the weights
        moved ``sam_rho`` uphill; Rangwani et al., 2022), or Adam/AdamW. SAM
        computes two gradients per step, so it doubles the training time.
    lr : float, default=0.05
        Base learning rate.
    momentum : float, default=0.9
        SGD momentum.
    weight_decay : float, default=2e-4
        L2 penalty (the papers' value).
    max_grad_norm : float or None, default=10.0
        Bound on the total L2 norm of each step's gradients, which are
        rescaled when above it (``None``: no bound). On the default loss a
        step's norm stays below 10 almost always (at most 0.2% of the steps of
        the benchmark's real tabular sets), so the bound leaves ordinary
        training as it is; it stops the rare runaway step, from a row far
        outside the others, that ended training with a non-finite loss
        (``loss="ce"`` and ``sample_attention`` on the Shuttle data; see
        docs/benchmarks.md).
    sam_rho : float, default=0.05
        Radius of SAM's ascent step, ``eps = sam_rho * g / ||g||`` with one norm
        over all parameters (read by ``optimizer="sam"`` only; 0 is plain SGD).
        0.05 is Foret et al.'s default for ordinary training, a safe value with
        every loss and schedule. Rangwani et al. use larger radii with
        re-weighting, where SAM helps the tail classes most (CIFAR-10-LT:
        0.1 with CE, 0.5 with CE-DRW, 0.8 with LDAM-DRW).
    sam_tail_only : bool, default=False
        ImbSAM (Zhou et al., 2023; needs ``optimizer="sam"``): the ascent is
        computed from the loss of the tail classes only, the classes with
        fewer than 20 training examples (weighted counts with
        ``sample_weight``). Each step takes ``grad L_head(w) +
        grad L_tail(w + eps)`` with ``eps = sam_rho * g_tail / ||g_tail||``,
        where both parts keep the weighted mean over the whole batch
        (``sum_{i in part} w_i l_i / sum_i w_i``, ``w_i`` the class weight
        times ``sample_weight``, so they add up to the plain loss) and the
        tail part is doubled, as in the reference code. A batch without tail
        examples takes the plain SGD step; without tail classes, training is
        plain SGD (with the cost of SAM's second pass).
    sample_attention : float or None, default=None
        Attentional re-weighting of the examples of each mini-batch (ABSGD,
        Qi et al.): the temperature ``lam > 0`` of the attention
        ``p_i = softmax(loss_i / lam)`` over the batch, computed from the
        per-example losses (with their class weights) and detached. The batch
        loss stays a weighted mean, ``sum p_i w_i l_i / sum p_i w_i`` with
        ``w_i`` the class weight times ``sample_weight``: ``None`` (or a very
        large value) is the plain weighted mean, a small value concentrates
        on the hardest examples. ``lam`` is in units of the loss: LDAM's
        ``scale`` makes its losses about that much larger, and ``lam=1``
        then weights only a handful of examples per batch; use a larger one.
        Works with every loss, schedule and optimizer, from the first epoch
        (the paper's two-stage recipe starts it with DRW); costs nothing
        noticeable.
    mixup : {"mixup"} or None, default=None
        Mixing augmentation of the training batches. ``"mixup"`` (Zhang et
        al., 2018; MiSLAS stage 1) trains on ``lam * x_i + (1 - lam) * x_j``
        with ``x_j`` the same batch in a random order and one
        ``lam ~ Beta(mixup_alpha, mixup_alpha)`` per batch, and the loss
        ``lam * L(out, y_i) + (1 - lam) * L(out, y_j)``: each term is the
        training loss of hard targets, so margins (LDAM), priors (logit
        adjustment, balanced softmax, VS), class weights, ``sample_weight``
        and ``sample_attention`` apply within their own term. Mixing happens
        on the raw inputs, which standardization maps exactly to mixing the
        standardized ones. The image-only ``"cutmix"`` and ``"cmo"`` are
        options of :class:`LongTailImageClassifier`; they raise a
        ``ValueError`` here. Validation and prediction are never mixed. Cost:
        one extra batch-sized tensor operation per step.
    mixup_alpha : float, default=1.0
        Both parameters of the Beta distribution of the mixing weight
        (``1.0``: uniform, as in MiSLAS and CMO).
    lr_schedule : {"cosine", "step", "constant"}, default="cosine"
        After ``warmup_epochs`` of linear warm-up: cosine decay to zero, step
        decay (x0.01 at 80% and x0.0001 at 90% of training, the papers'
        schedule), or a constant rate. Cosine is the default: it beat step decay
        for every loss on the benchmark's 100-class set and tied it on average
        on the real tabular sets, and deferred re-weighting at 80% of training
        still runs at a tenth of the rate, where the step schedule has already
        divided it by 100. The papers' recipe is
        ``lr_schedule="step", max_epochs=200``.
    warmup_epochs : int, default=5
        Epochs of linear learning-rate warm-up ("essential for re-weighting",
        Cao et al.); at most a quarter of training
        (:func:`~sklearn_lt.schedules.warmup_length`).
    standardize : bool, default=True
        Standardize features with the training mean and standard deviation
        inside the network (stored with the model), weighted by
        ``sample_weight``. Indicator features (every training value 0 or 1,
        such as ``OneHotEncoder`` columns) are centered but not scaled: a rare
        category would otherwise grow to ``1 / sqrt(frequency)``. Sparse ``X``
        of at most 4,096 features (one-hot output of a ``ColumnTransformer``)
        is standardized as its dense form is, each batch made dense inside
        the network. Wider sparse ``X`` (TF-IDF) is only scaled, by the
        standard deviation, and not centered (as
        ``StandardScaler(with_mean=False)``), so that its zeros stay zeros;
        its indicator columns are left as they are.
    validation_fraction : float or None, default=None
        Fraction of each class held out for early stopping on balanced accuracy;
        the best epoch's weights are restored. Classes with a single example stay
        in training.
    n_iter_no_change : int, default=10
        Patience of early stopping, in epochs.
    posthoc_tau : float, default=0.0
        Post-hoc logit adjustment applied at prediction time:
        ``argmax_j z_j - posthoc_tau * log pi_j`` (Menon et al., eq. 9). Meant
        for models trained without a prior-aware loss; it can be changed after
        fitting with ``set_params`` without refitting.
    tau_norm : float, default=0.0
        Prediction-time tau-normalization of the last layer (Kang et al., 2020):
        class weight vectors are divided by their norm to this power.
    prediction_prior : {"train", "balanced"}, array-like or None, default=None
        The class prior that ``predict_proba`` and ``predict`` target: the
        logits move by the log of this prior minus the log of the prior the
        model's raw outputs correspond to. ``"train"``: the training class
        frequencies (calibrated probabilities on data like the training set);
        ``"balanced"``: uniform (what maximizes balanced accuracy); an array
        of shape (n_classes,): any prior, e.g. a known deployment prior
        (normalized; a zero never predicts its class). ``None`` keeps the raw
        outputs, whose prior depends on the loss: uniform for
        ``"logit_adjusted"`` with ``tau=1`` (the default: default predictions
        target balanced accuracy) and ``"balanced_softmax"``; the training
        prior to the power ``1 - tau`` for ``"logit_adjusted"`` and ``"vs"``
        (for ``"vs"`` approximately: its multiplicative scaling is ignored);
        the training prior for ``"ce"``, ``"focal"``, ``"ldam"``,
        ``"sigmoid"`` and ``"sigmoid_focal"`` (approximately for the focal
        and margin losses). Class weights of ``reweight_schedule`` active at
        the end of training multiply that prior, and are taken out too.
        Cannot be combined with ``posthoc_tau``; can be changed after fitting
        with ``set_params``.
    classifier_retraining : {"crt", "lws", "marc"} or None, default=None
        A second training stage that re-trains the classifier on the frozen
        network (decoupled learning). ``"crt"``: a re-initialized linear last
        layer, with class-balanced sampling (Kang et al., 2020). ``"lws"``: one
        learned scale per class of the trained logits, ``f_j z_j``, with the
        same sampling (Kang et al.). ``"marc"``: ``omega_j z_j + beta_j
        ||w_j||`` with ``||w_j||`` the norm of the trained head's class
        vector, fitted with cross-entropy weighted by ``pi_j ** -1.2`` on
        instance-balanced batches (Wang et al.). The frozen network runs once
        over the training rows (never the validation rows) in evaluation
        mode: batch normalization keeps its running statistics, without
        dropout or augmentation. The second stage then trains on these cached
        features with softmax cross-entropy and ``sample_weight``, the
        ``optimizer`` family (SGD for ``"sam"``), ``lr``, ``momentum``,
        ``weight_decay``, ``batch_size`` and a cosine learning rate to zero.
        ``net_`` keeps the first-stage network unchanged; predictions come
        from the new head, as softmax logits whatever ``loss``: their prior is
        uniform for cRT and LWS and ``pi ** -0.2`` for MARC, from which
        ``prediction_prior`` moves them. ``posthoc_tau`` is refused (the new
        head is already re-balanced), and ``tau_norm`` applies to cRT's new
        layer (refused with LWS and MARC, which re-calibrate the class norms
        themselves). ``None``: a single stage.
    retraining_epochs : int or "auto", default="auto"
        Epochs of the second stage. ``"auto"``: the paper's (cRT 10, LWS 5,
        MARC 80), or more, up to 200, to take at least 1,000 optimizer steps
        on small data sets.
    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    accelerator : accelerate.Accelerator or None, default=None
        Train through Hugging Face Accelerate (skorch's ``AccelerateMixin``):
        multi-GPU data parallelism when launched with ``accelerate launch``
        (each process takes every ``num_processes``-th batch; set
        ``random_state`` so that all processes draw the same batches), mixed
        precision, gradient accumulation. The accelerator then places the data
        and ``device`` is ignored. Such models cannot be pickled (skorch's
        limitation); save them with :func:`~sklearn_lt.save_model`.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialization, shuffling and the validation split. The
        caller's global NumPy and torch random states are left untouched.
    verbose : int, default=0
        1 prints skorch's epoch table.
    progress_bar : bool, default=False
        Show a per-batch progress bar (tqdm).
    warm_start : bool, default=False
        Continue training the fitted network for ``max_epochs`` more epochs on
        the next ``fit``, with the same optimizer state. The learning rate runs
        a new cycle of ``lr_schedule`` over the new epochs, without warm-up (a
        warm restart; the old cycle has ended); the re-balancing schedule
        continues from its position (it counts epochs from the first fit).
        The momentum buffers carry on, while ``lr``, ``momentum``,
        ``weight_decay`` and ``sam_rho`` take their current values. Classes,
        features and ``optimizer`` must stay the same.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    class_counts_ : ndarray of shape (n_classes,)
        Number of examples of each class in the ``y`` of the last fit.
    n_features_in_ : int
        Number of features seen during fit.
    mixup_ : {"mixup"} or None
        The mixing of the training batches (``mixup``).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when ``X`` is a DataFrame with string column names.
    net_ : skorch.NeuralNet
        The trained skorch net; ``net_.module_`` is the network.
    history_ : skorch.History
        One row per epoch: ``train_loss``, ``lr``, ``rebalancing``,
        ``valid_loss`` and ``valid_balanced_accuracy`` when validating.
    device_ : torch.device
        Device used for training.
    retrained_head_ : torch.nn.Module
        The second-stage head (with ``classifier_retraining`` only): cRT's
        linear layer (``weight``, ``bias``), LWS's ``scales`` or MARC's
        ``omega`` and ``beta``, applied to the features and logits of
        ``net_``.
    retraining_epochs_ : int
        Epochs of the second stage (with ``classifier_retraining`` only).
    retraining_history_ : skorch.History
        One row per second-stage epoch: ``epoch``, ``train_loss``, ``lr``
        (with ``classifier_retraining`` only).

    See Also
    --------
    LongTailImageClassifier : The same estimator with image networks.
    sklearn_lt.posthoc.LogitAdjustedClassifier : Post-hoc adjustment of any
        classifier.

    Notes
    -----
    Each method of the papers is one parameter setting:

    ==============  ==========================================================
    Method          Parameters
    ==============  ==========================================================
    ERM             ``loss="ce"``
    Focal           ``loss="focal", gamma=1``
    LDAM            ``loss="ldam"``
    CB RW           ``loss="ce", reweight_schedule="reweight"``
    CB RS           ``loss="ce", reweight_schedule="resample"``
    CB Focal        ``loss="focal", reweight_schedule="reweight"`` (softmax) or
                    ``loss="sigmoid_focal", reweight_schedule="reweight"``
    ERM-DRW         ``loss="ce", reweight_schedule="drw"``
    ERM-DRS         ``loss="ce", reweight_schedule="drs"``
    LDAM-DRW        ``loss="ldam", reweight_schedule="drw"``
    LA loss         ``loss="logit_adjusted"``
    LA post-hoc     ``loss="ce", posthoc_tau=1``
    Balanced SM     ``loss="balanced_softmax"``
    VS              ``loss="vs"``
    SAM             ``optimizer="sam"`` (with any loss and schedule)
    ImbSAM          ``optimizer="sam", sam_tail_only=True``
    cRT             ``loss="ce", classifier_retraining="crt"``
    LWS             ``loss="ce", classifier_retraining="lws"``
    MARC            ``loss="ce", classifier_retraining="marc"``
    ==============  ==========================================================

    Sparse input: ``fit`` keeps a sparse ``X`` in CSR form on the training
    device (its nonzeros only), each mini-batch gathers its rows, and the
    network receives them as a torch sparse CSR tensor; ``nn.Linear`` (the
    first layer of the MLP, or the head when ``hidden_layer_sizes=()``)
    multiplies it with a sparse kernel, and nothing of the size of the dense
    ``X`` is allocated. With ``standardize=True`` and at most 4,096
    features, each batch is made dense inside the network to be centered
    (one-hot output), as dense ``X`` would be; a custom ``module`` receives
    dense batches then, and the sparse tensors otherwise.
    Prediction on sparse data runs in fixed batches of 1,024 rows. A model
    fitted on dense data can predict sparse data, one densified batch at a
    time (it centers its inputs), and a model fitted on sparse data predicts
    dense data.

    References
    ----------
    .. [1] K. Cao et al., "Learning Imbalanced Datasets with
       Label-Distribution-Aware Margin Loss", NeurIPS 2019.
    .. [2] Y. Cui et al., "Class-Balanced Loss Based on Effective Number of
       Samples", CVPR 2019.
    .. [3] A. K. Menon et al., "Long-tail learning via logit adjustment",
       ICLR 2021.
    .. [4] B. Kang et al., "Decoupling Representation and Classifier for
       Long-Tailed Recognition", ICLR 2020.
    .. [5] H. Rangwani et al., "Escaping Saddle Points for Effective
       Generalization on Class-Imbalanced Data", NeurIPS 2022.
    .. [6] Y. Wang et al., "Margin Calibration for Long-Tailed Visual
       Recognition", ACML 2022 (MARC).

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn_lt import LongTailClassifier
    >>> X, y = make_classification(n_samples=400, n_classes=3, n_informative=4,
    ...                            weights=[0.8, 0.15, 0.05], random_state=0)
    >>> clf = LongTailClassifier(loss="ldam", reweight_schedule="drw",
    ...                          max_epochs=10, random_state=0).fit(X, y)
    >>> clf.class_counts_
    array([319,  61,  20])
    >>> clf.predict(X[:5]).shape
    (5,)

    A second stage that re-trains the classifier on the frozen network (cRT):

    >>> crt = LongTailClassifier(loss="ce", classifier_retraining="crt",
    ...                          max_epochs=10, random_state=0).fit(X, y)
    >>> crt.retraining_epochs_, len(crt.retraining_history_)
    (200, 200)
    """

    _parameter_constraints: dict = {
        **BaseLongTailClassifier._parameter_constraints,
        "hidden_layer_sizes": ["array-like"],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "standardize": ["boolean"],
    }

    def __init__(
        self,
        *,
        loss="logit_adjusted",
        reweight_schedule=None,
        deferral_start=0.8,
        beta=0.9999,
        max_margin=0.5,
        scale=30.0,
        tau=1.0,
        gamma=None,
        hidden_layer_sizes=(256, 256),
        dropout=0.5,
        module=None,
        module_params=None,
        max_epochs="auto",
        batch_size=128,
        optimizer="sgd",
        lr=0.05,
        momentum=0.9,
        weight_decay=2e-4,
        max_grad_norm=10.0,
        sam_rho=0.05,
        sam_tail_only=False,
        sample_attention=None,
        mixup=None,
        mixup_alpha=1.0,
        lr_schedule="cosine",
        warmup_epochs=5,
        standardize=True,
        validation_fraction=None,
        n_iter_no_change=10,
        posthoc_tau=0.0,
        tau_norm=0.0,
        prediction_prior=None,
        classifier_retraining=None,
        retraining_epochs="auto",
        device="auto",
        accelerator=None,
        random_state=None,
        verbose=0,
        progress_bar=False,
        warm_start=False,
    ):
        super().__init__(
            loss=loss,
            reweight_schedule=reweight_schedule,
            deferral_start=deferral_start,
            beta=beta,
            max_margin=max_margin,
            scale=scale,
            tau=tau,
            gamma=gamma,
            module=module,
            module_params=module_params,
            max_epochs=max_epochs,
            batch_size=batch_size,
            optimizer=optimizer,
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            max_grad_norm=max_grad_norm,
            sam_rho=sam_rho,
            sam_tail_only=sam_tail_only,
            sample_attention=sample_attention,
            mixup=mixup,
            mixup_alpha=mixup_alpha,
            lr_schedule=lr_schedule,
            warmup_epochs=warmup_epochs,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            posthoc_tau=posthoc_tau,
            tau_norm=tau_norm,
            prediction_prior=prediction_prior,
            classifier_retraining=classifier_retraining,
            retraining_epochs=retraining_epochs,
            device=device,
            accelerator=accelerator,
            random_state=random_state,
            verbose=verbose,
            progress_bar=progress_bar,
            warm_start=warm_start,
        )
        self.hidden_layer_sizes = hidden_layer_sizes
        self.dropout = dropout
        self.standardize = standardize

    def _build_network(self, n_features, n_classes, cosine_head):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral):
            sizes = (sizes,)
        sizes = tuple(sizes)
        if not all(isinstance(s, numbers.Integral) and s > 0 for s in sizes):
            raise ValueError(
                "hidden_layer_sizes must be a tuple of positive integers; got "
                f"{self.hidden_layer_sizes!r}."
            )
        return MLP(
            n_features,
            n_classes,
            sizes,
            dropout=self.dropout,
            cosine_head=cosine_head,
        )

    def _validate_features(self, X, *, reset):
        X = validate_data(
            self,
            X,
            reset=reset,
            accept_sparse="csr",
            dtype=np.float32,
            order="C",
            ensure_min_samples=1,
        )
        return canonical_csr(X) if sp.issparse(X) else X

    def _input_statistics(self, X, sample_weight=None):
        if not self.standardize:
            return None, None
        if sp.issparse(X) and X.shape[1] > SPARSE_CENTERING_MAX_FEATURES:
            # Scale only: centering fills in the zeros, and a dense batch of
            # that many features is large (128 x 50,000 floats: 25 MB).
            mean, scale = None, column_scale(X, sample_weight)
        else:
            mean, scale = super()._input_statistics(X, sample_weight)
        # Indicator columns keep their 0/1 scale: divided by sqrt(p (1 - p)),
        # a category of frequency p would grow to 1 / sqrt(p) (8 at 1.5%),
        # louder than any standardized feature (docs/benchmarks.md: +3.3 and
        # +3.9 points on the one-hot encoded diamonds and Vowel; +2.1 and
        # +4.6 when their one-hot columns arrive as a sparse matrix).
        scale[indicator_columns(X)] = 1.0
        return mean, scale

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = self.mixup is None  # mixing needs dense rows
        return tags
