"""Two CPU processes (gloo): each takes a shard, the all-reduced sums equal one process's sums."""

from __future__ import annotations

import os
import socket

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from secli.blocks.spec import BlockSpec, ModelSpec
from secli.data.folders import make_loader
from secli.data.synthetic import SyntheticShapes
from secli.excitation.collect import collect_excitation
from secli.networks.models import build

SPEC = ModelSpec(arch="resnet18", block=BlockSpec(kind="se", stages=(5,)), num_classes=10)
N_IMAGES = 10


def _model():
    torch.manual_seed(0)
    return build(SPEC)


def _collect(rank: int, world: int, keep_raw: bool = False):
    built = _model()
    dataset = SyntheticShapes(N_IMAGES, size=32, seed=0)
    loader = make_loader(dataset, list(range(N_IMAGES)), batch_size=3, rank=rank, world_size=world)
    names = list(SyntheticShapes.classes)
    return collect_excitation(built.model, built.sites, loader, names, {k: k for k in range(10)}, keep_raw=keep_raw)


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        result = _collect(rank, world, keep_raw=True)
        if rank == 0:
            result.save(out_dir)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_sum_to_one_process(tmp_path):
    from secli.excitation.result import ExcitationResult

    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    shared = ExcitationResult.load(tmp_path)
    single = _collect(0, 1)
    assert shared.meta["ranks"] == 2
    assert shared.meta["images"] == N_IMAGES
    for site in single.sites:
        a, b = shared.get(site.name), single.get(site.name)
        np.testing.assert_array_equal(a["count"], b["count"])
        # identical up to a value sitting on a bin edge (batches of another size round differently)
        assert a["hist"].sum() == b["hist"].sum()
        assert np.abs(a["hist"] - b["hist"]).sum() <= 4
        np.testing.assert_allclose(a["sum"], b["sum"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a["sumsq"], b["sumsq"], rtol=1e-5, atol=1e-6)
    # --save-raw under DDP: raw.npz holds every rank's images, not rank 0's shard only
    with np.load(tmp_path / "raw.npz") as raw:
        labels = raw["labels"]
        assert sorted(labels.tolist()) == sorted(i % 10 for i in range(N_IMAGES))
        for site in single.sites:
            gates = raw[f"x1/{site.name}"]
            assert gates.shape[0] == N_IMAGES
            by_class = np.stack([gates[labels == k].sum(axis=0) for k in range(10)])
            np.testing.assert_allclose(by_class, shared.get(site.name)["sum"], rtol=1e-5, atol=1e-5)
