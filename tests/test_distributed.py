"""Two CPU processes (torchrun + gloo) train a few steps and end with identical parameters."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from tiny_runs import REPO, tiny_overrides

WORKER = textwrap.dedent("""
    import sys, torch
    from diffpose_viz.methods import load_config
    from diffpose_viz.training.trainer import Trainer
    from diffpose_viz import distributed as ddp
    out = sys.argv[2]
    cfg = load_config(sys.argv[1], sys.argv[3:])
    tr = Trainer(cfg, out, progress=False)
    tr.setup()
    tr.train()
    torch.save({"model": tr.net.state_dict(), "ema": tr.ema.module.state_dict(), "step": tr.step,
                "world": tr.info.world_size}, f"{out}/rank{tr.info.rank}.pt")
    ddp.shutdown()
""")


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="torch.distributed with gloo is not available")
def test_two_ranks_end_identical(tiny_data, tmp_path):  # noqa: F811
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = tmp_path / "run"
    out.mkdir()
    overrides = tiny_overrides(tiny_data, **{"method": "diffpose_joint", "train.max_steps": 8, "train.batch_size": 16, "train.epochs": 100,
                                            "train.eval_every": 4})
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script),
           str(REPO / "configs" / "smoke.yaml"), str(out), *overrides]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0 = torch.load(out / "rank0.pt", weights_only=False)
    r1 = torch.load(out / "rank1.pt", weights_only=False)
    assert r0["world"] == r1["world"] == 2 and r0["step"] == r1["step"] == 8
    for part in ("model", "ema"):
        for k, v in r0[part].items():
            assert torch.equal(v, r1[part][k]), f"{part}.{k} differs between ranks"
    # rank 0 alone wrote the checkpoints, and they hold rank 0's weights
    ckpt = torch.load(out / "last.pt", weights_only=False)
    assert ckpt["world_size"] == 2 and len(ckpt["rng_per_rank"]) == 2
    assert all(torch.equal(v, ckpt["model"][k]) for k, v in r0["model"].items())
    log_lines = (out / "train_log.jsonl").read_text().splitlines()
    assert len(log_lines) == len(set(log_lines))  # written once, not once per rank
