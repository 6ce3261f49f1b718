"""Mapping timm's SE-ResNet state-dict keys onto secli's injected layout, for weight copies."""

from __future__ import annotations


def timm_to_secli_key(key: str) -> str:
    """timm keeps SE in ``block.se`` after ``bn3``; secli wraps ``bn3`` as Sequential(bn3, SE)."""
    if ".se." in key:
        return key.replace(".se.", ".bn3.1.")
    if ".bn3." in key:
        return key.replace(".bn3.", ".bn3.0.")
    return key
