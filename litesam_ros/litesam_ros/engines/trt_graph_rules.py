"""What TensorRT's ONNX parser accepts, checked on an exported graph without TensorRT or a GPU.

The tables are the onnx-tensorrt docs/operators.md support matrix ("Supported Types") of the
8.6-GA and 10.1-GA releases, for the ops this project's graphs use and a few neighbours; the
rules are that file's restrictions and the importer's Q/DQ rules (DequantizeLinear takes INT8 /
FP8 / INT4 only, zero points must be zero). ``parser_violations`` lists every node that breaks
one, ``fp16_hazards`` the patterns that go wrong when TensorRT runs a layer in FP16, and
``peak_test_nodes`` the AutoPPN peak test the builder pins to FP32 (tensorrt_backend.pin_float).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

def _op_table(text: str) -> dict[str, str]:
    """op -> types from "TYPES: op op ..." lines (a line without ": " continues the one above)."""
    table: dict[str, str] = {}
    types = ""
    for line in text.strip("\n").splitlines():
        head, sep, ops = line.strip().rpartition(": ")
        if sep:
            types = head
        for op in (ops if sep else line).split():
            table[op] = types
    return table


#: op -> the input types the parser supports (onnx-tensorrt docs/operators.md, "Supported Types")
PARSER_8_6 = _op_table("""
    FP32 FP16 INT32: Abs Add Div Equal Greater GreaterOrEqual Less Max Min Mod Mul Neg Range Sub
                     TopK
    BOOL: And Not
    FP32 FP16 INT8 INT32: AveragePool Pad Sign
    FP32 FP16 INT32 INT8 UINT8 BOOL: Cast
    FP32 FP16 INT8: Clip Conv ConvTranspose Gemm MaxPool Relu Sigmoid Softplus Tanh
    FP32 FP16 INT32 INT8 BOOL: Concat Constant Identity Reshape Shape Slice Squeeze Transpose
                               Unsqueeze
    FP32: ConstantOfShape
    FP32 FP16: Cos Erf Floor LayerNormalization MatMul Pow QuantizeLinear ReduceMean ReduceSum
               Resize Sin Softmax Sqrt
    INT8: DequantizeLinear
    FP32 FP16 INT32 BOOL: Expand Split Where
    FP32 FP16 INT8 INT32 BOOL: Gather GatherElements GatherND
""")
PARSER_10 = _op_table("""
    FP32 FP16 BF16 INT32 INT64: Abs Add Div Equal Greater GreaterOrEqual Less Max Min Mod Mul
                                Neg Pad Range ReduceMean ReduceSum Relu Sign Sub TopK
    BOOL: And Not
    FP32 FP16 BF16: AveragePool Clip Conv ConvTranspose Cos Erf Floor Gemm LayerNormalization
                    MatMul MaxPool Pow QuantizeLinear Resize Sigmoid Sin Softmax Softplus Sqrt
                    Tanh
    FP32 FP16 BF16 INT32 INT64 UINT8 BOOL: Cast
    FP32 FP16 BF16 INT32 INT64 BOOL: Concat Constant ConstantOfShape Expand Gather
                                     GatherElements GatherND Identity Reshape Shape Slice Split
                                     Squeeze Transpose Unsqueeze Where
    INT8 FP8 INT4: DequantizeLinear
""")

# The importer is wider than the table: its elementwiseCheck lets Equal take every type ("Equal
# supports all types", onnx2trt_utils.cpp 8.6-GA, importerUtils.cpp 10.1-GA), BOOL included.
for _table in (PARSER_8_6, PARSER_10):
    _table["Equal"] += " BOOL"

#: parser version -> (its op table, (lowest, highest) ONNX opset it reads)
PARSERS = {"8.6": (PARSER_8_6, (7, 17)), "10": (PARSER_10, (9, 20))}
#: TopK's K must be below this ("`K` input must be less than 3840", 10.x)
TOPK_MAX_K = 3840
#: the input whose type an op's "Supported Types" names (0 unless listed)
TYPED_INPUT = {"Where": 1}
_TYPE_NAMES: dict[int, str] = {TensorProto.FLOAT: "FP32", TensorProto.FLOAT16: "FP16",
               TensorProto.BFLOAT16: "BF16", TensorProto.INT32: "INT32",
               TensorProto.INT64: "INT64", TensorProto.INT8: "INT8", TensorProto.UINT8: "UINT8",
               TensorProto.BOOL: "BOOL", TensorProto.DOUBLE: "DOUBLE",
               TensorProto.FLOAT8E4M3FN: "FP8", TensorProto.INT4: "INT4"}
_FLOATS = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE)


@dataclass(frozen=True)
class Violation:
    """One node (or the graph, node "") breaking one rule."""

    node: str
    op: str
    rule: str

    def __str__(self) -> str:
        return f"{self.node or '<graph>'} ({self.op}): {self.rule}"


class GraphView:
    """An ONNX graph with every tensor's element type (after shape inference), its producers
    and consumers."""

    def __init__(self, model: Union[onnx.ModelProto, str, Path]) -> None:
        if not isinstance(model, onnx.ModelProto):
            model = onnx.load(str(model), load_external_data=False)
        self.model = onnx.shape_inference.infer_shapes(model)
        g = self.model.graph
        self.nodes = list(g.node)
        self.inits = {i.name: i for i in g.initializer}
        self.types: dict[str, int] = {i.name: i.data_type for i in g.initializer}
        for v in list(g.input) + list(g.value_info) + list(g.output):
            self.types[v.name] = v.type.tensor_type.elem_type
        self.producer = {o: n for n in self.nodes for o in n.output}
        self.users: dict[str, list[onnx.NodeProto]] = {}
        for n in self.nodes:
            for i in n.input:
                self.users.setdefault(i, []).append(n)

    def opset(self) -> int:
        return next(o.version for o in self.model.opset_import if o.domain in ("", "ai.onnx"))

    def const(self, name: str) -> Optional[np.ndarray]:
        """The value of an initializer or Constant-node output, else None."""
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        n = self.producer.get(name)
        if n is not None and n.op_type == "Constant" and n.attribute:
            return numpy_helper.to_array(n.attribute[0].t)
        return None


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    return next((int(onnx.helper.get_attribute_value(a)) for a in node.attribute
                 if a.name == name), default)


def parser_violations(model: Union[onnx.ModelProto, str, Path], parser: str = "10",
                      profile: Any = None) -> list[Violation]:
    """Every rule of the ``parser`` version ("8.6" / "10") that the graph breaks: opset range,
    op and input type support, Q/DQ input types and zero points, no graph output straight from a
    DequantizeLinear, TopK's sorted output and K limit, and dynamic input dims that ``profile``
    (a tensorrt_backend DecoderProfile / EncoderProfile; None: no dynamic input allowed) does
    not range."""
    table, (lo, hi) = PARSERS[parser]
    view = GraphView(model)
    out = list(_graph_rules(view, lo, hi, profile))
    for n in view.nodes:
        out.extend(Violation(n.name, n.op_type, r) for r in _node_rules(view, n, table))
    return out


def _graph_rules(view: GraphView, lo: int, hi: int,
                 profile: Any) -> Iterator[Violation]:
    if not lo <= view.opset() <= hi:
        yield Violation("", "opset", f"opset {view.opset()} outside the parser's {lo}-{hi}")
    for o in view.model.graph.output:
        made = view.producer.get(o.name)
        if made is not None and made.op_type == "DequantizeLinear":
            yield Violation(made.name, made.op_type, f"graph output {o.name!r} comes straight "
                            "from a DequantizeLinear (8-bit per tensor)")
    dims = {i.name: tuple(d.dim_value if d.HasField("dim_value") else -1
                          for d in i.type.tensor_type.shape.dim)
            for i in view.model.graph.input if i.name not in view.inits}
    dynamic = {k: v for k, v in dims.items() if any(d < 0 for d in v)}
    if dynamic and profile is None:
        yield Violation("", "inputs", f"dynamic inputs {sorted(dynamic)} and no profile")
        return
    for name, shape in dynamic.items():
        for axis, d in enumerate(shape):
            if d < 0 and profile.axis_range(axis) is None:
                yield Violation("", "inputs", f"input {name!r} axis {axis} is dynamic and the "
                                "profile has no range for it")


def _node_rules(view: GraphView, n: onnx.NodeProto, table: dict[str, str]) -> Iterator[str]:
    if n.domain not in ("", "ai.onnx"):
        yield f"custom domain {n.domain!r} (needs a plugin)"
        return
    if n.op_type not in table:
        yield "op not in the parser's support table"
        return
    k = TYPED_INPUT.get(n.op_type, 0)
    if len(n.input) > k and n.input[k]:
        t = _TYPE_NAMES.get(int(view.types.get(n.input[k], 0)), "unknown")
        if t == "INT64" and "INT64" not in table["Cast"]:
            t = "INT32"  # 8.6: "TensorRT will attempt to cast down INT64 to INT32"
        if t not in table[n.op_type].split():
            yield f"input {n.input[k]!r} of type {t}; the parser takes {table[n.op_type]}"
    if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2:
        zp = view.const(n.input[2])
        if zp is None or np.any(zp != 0):
            yield "zero point must be a constant 0"
    if n.op_type == "TopK":
        if _attr(n, "sorted", 1) != 1:
            yield "sorted must be 1"
        kk = view.const(n.input[1])
        if kk is None or int(kk.reshape(-1)[0]) >= TOPK_MAX_K:
            yield f"K must be a constant below {TOPK_MAX_K}"


# -- FP16 ---------------------------------------------------------------------------------------
def peak_test_nodes(model: Union[onnx.ModelProto, str, Path]) -> list[str]:
    """The nodes of each ``Equal(x, MaxPool(x))`` peak test (AutoPPN's Point-NMS): the Equal,
    the MaxPool and x's producer. Equality holds only if both operands come out of one
    precision, so the TensorRT build runs these layers in FP32."""
    view = model if isinstance(model, GraphView) else GraphView(model)
    out: list[str] = []
    for n in view.nodes:
        if n.op_type != "Equal":
            continue
        pool = next((view.producer[i] for i in n.input if i in view.producer
                     and view.producer[i].op_type == "MaxPool"), None)
        if pool is None or pool.input[0] not in n.input:
            continue
        out.append(n.name)
        out.append(pool.name)
        if pool.input[0] in view.producer:
            out.append(view.producer[pool.input[0]].name)
    return out


def fp16_hazards(model: Union[onnx.ModelProto, str, Path],
                 pinned: Sequence[str] = ()) -> list[Violation]:
    """Patterns that break when TensorRT runs layers in FP16: an integer computed through float
    ops and cast back (Cast int->float ... Cast float->int, e.g. an exported floor division:
    FP16 has 11 significant bits, a cell index above 2048 rounds), and a float Equal whose
    operands are not pinned to one precision (``pinned``: node names the build keeps FP32)."""
    view = GraphView(model)
    out = []
    for n in view.nodes:
        if n.op_type == "Cast" and _attr(n, "to", 0) not in _FLOATS \
                and view.types.get(n.input[0]) in _FLOATS:
            start = _float_from_int(view, n.input[0])
            if start is not None:
                out.append(Violation(n.name, n.op_type, "integer computed in float (from "
                                     f"{start!r}): inexact in FP16"))
        if n.op_type == "Equal" and view.types.get(n.input[0]) in _FLOATS \
                and not _input_against_fp16_code(view, n):
            sources = [view.producer[i].name for i in n.input if i in view.producer]
            if n.name not in pinned or any(s not in pinned for s in sources):
                out.append(Violation(n.name, n.op_type, "float equality of operands that may "
                                     "be computed in different precisions"))
    return out


def _input_against_fp16_code(view: GraphView, n: onnx.NodeProto) -> bool:
    """An Equal of a graph input with a constant FP16 holds exactly (a prompt label against -1):
    both sides round alike, so its result is the same in any precision."""
    inputs = {i.name for i in view.model.graph.input}
    consts = [view.const(i) for i in n.input]
    exact = [c is not None and bool(np.array_equal(c.astype(np.float16).astype(c.dtype), c))
             for c in consts]
    return any(exact) and all(e or i in inputs for e, i in zip(exact, n.input))


def _float_from_int(view: GraphView, tensor: str) -> Optional[str]:
    """The Cast int->float node that float ``tensor`` derives from through float ops, if any."""
    seen, todo = set(), [tensor]
    while todo:
        name = todo.pop()
        node = view.producer.get(name)
        if node is None or name in seen:
            continue
        seen.add(name)
        if node.op_type == "Cast" and view.types.get(node.input[0]) not in _FLOATS:
            return node.name
        todo.extend(i for i in node.input if view.types.get(i) in _FLOATS
                    and view.const(i) is None)
    return None
