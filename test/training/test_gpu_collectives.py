"""Multi-GPU training's collectives without GPUs (issue 32.1 and 32.4).

``torch.distributed`` is replaced by a recording fake of an NCCL group (NCCL has no CPU
backend, so a CPU tensor in a collective fails there: "No backend type associated with device
type cpu"), and CUDA by test/fake_cuda.py. The checks: every collective gets a CUDA tensor, and
``torch.cuda.set_device(LOCAL_RANK)`` comes before the process group, any barrier and the
teacher cache; pseudo-labels are made on the rank's GPU, not the CPU.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch
import torch.distributed as dist

from distill_helpers import distill_config, teacher_file
from fake_cuda import CudaTensor, FakeCuda
from litesam_ros.training.distill import labels as label_cache
from litesam_ros.training.distill import pseudo_labels, teacher_cache
from litesam_ros.training.loop import checkpoint_or_stop
from litesam_ros.training.supervised.trainer import start_run


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> str:
    return teacher_file(tmp_path_factory.mktemp("teacher"))


class StopHere(Exception):
    """Ends a run at a chosen collective (what follows needs a real process group)."""


class RecordingNccl:
    """torch.distributed as one rank of an NCCL group: records each call in ``events``."""

    def __init__(self, rank: int, world: int, others_stop: bool = False,
                 stop_at_barrier: int = 0) -> None:
        self.rank, self.world, self.others_stop = rank, world, others_stop
        self.stop_at_barrier, self.barriers = stop_at_barrier, 0
        self.events: list[tuple[str, Any]] = []
        self.initialized = False

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in ("init_process_group", "is_initialized", "get_rank", "get_world_size",
                     "get_backend", "all_reduce", "barrier"):
            monkeypatch.setattr(dist, name, getattr(self, name))
        monkeypatch.setattr(torch.cuda, "set_device",
                            lambda d: self.events.append(("set_device", torch.device(d))))

    def init_process_group(self, backend: str, **kw: Any) -> None:
        self.events.append(("init_process_group", backend))
        self.initialized = True

    def is_initialized(self) -> bool:
        return self.initialized

    def get_rank(self) -> int:
        return self.rank

    def get_world_size(self) -> int:
        return self.world

    def get_backend(self, group: Any = None) -> str:
        return "nccl"

    def all_reduce(self, t: torch.Tensor, op: Any = None, **kw: Any) -> None:
        self.events.append(("all_reduce", t.device))
        if not isinstance(t, CudaTensor):
            raise RuntimeError("No backend type associated with device type cpu")
        if self.others_stop:  # another rank wants to stop: MAX gives every rank 1
            t[1] = 1.0

    def barrier(self, **kw: Any) -> None:
        self.barriers += 1
        self.events.append(("barrier", kw.get("device_ids")))
        if self.barriers == self.stop_at_barrier:
            raise StopHere


def _torchrun_env(monkeypatch: pytest.MonkeyPatch, rank: int, local_rank: int,
                  world: int) -> None:
    for k, v in (("RANK", rank), ("LOCAL_RANK", local_rank), ("WORLD_SIZE", world)):
        monkeypatch.setenv(k, str(v))


def test_agree_on_stop_reduces_a_cuda_tensor(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = RecordingNccl(rank=1, world=2, others_stop=True)
    fake.install(monkeypatch)
    cfg = SimpleNamespace(ckpt_every_steps=0, ckpt_every_seconds=0.0, max_seconds=0.0,
                          stop_after=0, max_cpu_seconds=0.0)
    with FakeCuda() as fc:
        due, stop = checkpoint_or_stop(cfg, step=3, start=0, elapsed=1.0, since_ckpt=1.0,
                                       world=2)
    assert fake.events == [("all_reduce", torch.device("cuda", 0))]
    assert (due, stop) == (False, True)  # the other rank's stop reached this one
    assert fc.mismatches == [] and fc.total_syncs == 1  # the flags read back once


def test_start_run_sets_the_rank_device_before_nccl(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = RecordingNccl(rank=3, world=4)
    fake.install(monkeypatch)
    _torchrun_env(monkeypatch, rank=3, local_rank=1, world=4)
    rank, world, device = start_run(0, "cuda")
    assert (rank, world, device) == (3, 4, torch.device("cuda", 1))
    assert fake.events == [("set_device", torch.device("cuda", 1)),
                           ("init_process_group", "nccl")]


def test_pseudo_labels_rank_uses_its_gpu_for_cache_and_labels(
        tmp_path: Any, teacher: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rank 1 of 2 on cuda:1: set_device first; the teacher cache and the segment-everything
    labels run on the GPU (the run stops at the barrier after the labels)."""
    fake = RecordingNccl(rank=1, world=2, stop_at_barrier=2)
    fake.install(monkeypatch)
    _torchrun_env(monkeypatch, rank=1, local_rank=1, world=2)
    devices: list[Any] = []
    real_build, real_labels = teacher_cache.TeacherCache.build, label_cache.segment_masks

    def cache_build(self: Any, teacher: Any, *args: Any, **kw: Any) -> Any:
        fake.events.append(("cache build", None))
        return real_build(self, teacher, *args, **kw)

    def labels(segmenter: Any, *args: Any, **kw: Any) -> Any:
        devices.append(next(segmenter.backend.model.parameters()).device)
        devices.append(segmenter.backend.device)
        return real_labels(segmenter, *args, **kw)

    monkeypatch.setattr(teacher_cache.TeacherCache, "build", cache_build)
    monkeypatch.setattr(label_cache, "segment_masks", labels)
    cfg = distill_config(tmp_path, teacher, "pseudo_labels", device="cuda",
                         data={"builtin": ["skimage"], "limit": 4, "max_side": 96})
    with FakeCuda() as fc, torch.no_grad(), pytest.raises(StopHere):
        pseudo_labels.run_pseudo_labels(cfg)
    names = [e[0] for e in fake.events]
    assert names[:4] == ["set_device", "init_process_group", "cache build", "barrier"]
    assert fake.events[0] == ("set_device", torch.device("cuda", 1))
    assert devices and all(d.type == "cuda" for d in devices)  # not the CPU
    assert fc.mismatches == []
