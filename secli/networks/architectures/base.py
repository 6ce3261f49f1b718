"""What an architecture adapter answers: where are this network's sites, for this position?"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from torch import nn

from secli.blocks.registry import SiteShape
from secli.networks.sites import get_module, set_module
from secli.util.errors import SecliUsageError


@dataclass
class Target:
    """A place in a base network where one block can go, before the block exists.

    ``attach`` puts a built block in place and returns the block's module path. For SK,
    ``in_channels`` and ``stride`` describe the 3x3 convolution the block replaces.
    """

    stage: int
    index: int
    channels: int
    attach: Callable[[nn.Module], str]
    in_channels: int | None = None
    stride: int = 1

    @property
    def shape(self) -> SiteShape:
        """What the block's builder needs to know of this place (``BlockKind.build``)."""
        return SiteShape(channels=self.channels, in_channels=self.in_channels, stride=self.stride)


class Adapter(Protocol):
    family: str
    se_positions: tuple[str, ...]
    supports_sk: bool

    def se_targets(self, model: nn.Module, position: str) -> list[Target]: ...

    def sk_targets(self, model: nn.Module) -> list[Target]: ...


def wrap_after(model: nn.Module, path: str) -> Callable[[nn.Module], str]:
    """An ``attach`` that replaces the module at ``path`` by ``Sequential(module, block)``."""
    def attach(block: nn.Module) -> str:
        set_module(model, path, nn.Sequential(get_module(model, path), block))
        return f"{path}.1"

    return attach


def wrap_before(model: nn.Module, path: str) -> Callable[[nn.Module], str]:
    """An ``attach`` that replaces the module at ``path`` by ``Sequential(block, module)``."""
    def attach(block: nn.Module) -> str:
        set_module(model, path, nn.Sequential(block, get_module(model, path)))
        return f"{path}.0"

    return attach


def unsupported_position(family: str, position: str, supported: tuple[str, ...]) -> SecliUsageError:
    return SecliUsageError(
        f"position {position!r} is not supported for {family} networks; supported: {', '.join(supported)}"
    )


def no_sk(family: str) -> SecliUsageError:
    return SecliUsageError(
        f"SK blocks replace the 3x3 convolutions of residual blocks; {family} networks have none",
        hint="use --block se, or a ResNet/ResNeXt/Wide-ResNet",
    )


class StandardOnlyAdapter:
    """Base for non-residual families: one SE position ("standard"), no SK."""

    family = "network"
    se_positions: tuple[str, ...] = ("standard",)
    supports_sk = False

    def se_targets(self, model: nn.Module, position: str) -> list[Target]:
        if position not in self.se_positions:
            raise unsupported_position(self.family, position, self.se_positions)
        return self.standard_targets(model)

    def standard_targets(self, model: nn.Module) -> list[Target]:  # pragma: no cover - abstract
        raise NotImplementedError

    def sk_targets(self, model: nn.Module) -> list[Target]:
        raise no_sk(self.family)
