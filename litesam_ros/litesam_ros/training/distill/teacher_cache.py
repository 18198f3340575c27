"""Teacher embedding cache (MobileSAM's trick): the teacher's encoder runs once per image.

Layout: ``<root>/<teacher id>/shard_NNNNN.pt`` holds ``{"keys": [...], "emb": fp16
[n,C,E,E]}`` for items ``[N*shard_size, (N+1)*shard_size)`` of the image list, and
``shard_NNNNN.json`` its keys (written last: a shard counts as done only when both exist, so an
interrupted build resumes at the first missing shard). Keys are content hashes of the augmented
image (``unlabeled.image_key``), so a cached embedding is found for the exact pixels whatever the
order of the list. The teacher id (``LoadedModel.model_id``: config, kind, file or weights hash)
names the folder, so two teachers never share entries.
"""
from __future__ import annotations

import json
import os
import re
import time
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ...model.geometry import Geometry
from ..data.unlabeled import UnlabeledImages


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:120]


class _Items(Dataset):
    """Items of an image list preprocessed with a geometry (runs in DataLoader workers)."""

    def __init__(self, images: UnlabeledImages, indices: List[int], geometry: Geometry) -> None:
        self.images, self.indices, self.geometry = images, indices, geometry

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int) -> Optional[Tuple[torch.Tensor, str]]:
        got = self.images.item(self.indices[j])
        if got is None:
            return None
        image, key = got
        return self.geometry.preprocess(image)[0], key


def _collate(batch: List[Any]) -> List[Any]:
    return list(batch)


class TeacherCache:
    """fp16 teacher embeddings on disk, one file per shard (see the module docstring)."""

    def __init__(self, root: str, teacher_id: str, shard_size: int = 64) -> None:
        self.dir = os.path.join(root, safe_name(teacher_id))
        self.teacher_id = teacher_id
        self.shard_size = int(shard_size)
        self._index: Optional[Dict[str, Tuple[int, int]]] = None
        self._shards: "OrderedDict[int, torch.Tensor]" = OrderedDict()

    def shard_path(self, k: int, ext: str = "pt") -> str:
        return os.path.join(self.dir, f"shard_{k:05d}.{ext}")

    def done(self, k: int) -> bool:
        return os.path.exists(self.shard_path(k)) and os.path.exists(self.shard_path(k, "json"))

    def num_shards(self, n_items: int) -> int:
        return (n_items + self.shard_size - 1) // self.shard_size

    @torch.no_grad()
    def build(self, teacher: Any, images: UnlabeledImages, batch_size: int = 4,
              workers: int = 0, progress: bool = True, rank: int = 0, world: int = 1,
              device: str = "cpu") -> Dict[str, Any]:
        """Compute every missing shard (rank r does shards k % world == r). Returns counts:
        shards computed / already there, items embedded, unreadable items skipped, seconds."""
        os.makedirs(self.dir, exist_ok=True)
        geometry = Geometry.of(teacher.config)
        teacher.eval().to(device)
        todo = [k for k in range(self.num_shards(len(images)))
                if k % world == rank and not self.done(k)]
        stats = {"shards_built": 0, "shards_present": self.num_shards(len(images)) - len(todo),
                 "embedded": 0, "skipped": 0, "seconds": 0.0}
        t0 = time.time()
        bar = tqdm(total=len(todo), disable=not progress, desc="teacher cache",
                   dynamic_ncols=True)
        for k in todo:
            idx = list(range(k * self.shard_size, min(len(images), (k + 1) * self.shard_size)))
            loader = DataLoader(_Items(images, idx, geometry), batch_size=batch_size,
                                num_workers=workers, collate_fn=_collate)
            keys: List[str] = []
            embs: List[torch.Tensor] = []
            for batch in loader:
                ok = [b for b in batch if b is not None]
                stats["skipped"] += len(batch) - len(ok)
                if not ok:
                    continue
                x = torch.stack([b[0] for b in ok]).to(device)
                embs.append(teacher.encode_image(x).half().cpu())
                keys.extend(b[1] for b in ok)
            emb = torch.cat(embs) if embs else torch.zeros(0)
            tmp = self.shard_path(k) + ".tmp"
            torch.save({"keys": keys, "emb": emb, "teacher_id": self.teacher_id}, tmp)
            os.replace(tmp, self.shard_path(k))
            with open(self.shard_path(k, "json") + ".tmp", "w") as f:
                json.dump(keys, f)
            os.replace(self.shard_path(k, "json") + ".tmp", self.shard_path(k, "json"))
            stats["shards_built"] += 1
            stats["embedded"] += len(keys)
            bar.update(1)
        bar.close()
        stats["seconds"] = time.time() - t0
        self._index = None
        return stats

    def index(self) -> Dict[str, Tuple[int, int]]:
        """key -> (shard, row) over every finished shard."""
        if self._index is None:
            idx: Dict[str, Tuple[int, int]] = {}
            names = sorted(os.listdir(self.dir)) if os.path.isdir(self.dir) else []
            for n in names:
                m = re.fullmatch(r"shard_(\d+)\.json", n)
                if m and os.path.exists(self.shard_path(int(m.group(1)))):
                    with open(os.path.join(self.dir, n)) as f:
                        for row, key in enumerate(json.load(f)):
                            idx[key] = (int(m.group(1)), row)
            self._index = idx
        return self._index

    def get(self, key: str) -> Optional[torch.Tensor]:
        """The fp16 embedding [C,E,E] of an image key, or None when not cached."""
        where = self.index().get(key)
        if where is None:
            return None
        k, row = where
        if k not in self._shards:
            self._shards[k] = torch.load(self.shard_path(k), map_location="cpu",
                                         weights_only=True)["emb"]
            while len(self._shards) > 4:
                self._shards.popitem(last=False)
        self._shards.move_to_end(k)
        return self._shards[k][row]

    def bytes_per_image(self) -> float:
        """Mean size on disk per cached image (shard files and key lists)."""
        n = len(self.index())
        size = sum(os.path.getsize(os.path.join(self.dir, f)) for f in os.listdir(self.dir))
        return size / max(n, 1)


__all__ = ["TeacherCache", "safe_name"]
