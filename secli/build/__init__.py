"""Building networks with attention blocks: what every command starts from.

``spec`` (BlockSpec, ModelSpec, the option overlay), ``registry`` and ``blocks/`` (SE, SK, ECA:
one entry per kind), ``architectures/`` (where sites are, per family), ``sites`` and
``native_se`` (the blocks a network has, injected or its own), ``inject``, ``formula`` (closed
forms for the parameters added), ``models`` (names, weights and checkpoints to networks),
``checkpoint`` and ``workflow`` (``inject``, the whole of ``secli inject``). Only ``secli.util``
lies below this package.
"""
