"""What a forward or a training step moves and computes, op by op, and how long a device needs for it:
``rules`` (bytes and FLOPs of one ATen op), ``record`` (every op of a model on fake tensors),
``summary`` (totals per op type, module and block role), ``devices`` (peak FLOP/s and bandwidth
of known GPUs, a measured CPU, a user's YAML file) and ``roofline`` (the time those imply)."""
