"""``torch.distributed`` for ``--ddp`` runs: one lifecycle (join from torchrun's environment, gather, leave).

Each rank times its own DDP steps; rank 0 gathers every rank's medians and reports the
slowest, because a synchronous data-parallel step is only as fast as its slowest rank. CUDA
uses NCCL with one GPU per local rank; CPU uses gloo, which is how the tests run it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from secli.util.errors import SecliError, SecliUsageError

_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return all(name in os.environ for name in _TORCHRUN_VARS)


def require_torchrun(command: str = "profile") -> None:
    if not launched_by_torchrun():
        missing = [name for name in _TORCHRUN_VARS if name not in os.environ]
        raise SecliUsageError(
            f"--ddp needs a torchrun launch ({', '.join(missing)} not set)",
            hint=f"torchrun --nproc-per-node 2 --no-python secli {command} ... --ddp",
        )


def init_distributed(device_type: str, timeout_s: float = 300.0, command: str = "profile") -> DistContext:
    """Join the process group torchrun set up; a clear error (naming ``command``) when not
    launched by torchrun."""
    require_torchrun(command)
    import torch
    import torch.distributed as dist

    backend = "nccl" if device_type == "cuda" else "gloo"
    local_rank = int(os.environ["LOCAL_RANK"])
    if device_type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise SecliError(
                f"local rank {local_rank} has no GPU ({torch.cuda.device_count()} visible)",
                hint="use --nproc-per-node <= the number of GPUs",
            )
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, backend)


def gather_to_main(obj: Any) -> list[Any] | None:
    """Every rank's ``obj`` on rank 0 (in rank order); None elsewhere."""
    import torch.distributed as dist

    gathered: list[Any] = [None] * dist.get_world_size() if dist.get_rank() == 0 else None  # type: ignore[assignment]
    dist.gather_object(obj, gathered, dst=0)
    return gathered


def any_rank(flag: bool, device: Any) -> bool:
    """True on every rank when ``flag`` is true on any rank (keeps ranks in step on failures)."""
    import torch
    import torch.distributed as dist

    value = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def shutdown() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def distributed_session(enabled: bool, device_type: str, command: str) -> Iterator[DistContext | None]:
    """The one DDP lifecycle every command uses: join the group, and leave it however the run ends.

    Yields None when ``enabled`` is false, so callers need no second code path.
    """
    if not enabled:
        yield None
        return
    context = init_distributed(device_type, command=command)
    try:
        yield context
    finally:
        shutdown()
