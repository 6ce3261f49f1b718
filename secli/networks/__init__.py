"""Where blocks go in a network, and networks from anywhere.

``references`` (what a model reference names: a name, a user's factory, a checkpoint; importing
a user's code only where they named it), ``builders`` (the base network of a reference),
``models`` (any reference or ``nn.Module`` to a ``BuiltModel``), ``architectures/`` (one adapter
per named family: where its sites are, per position), ``patterns`` (sites after modules matched
by ``--at``), ``structure`` (residual units found by what they compute), ``probe`` (the hooked
forward pass both read), ``native_se`` and ``native_attention`` (SE, ECA, CBAM, GC and SK modules
a network already has), ``sites`` (Site records), ``inject`` (filling sites with blocks, from
patterns, an adapter or structure), ``formula`` (closed forms for the parameters added),
``checkpoint``, ``export``, ``sweep`` and ``variants`` (block variants for complexity and
profile) and ``workflow`` (``inject``, the whole of ``secli inject``). Below this package:
``secli.blocks``, ``secli.kernels`` and ``secli.util``.
"""
