"""Training an injected network: ``loop`` (config, loop, evaluation), ``heads`` (classifier
width checks and replacement) and ``workflow`` (``train``, the whole of ``secli train``)."""
