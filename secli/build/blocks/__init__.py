"""The attention blocks secli injects: Squeeze-and-Excitation, Selective Kernel, ECA.

Importing this package registers every built-in kind (each module calls
``secli.build.registry.register``); a new kind is one more module and one more import here.
"""

# The import order is the registration order, which is the order kinds are listed in.
# isort: off
from secli.build.blocks.se import SqueezeExcitation
from secli.build.blocks.sk import SelectiveKernel
from secli.build.blocks.eca import EfficientChannelAttention
# isort: on

__all__ = ["SqueezeExcitation", "SelectiveKernel", "EfficientChannelAttention"]
