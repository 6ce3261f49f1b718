"""``python -m secli``: the same program as the ``secli`` script (and ``torchrun -m secli``).

The one library file that imports the CLI package: it is the entry point, not part of the
library's layers (tests/test_layers.py exempts exactly this file).
"""

from commands.app import main

if __name__ == "__main__":
    main()
