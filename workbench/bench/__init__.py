"""Benchmark MSG-Net inference on this machine: prints a table, writes JSON.

    .venv/bin/python -m workbench.bench                      # everything (~10 min on 2 cores)
    .venv/bin/python -m workbench.bench --skip-torchserve --sizes 256,512 --variants eager,fast

Parts (each can be skipped): the machine's fp32 matmul GFLOP/s; in-process latency per size and
inference variant, each variant in a process of its own (median of --runs after --warmup, ratio
to ``eager`` measured in this run and in the same rounds, achieved GFLOP/s); peak RSS per
(variant, size) in a fresh subprocess (``ru_maxrss`` of the child, through the served path:
Stylizer, tiled above the threshold); PSNR of each variant against eager fp32 on photos;
tiled-vs-full PSNR and the seam ratio at 1024²; TorchServe cold start, end-to-end latency and
throughput with 1/4/8 concurrent clients (a private server on free ports).

Weights: weights/msgnet-21styles.pt when present, else a seeded random ngf=128 net (speed and
memory do not depend on the weight values; PSNR on random weights is only indicative).
"""
