"""Does collecting excitation statistics slow the forward pass? (target: ratio >= 0.9)
And, with ``--command``: what does the whole command cost beyond its statistics pass? (target <= ~2 s)

Measures, in one run and over the same DataLoader, images/s of
  (a) a plain forward pass of the model (eval, inference mode), and
  (b) ``secli.excitation.collect.collect_excitation`` (hooks at every site + batched per-class sums),
alternating a and b for several rounds and reporting the medians and their ratio b / a; and,
robust to a busy machine, both passes on each batch back to back ("paired").

    PYTHONPATH=$PWD python benchmarks/bench_excitation.py                       # SE-ResNet-18, synthetic 64 px
    PYTHONPATH=$PWD python benchmarks/bench_excitation.py --model se_r18_synth.pt --device cuda
    PYTHONPATH=$PWD python benchmarks/bench_excitation.py --in-memory          # images decoded once, compute only
    PYTHONPATH=$PWD python benchmarks/bench_excitation.py --command --model se_r18_synth.pt  # end to end, figures

``--command`` runs, alternating for ``--rounds`` rounds, two fresh processes over the same
``--images`` synthetic images (``--per-class`` = images / 10) at ``--size`` px:
  (a) a plain script: import torch, load the model, open the images as the command does, one
      forward pass over them (it prints its own forward-loop time), and
  (b) ``python -m commands.app visualize-excitation MODEL --data synthetic ... --figures F``
      (its statistics pass time comes from its JSON's ``meta.seconds``).
Beyond the statistics pass = wall(b) - stats(b) - [wall(a) - forward(a)]: what the command adds
to starting up, loading the model and running the images (figures, files, the CLI's imports).
The same difference in CPU seconds (getrusage of the children) is printed too: on a shared
machine the CPU time is the steadier of the two. Then the figures alone, in this process.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18", help="architecture (SE injected) or a secli checkpoint")
    parser.add_argument("--block", default="se")
    parser.add_argument("--images", type=int, default=320)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    parser.add_argument("--in-memory", action="store_true", help="render the images once, keep them in memory")
    parser.add_argument("--command", action="store_true", help="end-to-end command time against a plain forward")
    parser.add_argument("--figures", default="default", help="with --command: the figure set (default|all)")
    args = parser.parse_args()
    if args.command:
        from bench_excitation_command import command_benchmark

        command_benchmark(args)
        return

    from secli.blocks.spec import BlockSpec
    from secli.data.folders import make_loader
    from secli.data.synthetic import SyntheticShapes
    from secli.excitation.collect import choose_sites, collect_excitation
    from secli.networks.models import load_model, looks_like_file
    from secli.util.device import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = str(resolve_device(args.device))
    if looks_like_file(args.model):
        built = load_model(args.model)
    else:
        built = load_model(args.model, BlockSpec(kind=args.block), num_classes=10)
    model = built.model.to(device).eval()
    sites = choose_sites(built.sites, None, built.label)
    dataset = SyntheticShapes(args.images, size=args.size, seed=0)
    if args.in_memory:
        xs = torch.stack([dataset[i][0] for i in range(len(dataset))])
        dataset = _InMemory(xs, dataset.targets)
    loader = make_loader(dataset, list(range(args.images)), args.batch_size, args.workers,
                         pin_memory=device.startswith("cuda"))
    names = list(SyntheticShapes.classes)
    positions = {k: k for k in range(10)}

    def plain() -> float:
        start = time.perf_counter()
        n = 0
        with torch.inference_mode():
            for images, _labels, _bad in loader:
                model(images.to(device, non_blocking=True))
                n += images.shape[0]
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return n / (time.perf_counter() - start)

    def with_stats() -> float:
        start = time.perf_counter()
        result = collect_excitation(model, sites, loader, names, positions, device=device)
        return result.meta["images"] / (time.perf_counter() - start)

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def paired() -> tuple[float, float]:
        """Both passes on every batch, back to back: a plain forward timed inside the loader,
        then the statistics pass on the same batch, timed from yield to resume. A busy machine
        slows both alike, so the ratio survives noise that ruins whole-pass timings."""
        times = {"plain": 0.0, "stats": 0.0}

        def batches():
            for images, labels, bad in loader:
                images = images.to(device)
                sync()
                t0 = time.perf_counter()
                with torch.inference_mode():
                    model(images)
                sync()
                times["plain"] += time.perf_counter() - t0
                t1 = time.perf_counter()
                yield images, labels, bad
                sync()
                times["stats"] += time.perf_counter() - t1

        collect_excitation(model, sites, batches(), names, positions, device=device)
        return args.images / times["plain"], args.images / times["stats"]

    plain(), with_stats()  # warm-up: allocator, kernels, caches
    a, b, pairs = [], [], []
    for _ in range(args.rounds):
        a.append(plain())
        b.append(with_stats())
        pairs.append(paired())
    pa, pb = statistics.median(a), statistics.median(b)
    ratios = [s / p for p, s in pairs]
    print(f"model {built.label}, {len(sites)} sites, {args.images} images of {args.size} px, batch {args.batch_size}, "
          f"device {device}, threads {torch.get_num_threads()}, "
          f"{'in memory' if args.in_memory else 'synthetic loader'}")
    print("whole passes over the loader, alternating (medians of rounds):")
    print(f"  plain forward    : {pa:8.1f} images/s  (rounds: {', '.join(f'{v:.1f}' for v in a)})")
    print(f"  with excitation  : {pb:8.1f} images/s  (rounds: {', '.join(f'{v:.1f}' for v in b)})")
    print(f"  ratio            : {pb / pa:.3f}")
    print("paired per batch (model time only, loading excluded; median of rounds):")
    print(f"  plain / with     : {', '.join(f'{p:.1f}/{s:.1f}' for p, s in pairs)} images/s")
    print(f"  ratio            : {statistics.median(ratios):.3f}  (rounds: {', '.join(f'{r:.3f}' for r in ratios)})")
    print("target: ratio >= 0.9")


class _InMemory(torch.utils.data.Dataset):
    def __init__(self, xs: torch.Tensor, targets: list[int]) -> None:
        self.xs, self.targets = xs, targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        return self.xs[i], self.targets[i]


if __name__ == "__main__":
    main()
