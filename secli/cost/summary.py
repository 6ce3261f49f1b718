"""Totals of a recording: per op type, per module, per phase, and what each block's ops do.

Block roles name what a block's ops are for (``role_of``), so a prediction can say where the
blocks' time goes: ``pool`` (an op of the block itself that reads the site's tensor and writes
per-channel values: the squeeze, and in backward Σ_hw(g·u)), ``scale`` (an op of the block
itself writing a full-size tensor: the scale, SK's sum and weighting, the folded residual sum
and ReLU, and their backward), ``FCs`` (ops of the excitation's children: SE's fc1/act/fc2,
SK's fc/select, ECA's conv), ``gate`` (its gate module: sigmoid, SK's softmax), ``paths`` (SK's
convolutions, BNs and ReLUs) and ``other`` (the block's own small ops, e.g. the broadcast of a
gradient's mean). A module's figures include its children's, as in ``--by-module``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from secli.cost.record import OpCost, Recording
from secli.cost.rules import REDUCTIONS

ROLES = ("pool", "FCs", "gate", "scale", "paths", "other")
GATE_CHILDREN = frozenset({"gate_act", "attn_softmax", "gate", "scale_activation"})  # secli, SK, timm/ECA, torchvision
POOL_CHILDREN = frozenset({"avgpool", "pool"})  # torchvision's SqueezeExcitation pools in a child module
PATH_CHILDREN = frozenset({"paths"})
POOLS = REDUCTIONS | {"bmm"}  # bmm: the fused backward's Σ_hw(g·u) as a batched dot


@dataclass
class Totals:
    """FLOPs (multiply-add = 2), bytes and kernel launches of a set of ops at one batch size."""

    flops: float = 0.0
    read: float = 0.0
    written: float = 0.0
    kernels: int = 0

    def add(self, op: OpCost, batch: float) -> None:
        f, r, w = op.at(batch)
        self.flops += f
        self.read += r
        self.written += w
        self.kernels += 1

    @property
    def moved(self) -> float:
        return self.read + self.written

    @property
    def intensity(self) -> float | None:
        """FLOPs per byte moved (None when nothing moved)."""
        return self.flops / self.moved if self.moved else None

    def per_image(self, batch: float) -> dict[str, Any]:
        """This total divided by ``batch``, as JSON (ints: a byte is a byte); kernels per call."""
        return {
            "read": round(self.read / batch), "written": round(self.written / batch),
            "moved": round(self.moved / batch), "flops": round(self.flops / batch),
            "intensity": self.intensity, "kernels": self.kernels,
        }


def total(ops: Iterable[OpCost], batch: float) -> Totals:
    found = Totals()
    for op in ops:
        found.add(op, batch)
    return found


def owning_site(module: str, sites: Sequence[str]) -> str | None:
    """The site (block module path) whose module ran this op, if any."""
    for site in sites:
        if module == site or module.startswith(site + "."):
            return site
    return None


def role_of(op: OpCost, site: str, site_bytes: float | None) -> str:
    """What an op of the block at ``site`` does (module doc); ``site_bytes``: one pass, per image."""
    below = op.module[len(site) + 1:] if site else op.module
    child = "" if op.module == site else below.split(".", 1)[0]
    if child in PATH_CHILDREN:
        return "paths"
    if child in GATE_CHILDREN:
        return "gate"
    if child in POOL_CHILDREN:
        return "pool"
    if child:
        return "FCs"
    _, read, written = op.per_image
    if not site_bytes or max(read, written) < 0.5 * site_bytes:
        return "other"
    if op.name == "mean" or (op.name in POOLS and written <= read / 4):
        return "pool"  # a reduction over H x W (at 1x1 maps only its name tells)
    return "scale"


@dataclass
class BlockSplit:
    """The blocks' ops by role, the rest of the network, and one pass over the sites' tensors."""

    roles: dict[str, Totals] = field(default_factory=dict)
    outside: Totals = field(default_factory=Totals)
    pass_bytes: float = 0.0  # per image: one read of every site's output


def split_blocks(recording: Recording, sites: Sequence[str], batch: float,
                 phases: Sequence[str] | None = None) -> BlockSplit:
    """Every op at ``batch``, as the blocks' roles (``ROLES``) and the ops outside any block."""
    found = BlockSplit(roles={role: Totals() for role in ROLES})
    ordered = sorted(sites, key=len, reverse=True)  # the innermost site first
    for op in recording.ops:
        if phases is not None and op.phase not in phases:
            continue
        site = owning_site(op.module, ordered)
        if site is None:
            found.outside.add(op, batch)
        else:
            found.roles[role_of(op, site, recording.site_bytes.get(site))].add(op, batch)
    found.pass_bytes = sum(recording.site_bytes.get(s, 0.0) for s in sites)
    return found


def by_operator(ops: Iterable[OpCost], batch: float) -> dict[str, Totals]:
    """Totals per ATen op name, most bytes first."""
    found: dict[str, Totals] = {}
    for op in ops:
        found.setdefault(op.name, Totals()).add(op, batch)
    return dict(sorted(found.items(), key=lambda item: -item[1].moved))


def by_module(ops: Iterable[OpCost], batch: float, paths: Iterable[str]) -> dict[str, Totals]:
    """Totals of each module in ``paths``, its children's ops included ("" = everything)."""
    found = {path: Totals() for path in paths}
    for op in ops:
        parts = op.module.split(".") if op.module else []
        for depth in range(len(parts) + 1):
            key = ".".join(parts[:depth])
            if key in found:
                found[key].add(op, batch)
    return found


def by_phase(ops: Iterable[OpCost], batch: float) -> dict[str, Totals]:
    found: dict[str, Totals] = {}
    for op in ops:
        found.setdefault(op.phase, Totals()).add(op, batch)
    return found


def site_ops(recording: Recording, site: str, batch: float) -> list[dict[str, Any]]:
    """The ops one block runs, in order, each with its passes over the site's tensor (the
    statement of what an implementation does: ``mean 1.00, addcmul 3.00, relu_ 2.00``)."""
    one_pass = recording.site_bytes.get(site)
    rows = []
    for op in recording.ops:
        if op.module != site and not op.module.startswith(site + "."):
            continue
        _, read, written = op.at(batch)
        rows.append({
            "op": op.name, "phase": op.phase, "module": op.module[len(site):].lstrip(".") or "(block)",
            "role": role_of(op, site, one_pass), "read": round(read / batch), "written": round(written / batch),
            "passes": (read + written) / batch / one_pass if one_pass else None,
        })
    return rows
