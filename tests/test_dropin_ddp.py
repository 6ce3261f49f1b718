"""Drop-in contract under DistributedDataParallel (issue 19): two CPU processes (gloo), each with
its own shard, train the default-impl and the eager network one step; the all-reduced
gradients, the outputs and the BatchNorm statistics are the same (float64)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

TESTS = Path(__file__).resolve().parent


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    sys.path.insert(0, str(TESTS))
    from dropin_nets import build_pair
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        results = {}
        for kind in ("se", "sk"):
            nets = build_pair("cpu", "resnet18", kind)
            shard = nets.x[2 * rank:2 * rank + 2] * (1 + rank)
            for impl, model in zip(("eager", "fused"), nets.copies(), strict=True):
                ddp = DistributedDataParallel(model.train())
                out = ddp(shard)
                out.square().sum().backward()
                results[(kind, impl)] = {
                    "out": out.detach(),
                    "grads": {n: p.grad for n, p in model.named_parameters()},
                    "buffers": dict(model.named_buffers()),
                }
        torch.save(results, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_on_two_ranks_trains_like_the_eager_network(tmp_path: Path) -> None:
    from dropin_nets import assert_same

    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for kind in ("se", "sk"):
        for rank in ranks:
            assert_same(rank[(kind, "fused")], rank[(kind, "eager")])
        # DDP averaged the gradients: both ranks hold the same ones, though their shards differ
        assert_same(ranks[0][(kind, "fused")]["grads"], ranks[1][(kind, "fused")]["grads"])
        assert not torch.equal(ranks[0][(kind, "fused")]["out"], ranks[1][(kind, "fused")]["out"])
