"""The attention blocks secli injects: Squeeze-and-Excitation and Selective Kernel."""

from secli.build.blocks.se import SqueezeExcitation
from secli.build.blocks.sk import SelectiveKernel

__all__ = ["SqueezeExcitation", "SelectiveKernel"]
