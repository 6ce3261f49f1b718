"""The words secli's options take, in one place.

Specs, blocks, adapters and the CLI's help all name positions, squeezes, gates, inits and output
formats; each list lives here once, so a new value is added in one line and cannot drift apart
between the validator, the block and the help text. Block kinds are not here: they live in the
block registry (``secli.blocks.registry``), because each kind brings code with it.
"""

from __future__ import annotations

#: Where an SE-style block goes in a residual unit (SE paper, Fig. 5 and Table 14/15).
POSITIONS: tuple[str, ...] = ("standard", "pre", "post", "identity", "3x3")
#: How an SE block summarises a channel (Table 11: avg, max; Table 16: none = NoSqueeze).
SQUEEZES: tuple[str, ...] = ("avg", "max", "none")
#: The excitation's gate activation (Table 12), plus MobileNetV3's hard sigmoid.
GATES: tuple[str, ...] = ("sigmoid", "tanh", "relu", "hardsigmoid")
#: How a new SE block's gate starts: PyTorch's default, or ~1 everywhere (fine-tuning).
INITS: tuple[str, ...] = ("default", "identity")
#: How a block is computed: autograd's composition, or secli's fused function (same parameters).
IMPLS: tuple[str, ...] = ("eager", "fused")
#: What a command prints.
OUTPUT_FORMATS: tuple[str, ...] = ("table", "json", "csv", "markdown")
#: Device spellings every command accepts (``cuda:N`` too).
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
