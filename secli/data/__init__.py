"""Labelled images for excitation statistics and training.

``preprocess`` (resize, crop, normalise), ``synthetic`` (the built-in shapes set), ``folders``
(image folders and loaders), ``classes`` (class names, choice, sampling, splits) and
``sources`` (what ``--data`` names, opened for a model). Only ``secli.networks`` and
``secli.util`` lie below this package.
"""
