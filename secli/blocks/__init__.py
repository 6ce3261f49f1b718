"""The attention blocks secli injects: Squeeze-and-Excitation and Selective Kernel."""

from secli.blocks.se import SqueezeExcitation
from secli.blocks.sk import SelectiveKernel

__all__ = ["SqueezeExcitation", "SelectiveKernel"]
