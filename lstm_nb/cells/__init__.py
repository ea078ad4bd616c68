"""Every recurrent layer of the papers, by name, behind nn.LSTM's interface.

    layer = lstm_nb.cells.build("lstm", input_size=50, hidden_size=125, num_layers=2)
    output, (h_n, c_n) = layer(x)          # x: (T, B, I), or (B, T, I) with batch_first=True

`available()` lists the names. Each entry is a class taking
(input_size, hidden_size, num_layers=1, batch_first=False, **options).
"""

from torch import nn

from .dropout import GalLSTM, MoonLSTM, SemeniutaLSTM, WeightDropLSTM, ZoneoutLSTM
from .gating import ONLSTM, RLSTM, ULSTM, URGRU, URLSTM, ChronoLSTM, ForgetBiasLSTM, MasterGateLSTM
from .layernorm import LayerNormGalLSTM, LayerNormLSTM, LayerNormMoonLSTM, LayerNormSemeniutaLSTM
from .lstm import LSTM
from .mogrifier import MogrifierLSTM, SharedMogrifierLSTM

_REGISTRY = {
    # baselines
    "lstm": LSTM,  # from scratch, exactly nn.LSTM
    "nn.LSTM": nn.LSTM,
    "nn.GRU": nn.GRU,
    # Mogrifier LSTM (Melis et al. 2020)
    "mogrifier": MogrifierLSTM,
    "mogrifier_shared_qr": SharedMogrifierLSTM,  # the original public notebook's variant, not the paper's
    # gating (Gu et al. 2020) and its baselines
    "forget_bias_lstm": ForgetBiasLSTM,
    "chrono_lstm": ChronoLSTM,
    "u_lstm": ULSTM,
    "r_lstm": RLSTM,
    "ur_lstm": URLSTM,
    "on_lstm": ONLSTM,
    "master_gate_lstm": MasterGateLSTM,
    "ur_gru": URGRU,
    # recurrent dropout
    "gal_lstm": GalLSTM,
    "moon_lstm": MoonLSTM,
    "semeniuta_lstm": SemeniutaLSTM,
    "zoneout_lstm": ZoneoutLSTM,
    "weight_drop_lstm": WeightDropLSTM,
    # layer normalisation (Ba et al. 2016)
    "layernorm_lstm": LayerNormLSTM,
    "layernorm_gal_lstm": LayerNormGalLSTM,
    "layernorm_moon_lstm": LayerNormMoonLSTM,
    "layernorm_semeniuta_lstm": LayerNormSemeniutaLSTM,
}


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


def runs_on_library_kernel(name, options=None):
    """Whether the layer `name` with `options` runs the library's fused kernel (cuDNN on a GPU): nn.LSTM
    and nn.GRU, and the cells whose math is nn.LSTM's on their default engine."""
    layer = _REGISTRY.get(name)
    if layer in (nn.LSTM, nn.GRU):
        return True
    return bool(getattr(layer, "library", False)) and (options or {}).get("engine", "library") == "library"
