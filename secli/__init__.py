"""secli: analysis toolkit for channel-attention blocks (SE, SK) in CNNs.

Importing this package is cheap on purpose: torch is only imported by the submodules that
need it, so the command line starts fast.
"""

__version__ = "0.1.0"
