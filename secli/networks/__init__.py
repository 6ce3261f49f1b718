"""Where blocks go in a network, and networks on disk.

``architectures/`` (one adapter per family: where its sites are, per position), ``sites``
(Site records), ``native_se`` (SE modules a network already has, found by structure),
``inject`` (filling sites with blocks), ``formula`` (closed forms for the parameters added),
``models`` (names, weights and checkpoints to networks), ``checkpoint``, ``export``, ``sweep``
(block variants for complexity and profile) and ``workflow`` (``inject``, the whole of
``secli inject``). Below this package: ``secli.blocks``, ``secli.kernels`` and ``secli.util``.
"""
