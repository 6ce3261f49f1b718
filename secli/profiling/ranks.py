"""Under ``--ddp``: rank 0 keeps, per model and mode, the timings of the slowest rank.

A synchronous data-parallel step is only as fast as its slowest rank, so that rank's medians
are the ones reported; every rank's step median is kept beside them.
"""

from __future__ import annotations

from typing import Any

from secli.profiling.results import Failure, ModelProfile
from secli.util.distributed import gather_to_main


def gather_slowest_rank(models: list[ModelProfile], dist_ctx: Any) -> bool:
    """Rank 0 keeps, per model and mode, the timings of the slowest rank. True on rank 0."""
    mine = [dict(model.timings) if model.ok else None for model in models]
    gathered = gather_to_main(mine)
    if gathered is None:
        return False
    for index, model in enumerate(models):
        if not model.ok:
            continue
        for mode in list(model.timings):
            maybe = [rank_timings[index][mode] if rank_timings[index] else None for rank_timings in gathered]
            per_rank = [t for t in maybe if t is not None]
            if len(per_rank) != len(maybe):
                model.failure = Failure("error", "no timings from every rank", mode)
                model.timings.clear()
                break
            slowest = max(range(len(per_rank)), key=lambda r: per_rank[r].step.median_ms)
            chosen = per_rank[slowest]
            chosen.world_size = dist_ctx.world_size
            chosen.slowest_rank = slowest
            chosen.rank_step_ms = [t.step.median_ms for t in per_rank]
            deltas = [t.memory for t in per_rank if t.memory is not None]
            chosen.memory = max(deltas, key=lambda m: m.delta_bytes) if deltas else None
            model.timings[mode] = chosen
    return True
