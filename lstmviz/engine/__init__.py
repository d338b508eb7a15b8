"""Pure-NumPy LSTM engine: the cell, the recorded forward pass, layers, layout converters.

Nothing here imports Qt, TensorFlow, Keras or torch.
"""

from ._accel import cores, get_threads, set_threads, threads_limited
from ._pool import clear as release_memory
from .cell import LSTMWeights, lstm_step, run_lstm
from .model import Model, Node
from .trace import GATES, QUANTITIES, SYMBOLS, TITLES, LayerTrace, Trace

__all__ = [
    "GATES",
    "QUANTITIES",
    "SYMBOLS",
    "TITLES",
    "LSTMWeights",
    "LayerTrace",
    "Model",
    "Node",
    "Trace",
    "cores",
    "get_threads",
    "lstm_step",
    "release_memory",
    "run_lstm",
    "set_threads",
    "threads_limited",
]
