"""What a block is: the registry of kinds, the spec that describes one, one module per kind.

``registry`` (BlockKind, SiteShape), ``spec`` (BlockSpec, ModelSpec, the option overlay),
``common`` (the hidden width and the gates, shared without one kind importing another), and
the kinds: ``se`` (Squeeze-and-Excitation), ``sk`` (Selective Kernel), ``eca`` (ECA), and the zoo
compared beside them (docs/ZOO.md): ``cbam`` (CBAM, and ``cbam-channel``), ``gc`` (global context),
``coord`` (coordinate attention), ``simam``, ``ge`` (Gather-Excite theta-minus, and ``ge-plus``),
``fca`` (FcaNet), ``srm`` and ``gct``. Blocks are
plain modules; how they run fast is ``secli.kernels``' business, where they go ``secli.networks``'.

Importing this package registers every built-in kind (each module calls
``secli.blocks.registry.register``); a new kind is one more module and one more import here.
"""

# The import order is the registration order, which is the order kinds are listed in.
# isort: off
from secli.blocks.se import SqueezeExcitation
from secli.blocks.sk import SelectiveKernel
from secli.blocks.eca import EfficientChannelAttention
from secli.blocks.cbam import CBAM
from secli.blocks.gc import GlobalContext
from secli.blocks.coord import CoordinateAttention
from secli.blocks.simam import SimAM
from secli.blocks.ge import GatherExcite, GatherExcitePlus
from secli.blocks.fca import MultiSpectralAttention
from secli.blocks.srm import StyleRecalibration
from secli.blocks.gct import GatedChannelTransformation
# isort: on

__all__ = [
    "CBAM",
    "CoordinateAttention",
    "EfficientChannelAttention",
    "GatedChannelTransformation",
    "GatherExcite",
    "GatherExcitePlus",
    "GlobalContext",
    "MultiSpectralAttention",
    "SelectiveKernel",
    "SimAM",
    "SqueezeExcitation",
    "StyleRecalibration",
]
