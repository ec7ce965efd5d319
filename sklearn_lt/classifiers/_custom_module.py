"""A user's network class (the classifiers' ``module``), built for the data."""

import inspect

from torch import nn

from ..modules import NormedLinear

__all__ = ["accepts", "build_custom_module"]


def accepts(callable_, name):
    """Whether ``callable_`` takes a ``name`` argument (or ``**kwargs``)."""
    try:
        parameters = inspect.signature(callable_).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(
        p.kind is p.VAR_KEYWORD for p in parameters.values()
    )


def build_custom_module(
    module, module_params, criterion, *, n_features, n_classes, cosine_head, in_channels
):
    """Call ``module`` with ``module_params`` and the data's sizes it accepts.

    ``n_features``, ``n_classes``, ``cosine_head`` and ``in_channels`` (None for
    tabular data) are passed when ``module`` accepts them and ``module_params``
    does not set them. A loss that trains on cosine logits needs a cosine head.
    """
    params = dict(module_params or {})
    candidates = {
        "n_features": n_features,
        "n_classes": n_classes,
        "cosine_head": cosine_head,
    }
    if in_channels is not None:
        candidates["in_channels"] = in_channels
    for name, value in candidates.items():
        if name not in params and accepts(module, name):
            params[name] = value
    network = module(**params)
    if not isinstance(network, nn.Module):
        raise TypeError(
            f"module must build a torch.nn.Module; {module!r} returned "
            f"{type(network).__name__}."
        )
    has_cosine_head = params.get("cosine_head", False) or any(
        isinstance(layer, NormedLinear) for layer in network.modules()
    )
    if cosine_head and not has_cosine_head:
        raise ValueError(
            f"{type(criterion).__name__} is defined on cosine logits in "
            f"[-1, 1] (it multiplies them by scale={criterion.scale}), but "
            f"the module {getattr(module, '__name__', module)!r} "
            "neither accepts a `cosine_head` argument nor contains a "
            "sklearn_lt.modules.NormedLinear layer. Accept `cosine_head` "
            "and use NormedLinear as the last layer when it is True."
        )
    return network
