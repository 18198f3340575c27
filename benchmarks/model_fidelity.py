"""Params and MACs per Lite-SAM component for every registry config, next to the paper.

MACs = FLOPs / 2 from ``torch.utils.flop_counter.FlopCounterMode`` (convs, linears, matmuls;
pooling, norms and element-wise ops are not counted, as in the usual MAC counters). By default
the model is built on the ``meta`` device, so nothing is computed and the script takes seconds;
``--device cpu`` runs the real forward passes instead (same counts).

    python benchmarks/model_fidelity.py [--models lite_sam_r640 ...] [--prompts 64] [--markdown]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "litesam_ros"))  # a source checkout

from litesam_ros.model import SamModel, build_model, get_config, list_models  # noqa: E402

# Lite-SAM paper (ECCV 2024 poster, Table 1 and the model-complexity table), at 640x640.
PAPER_BACKBONE = {"lite_sam_r640": (1.16, 10.9), "lite_sam_2x_r640": (2.19, 22.3),
                  "lite_sam_3x_r640": (3.63, 38.0)}
PAPER_FULL = {"lite_sam_r640": (4.2, 12.7)}


def params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def macs(fn: Callable[[], object]) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops() // 2


def measure(name: str, device: str, prompts: int) -> Dict[str, Tuple[int, int]]:
    """{component: (params, MACs)} for one registry config at its own resolution. Lite-SAM's
    encoder is split into its LiteViT backbone and neck; the SAM family's counts as one part."""
    cfg = get_config(name)
    with torch.device(device):
        model: SamModel = build_model(cfg).eval().requires_grad_(False)
        s, c, e = cfg.image_size, cfg.embed_dim, cfg.embedding_size
        images = torch.zeros(1, 3, s, s)
        emb = torch.zeros(1, c, e, e)

        def prompts_of(p: int) -> Tuple[torch.Tensor, torch.Tensor]:
            return torch.zeros(p, 2, 2), torch.tensor([[2.0, 3.0]]).expand(p, 2)

        one = prompts_of(1)
        many = prompts_of(prompts)
        enc = model.image_encoder
        backbone = getattr(enc, "backbone", None)
        out: Dict[str, Tuple[int, int]] = {}
        if backbone is not None:  # LiteViT
            feats = torch.zeros(1, backbone.out_dim, e, e)
            out["LiteViT backbone"] = (params(backbone), macs(lambda: backbone(images)))
            out["neck"] = (params(enc.neck), macs(lambda: enc.neck(feats)))
        else:
            out[f"image encoder ({cfg.encoder})"] = (params(enc), macs(lambda: enc(images)))
        ppn = model.autoppn
        if ppn is not None:
            out["AutoPPN"] = (params(ppn), macs(lambda: ppn.propose(ppn(emb))))
        out.update({
            "prompt encoder": (params(model.prompt_encoder),
                               macs(lambda: model.prompt_encoder(*one))),
            "mask decoder, 1 prompt": (params(model.mask_decoder),
                                       macs(lambda: model.decode(emb, *one))
                                       - macs(lambda: model.prompt_encoder(*one))),
            f"mask decoder, per prompt at P={prompts}": (
                params(model.mask_decoder), macs(lambda: model.decode(emb, *many)) // prompts),
        })
        full_macs = macs(lambda: model.encode(images)) + macs(lambda: model.decode(emb, *one))
        out["full model, 1 prompt"] = (params(model), full_macs)
    return out


def paper_for(name: str, component: str) -> Optional[Tuple[float, float]]:
    if component == "LiteViT backbone":
        return PAPER_BACKBONE.get(name)
    if component == "full model, 1 prompt":
        return PAPER_FULL.get(name)
    return None


def rows(names: List[str], device: str, prompts: int) -> List[List[str]]:
    table = []
    for name in names:
        for comp, (p, m) in measure(name, device, prompts).items():
            ref = paper_for(name, comp)
            if ref:
                dp, dm = 100 * (p / 1e6 / ref[0] - 1), 100 * (m / 1e9 / ref[1] - 1)
                delta = f"{dp:+.0f}% / {dm:+.0f}%"
                paper = f"{ref[0]:.2f}M / {ref[1]:.1f}G"
            else:
                delta = paper = ""
            table.append([name, str(get_config(name).image_size), comp, f"{p / 1e6:.3f}M",
                          f"{m / 1e9:.3f}G", paper, delta])
    return table


#: The arguments of its smoke mode: seconds, run by test/test_benchmarks_smoke.py ({tmp}: a
#: scratch folder, {cache}: the engine cache, {domain}: a free ROS domain id, {tiny}: a
#: 64 px Lite-SAM checkpoint with random weights).
SMOKE = ["--models", "lite_sam_r320", "efficient_sam_vitt_autoppn", "mobile_sam", "--prompts", "2"]


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=list_models())
    ap.add_argument("--device", default="meta", help="meta (no compute, default) or cpu")
    ap.add_argument("--prompts", type=int, default=64, help="batch for the per-prompt cost")
    ap.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = ap.parse_args(argv)
    if args.device != "meta":
        torch.set_num_threads(1)
    head = ["model", "S", "component", "params", "MACs", "paper (params / MACs)",
            "vs paper"]
    table = rows(args.models, args.device, args.prompts)
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in table:
            print("| " + " | ".join(r) + " |")
        return
    widths = [max(len(r[i]) for r in table + [head]) for i in range(len(head))]
    for r in [head] + table:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))


if __name__ == "__main__":
    main()
