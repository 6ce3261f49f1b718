"""The gate activations of secli's blocks, by name: the modules the blocks build and the kernels
compute in their place.

One table for both, so a block and the kernel that stands in for it cannot disagree on what
``gate="hardsigmoid"`` means (``tests/test_util.py`` checks it against ``util.vocabulary.GATES``).
"""

from __future__ import annotations

from torch import nn

GATE_MODULES: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "hardsigmoid": nn.Hardsigmoid,
}
