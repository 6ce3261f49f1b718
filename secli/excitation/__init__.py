"""Class-wise excitation statistics: ``collect`` (hooks and per-class sums), ``result`` (the
sums, saved and loaded), ``scores``, ``scales`` (SKNet's object-scale test), ``plots`` and
``workflow`` (``visualize_excitation``, the whole of ``secli visualize-excitation``)."""
