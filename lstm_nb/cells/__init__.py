"""Every recurrent layer of the papers, by name, behind nn.LSTM's interface.

    layer = lstm_nb.cells.build("lstm", input_size=50, hidden_size=125, num_layers=2)
    output, (h_n, c_n) = layer(x)          # x: (T, B, I), or (B, T, I) with batch_first=True

`available()` lists the names. Each entry is a class taking
(input_size, hidden_size, num_layers=1, batch_first=False, **options).
"""

from torch import nn

from .lstm import LSTM

_REGISTRY = {
    "lstm": LSTM,
    "nn.LSTM": nn.LSTM,
}


def register(name, cls):
    """Add a layer class under `name` (used by the variant modules)."""
    if name in _REGISTRY:
        raise ValueError(f"a cell named {name!r} is already registered")
    _REGISTRY[name] = cls
    return cls


def available():
    """Names accepted by `build`, sorted."""
    return sorted(_REGISTRY)


def build(name, input_size, hidden_size, num_layers=1, batch_first=False, **options):
    """Build the registered layer `name`; an unknown name or option gives a clear ValueError."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown cell {name!r}; available: {', '.join(available())}")
    try:
        return _REGISTRY[name](input_size, hidden_size, num_layers=num_layers, batch_first=batch_first, **options)
    except TypeError as e:
        raise ValueError(f"cell {name!r} does not accept these options {sorted(options)}: {e}") from e
