"""``--by-module``: parameters and FLOPs per module as a tree, down to a depth, blocks marked.

The FLOPs come from the same fvcore trace as the totals (``FlopReport.by_module``, which fvcore
attributes to every enclosing module), so a parent's figure includes its children's and the
root's (depth 0, path "") equals the model's total.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from secli.networks.sites import Site

DEFAULT_DEPTH = 3


@dataclass
class ModuleCost:
    path: str  # "" is the whole model
    depth: int  # 0 for the model, 1 for its children...
    type: str  # the module's class name
    params: int
    flops_fc_only: int | None
    flops_all_ops: int | None
    block: str | None = None  # "SE" etc. where the module is a block at a site
    blocks_inside: int = 0  # blocks at sites within this module (itself included)
    block_kind: str | None = None  # the kind of those blocks ("SE"), where there are any
    bytes_read: int | None = None  # forward at batch 1, children included (secli.cost.rules)
    bytes_written: int | None = None
    intensity: float | None = None  # FLOPs (multiply-add = 2) per byte read or written

    def to_dict(self) -> dict[str, Any]:
        return {
            "module": self.path, "depth": self.depth, "type": self.type, "params": self.params,
            "flops_fc_only": self.flops_fc_only, "flops_all_ops": self.flops_all_ops,
            "block": self.block, "blocks_inside": self.blocks_inside, "block_kind": self.block_kind,
            "bytes_read": self.bytes_read, "bytes_written": self.bytes_written, "intensity": self.intensity,
        }


def module_depth(path: str) -> int:
    return 0 if not path else path.count(".") + 1


def module_tree(
    model: nn.Module,
    depth: int,
    sites: list[Site],
    flops: dict[str, tuple[int, int]] | None,
    block_label: str | None,
) -> list[ModuleCost]:
    """Modules down to ``depth`` in definition order; ``flops``: path -> (fc_only, all_ops)."""
    site_paths = [s.module_path for s in sites]
    rows = []
    for path, module in model.named_modules():
        level = module_depth(path)
        if level > depth:
            continue
        inside = sum(1 for s in site_paths if s == path or not path or s.startswith(path + "."))
        fc, al = flops.get(path, (0, 0)) if flops is not None else (None, None)
        rows.append(
            ModuleCost(
                path=path, depth=level, type=type(module).__name__,
                params=sum(p.numel() for p in module.parameters()),
                flops_fc_only=fc, flops_all_ops=al,
                block=block_label if path in site_paths else None, blocks_inside=inside,
                block_kind=block_label if inside else None,
            )
        )
    return rows
