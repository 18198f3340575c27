"""Trainer: loss goes down, exact resume, DDP on 2 CPU processes (gloo), eval, CLI."""
import json
import os
import pathlib
import socket

import pytest
import torch
import torch.multiprocessing as mp

from conftest import tiny_train_config
from litesam_ros.model import load_checkpoint
from litesam_ros.training.supervised.trainer import train


def _params(path):
    return {k: v.clone() for k, v in load_checkpoint(path)[0].state_dict().items()}


def test_short_training_reduces_loss(tmp_path):
    # overfit two fixed scenes: the loss must fall clearly
    cfg = tiny_train_config(tmp_path, steps=40, lr=3e-3, warmup_steps=3,
                            log_file=str(tmp_path / "log.jsonl"),
                            data={"type": "synthetic", "length": 2,
                                  "synthetic": {"height": 64, "width": 64, "min_objects": 2,
                                                "max_objects": 3}})
    res = train(cfg)
    assert res["step"] == 40
    rows = [json.loads(x) for x in open(tmp_path / "log.jsonl")]
    assert [r["step"] for r in rows] == list(range(40))
    first = sum(r["loss"] for r in rows[:5]) / 5
    last = sum(r["loss"] for r in rows[-5:]) / 5
    assert last < 0.7 * first, (first, last)
    assert os.path.exists(cfg.checkpoint) and os.path.exists(cfg.state_file())


def test_resume_reproduces_next_steps(tmp_path):
    a = tiny_train_config(tmp_path / "a", steps=5)
    train(a)
    b = tiny_train_config(tmp_path / "b", steps=5, stop_after=3)
    assert train(b)["step"] == 3
    st = torch.load(b.state_file(), weights_only=False)
    assert st["step"] == 3
    b.stop_after = 0
    assert train(b)["step"] == 5
    pa, pb = _params(a.checkpoint), _params(b.checkpoint)
    assert pa.keys() == pb.keys()
    for k in pa:
        torch.testing.assert_close(pa[k], pb[k], rtol=0, atol=1e-6, msg=k)
    # and training really changed the weights (so the comparison means something)
    fresh = tiny_train_config(tmp_path / "c", steps=1)
    train(fresh)
    pc = _params(fresh.checkpoint)
    assert any(not torch.allclose(pa[k], pc[k]) for k in pa)


def test_data_workers_give_the_same_training(tmp_path):
    """Batches made by DataLoader workers (data_workers) are the batches of the training
    process: the same losses at every step and the same weights after a resumed run."""
    runs = {}
    for workers in (0, 2):
        folder = tmp_path / f"w{workers}"
        cfg = tiny_train_config(folder, steps=5, stop_after=3, data_workers=workers,
                                log_file=str(folder / "log.jsonl"))
        assert train(cfg)["step"] == 3
        cfg.stop_after = 0
        assert train(cfg)["step"] == 5  # resumed: the workers start at step 3
        rows = [json.loads(x) for x in open(folder / "log.jsonl")]
        runs[workers] = ([r["step"] for r in rows], [r["loss"] for r in rows],
                         _params(cfg.checkpoint))
    (steps0, loss0, p0), (steps2, loss2, p2) = runs[0], runs[2]
    assert steps0 == steps2 == [0, 1, 2, 3, 4]
    assert loss0 == pytest.approx(loss2, rel=1e-6, abs=1e-7)
    for k in p0:
        torch.testing.assert_close(p0[k], p2[k], rtol=0, atol=1e-6, msg=k)
    with pytest.raises(ValueError, match="data_workers"):
        tiny_train_config(tmp_path / "bad", data_workers=-1).validate()


def test_cpu_budget_stops_and_checkpoints(tmp_path):
    """max_cpu_seconds: the run stops after the step that crosses the CPU budget, with a
    checkpoint at that step; the same budget with ample steps stops well before them."""
    import time

    c0 = time.process_time()
    cfg = tiny_train_config(tmp_path / "a", steps=1000, max_cpu_seconds=1e-6)
    res = train(cfg)
    assert res["step"] == 1  # the first step crosses a 1 us budget
    assert torch.load(cfg.state_file(), weights_only=False)["step"] == 1
    one_step_cpu = time.process_time() - c0
    cfg = tiny_train_config(tmp_path / "b", steps=1000, max_cpu_seconds=3 * one_step_cpu)
    res = train(cfg)
    assert 1 < res["step"] < 1000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_cpu_processes_gloo(tmp_path):
    tmp = str(tmp_path)
    mp.spawn(_ddp_worker_params, args=(2, _free_port(), tmp), nprocs=2, join=True)
    r0 = torch.load(os.path.join(tmp, "r0.pt"), weights_only=False)
    r1 = torch.load(os.path.join(tmp, "r1.pt"), weights_only=False)
    assert r0["res"]["step"] == 3 and r1["res"]["step"] == 3
    # gradients are averaged: both ranks end with identical weights ...
    for k in r0["params"]:
        torch.testing.assert_close(r0["params"][k], r1["params"][k], rtol=0, atol=0, msg=k)
    # ... rank 0 wrote the checkpoint, and the weights moved from their initialisation
    ck = _params(os.path.join(tmp, "ck.pt"))
    for k in ck:
        torch.testing.assert_close(ck[k], r0["params"][k], rtol=0, atol=0)
    assert any(not torch.equal(r0["params"][k], r0["init"][k]) for k in r0["params"])
    # the two ranks saw different data (sum of their losses differ)
    assert r0["res"]["losses"]["loss"] != r1["res"]["losses"]["loss"]
    assert os.path.exists(os.path.join(tmp, "ck.pt.state.pt"))


def _ddp_worker_params(rank, world, port, tmp):
    import torch.distributed as dist

    from litesam_ros.training.supervised import trainer as tr

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        cfg = tiny_train_config(pathlib.Path(tmp), steps=3)
        holder = {}
        orig_build = tr.build_model

        def build(name):
            m = orig_build(name)
            holder["init"] = {k: v.detach().clone() for k, v in m.state_dict().items()}
            holder["model"] = m
            return m

        tr.build_model = build
        res = train(cfg, resume=False)
        params = {k: v.detach().clone() for k, v in holder["model"].state_dict().items()}
        torch.save({"res": res, "params": params, "init": holder["init"]},
                   os.path.join(tmp, f"r{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_eval_and_cli(tmp_path):
    from litesam_ros.apps.train_cli import main

    cfg = tiny_train_config(tmp_path, steps=2)
    cfg_file = tmp_path / "cfg.json"
    d = {k: getattr(cfg, k) for k in ("model", "checkpoint", "steps", "batch_size",
                                       "prompts_per_image", "data", "ckpt_every_seconds")}
    cfg_file.write_text(json.dumps(d))
    assert main(["train", "--config", str(cfg_file), "--no-progress", "--set", "lr=3e-5"]) == 0
    with pytest.raises(SystemExit, match="lr: 'x' is not a number"):
        main(["train", "--config", str(cfg_file), "--set", "lr=x"])
    out = tmp_path / "m.json"
    assert main(["eval", "--checkpoint", cfg.checkpoint, "--num", "3", "--top-n", "4", "16",
                 "--no-progress", "--output", str(out)]) == 0
    m = json.loads(out.read_text())
    assert m["images"] == 3 and m["instances"] >= 3
    for k in ("box_miou", "point_miou", "point_miou_best", "recall@4", "recall@16"):
        assert 0.0 <= m[k] <= 1.0, k
    assert m["recall@4"] <= m["recall@16"]
    assert m["proposals_per_image"] >= 0
    if m["proposals_per_image"] == 0:  # nothing proposed: nothing can be recalled
        assert m["recall@16"] == 0
    with pytest.raises(SystemExit):
        main(["bogus"])


def test_progressive_resize_init_from(tmp_path):
    # stage 1 at 48 px, stage 2 at the model's 64 px starting from stage 1's weights
    s1 = tiny_train_config(tmp_path / "s1", steps=2, image_size=48)
    train(s1)
    m1 = load_checkpoint(s1.checkpoint)[0]
    assert m1.config.image_size == 48 and m1.config.embedding_size == 3
    s2 = tiny_train_config(tmp_path / "s2", steps=1, init_from=s1.checkpoint, image_size=64,
                           lr=0.0)
    train(s2)
    m2 = load_checkpoint(s2.checkpoint)[0]
    assert m2.config.image_size == 64
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)  # lr 0: weights carried over


def test_the_gpu_run_config_loads_and_starts_from_the_shipped_weights():
    """config/train_gpu.yaml (scripts/gpu_train.sh) is a valid TrainConfig for the device's
    16 cores and its init_from file is the shipped checkpoint."""
    from litesam_ros.training.supervised.trainer import load_config

    root = pathlib.Path(__file__).resolve().parents[2]
    cfg = load_config(str(root / "config" / "train_gpu.yaml"))
    assert cfg.device == "cuda" and cfg.model == "lite_sam_r320"
    assert 0 < cfg.data_workers <= 15 and cfg.batch_size >= 16
    assert (root / cfg.init_from).is_file()
    assert load_checkpoint(str(root / cfg.init_from))[0].config.image_size == 320
