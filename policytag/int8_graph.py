"""Rewrites of the quantised ONNX graph that make a sentence's int8 scores a function of that sentence alone, and
which nodes of the float graph belong to which encoder layer (`layer_nodes`, for the layers kept in float).

`per_token_activations`: one symmetric activation scale per token instead of one per batch (MatMulIntegerToFloat
with the weights' per-channel scales, then the token's scale); `row_wise_pooling`: mean pooling as a batched
MatMul, summing each sentence on its own. With batches of one token count (no padding), a sentence's scores are
bit-for-bit the same in any batch (`check_batch_invariance`). Why: docs/architecture.md, "Scoring on a CPU".
"""

from __future__ import annotations

import ast
import re

import numpy as np

OPSET = 21
"""QuantizeLinear with a block per row (block_size) needs opset 21; the exporter writes 18. No op of the
classifier's graph changes meaning between the two (18 -> 21 adds types and float8 options)."""
ZERO_POINT = 128
"""Symmetric int8 codes shifted into uint8: ONNX Runtime's fast CPU kernels take uint8 activations."""


class GraphRewriteError(RuntimeError):
    """The quantised graph is not shaped as the rewrite expects (another exporter or quantiser version)."""


SCOPES_KEY = "pkg.torch.onnx.name_scopes"
"""The module path of each node, as torch.onnx (dynamo) records it in the node's metadata."""
LAYER_SCOPE = re.compile(r"(?:^|\.)encoder\.layer\.(\d+)$")


def layer_nodes(model, layers) -> list[str]:
    """Names of the MatMul and Gemm nodes of the float ONNX `model` that compute inside the encoder layers
    `layers` (indices from 0), found by the module scopes the exporter records; raises GraphRewriteError when the
    graph has none for a requested layer (an exporter that records no scopes)."""
    layers = set(layers)
    found: dict[int, list[str]] = {}
    for node in model.graph.node:
        if node.op_type not in ("MatMul", "Gemm"):
            continue
        scopes = next((entry.value for entry in node.metadata_props if entry.key == SCOPES_KEY), None)
        for scope in ast.literal_eval(scopes) if scopes else ():
            match = LAYER_SCOPE.search(scope)
            if match and int(match.group(1)) in layers:
                found.setdefault(int(match.group(1)), []).append(node.name)
                break
    missing = sorted(layers - set(found))
    if missing:
        raise GraphRewriteError(f"the ONNX export names no MatMul of encoder layer(s) {missing} in its "
                                f"'{SCOPES_KEY}' metadata; export with torch.onnx dynamo, or set int8_float_layers 0")
    return [name for layer in sorted(found) for name in found[layer]]


def _consumers(graph) -> dict[str, list]:
    found: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            found.setdefault(name, []).append(node)
    return found


def _constant(graph, name: str, value: np.ndarray) -> str:
    from onnx import numpy_helper

    graph.initializer.append(numpy_helper.from_array(value, name))
    return name


def per_token_activations(model):
    """Quantise activations per token instead of per tensor (see the module docstring). Returns `model`."""
    from onnx import TensorProto, helper

    graph = model.graph
    consumers = _consumers(graph)
    producers = {output: node for node in graph.node for output in node.output}
    weights = {initializer.name: initializer for initializer in graph.initializer}
    last_axis = _constant(graph, "per_token/axes", np.array([-1], np.int64))
    inverse_range = _constant(graph, "per_token/inverse_127", np.array(1.0 / 127.0, np.float32))
    tiny = _constant(graph, "per_token/tiny", np.array(1e-8, np.float32))
    zero = _constant(graph, "per_token/zero", np.array(0.0, np.float32))
    shift = _constant(graph, "per_token/shift", np.array(float(ZERO_POINT), np.float32))
    one = _constant(graph, "per_token/one", np.array(1.0, np.float32))
    zero_point = _constant(graph, "per_token/zero_point", np.array(ZERO_POINT, np.uint8))
    row_scales: dict[str, str] = {}  # quantised activation -> its per-token scale
    replaced: set[int] = set()
    rewritten = []
    for index, node in enumerate(graph.node):
        if node.op_type == "DynamicQuantizeLinear":
            source, (codes, scale, _) = node.input[0], node.output
            widths = {weights[user.input[1]].dims[0] for user in consumers.get(codes, [])
                      if user.op_type == "MatMulInteger" and user.input[1] in weights}
            if len(widths) != 1 or any(user.op_type != "MatMulInteger" for user in consumers.get(codes, [])):
                raise GraphRewriteError(f"quantised activation {codes!r} does not feed MatMulIntegers of one width")
            prefix = f"per_token/{index}/"
            rewritten += [
                helper.make_node("Abs", [source], [prefix + "abs"]),
                helper.make_node("ReduceMax", [prefix + "abs", last_axis], [prefix + "max"], keepdims=1),
                helper.make_node("Max", [prefix + "max", tiny], [prefix + "max_positive"]),
                helper.make_node("Mul", [prefix + "max_positive", inverse_range], [scale]),
                # QuantizeLinear wants a zero point shaped like the scale: 0 * scale + 128, as uint8
                helper.make_node("Mul", [scale, zero], [prefix + "zeros"]),
                helper.make_node("Add", [prefix + "zeros", shift], [prefix + "shifted"]),
                helper.make_node("Cast", [prefix + "shifted"], [prefix + "zero_point"], to=TensorProto.UINT8),
                helper.make_node("QuantizeLinear", [source, scale, prefix + "zero_point"], [codes], axis=-1,
                                 block_size=widths.pop()),
            ]
            row_scales[codes] = scale
            continue
        if node.op_type == "MatMulInteger" and node.input[0] in row_scales:
            codes, weight, _, weight_zero_point = node.input
            cast = _only(consumers, node.output[0], "Cast")
            scaled = _only(consumers, cast.output[0], "Mul")
            multiplier = next(name for name in scaled.input if name != cast.output[0])
            scales_product = producers.get(multiplier)
            if (scales_product is None or scales_product.op_type != "Mul"
                    or row_scales[codes] not in scales_product.input):
                raise GraphRewriteError(f"{node.name}: its output is not scaled by activation scale x weight scale")
            weight_scale = next(name for name in scales_product.input if name != row_scales[codes])
            output = scaled.output[0]
            rewritten += [
                helper.make_node("MatMulIntegerToFloat", [codes, weight, one, weight_scale, zero_point,
                                                          weight_zero_point], [output + "/per_channel"],
                                 domain="com.microsoft"),
                helper.make_node("Mul", [output + "/per_channel", row_scales[codes]], [output]),
            ]
            replaced.update({id(cast), id(scaled), id(scales_product)})
            continue
        rewritten.append(node)
    if not row_scales:
        raise GraphRewriteError("the graph holds no DynamicQuantizeLinear: is it quantised dynamically?")
    _replace_nodes(graph, [node for node in rewritten if id(node) not in replaced])
    _set_opsets(model)
    return model


def row_wise_pooling(model):
    """Each ReduceSum over axis 1 of a [B, S, H] tensor becomes MatMul(ones [B, 1, S], x) squeezed to [B, H]."""
    from onnx import helper, numpy_helper, shape_inference

    inferred = shape_inference.infer_shapes(model)
    ranks = {value.name: len(value.type.tensor_type.shape.dim)
             for value in list(inferred.graph.value_info) + list(inferred.graph.input)}
    graph = model.graph
    constants = {initializer.name: numpy_helper.to_array(initializer) for initializer in graph.initializer}
    axis = _constant(graph, "row_pooling/axis", np.array([1], np.int64))
    rewritten, pooled = [], 0
    for index, node in enumerate(graph.node):
        keepdims = next((attribute.i for attribute in node.attribute if attribute.name == "keepdims"), 1)
        if (node.op_type == "ReduceSum" and len(node.input) > 1 and node.input[1] in constants
                and constants[node.input[1]].tolist() == [1] and keepdims == 0 and ranks.get(node.input[0]) == 3):
            prefix = f"row_pooling/{index}/"
            rewritten += [
                helper.make_node("Shape", [node.input[0]], [prefix + "batch_and_sequence"], start=0, end=2),
                helper.make_node("ConstantOfShape", [prefix + "batch_and_sequence"], [prefix + "ones"],
                                 value=numpy_helper.from_array(np.array([1.0], np.float32))),
                helper.make_node("Unsqueeze", [prefix + "ones", axis], [prefix + "ones_row"]),
                helper.make_node("MatMul", [prefix + "ones_row", node.input[0]], [prefix + "sum"]),
                helper.make_node("Squeeze", [prefix + "sum", axis], list(node.output)),
            ]
            pooled += 1
            continue
        rewritten.append(node)
    if not pooled:
        raise GraphRewriteError("the graph holds no ReduceSum over the sequence axis (mean pooling)")
    _replace_nodes(graph, rewritten)
    return model


def _only(consumers: dict[str, list], name: str, op_type: str):
    users = consumers.get(name, [])
    if len(users) != 1 or users[0].op_type != op_type:
        raise GraphRewriteError(f"{name!r} should feed exactly one {op_type}, not {[u.op_type for u in users]}")
    return users[0]


def _replace_nodes(graph, nodes: list) -> None:
    del graph.node[:]
    graph.node.extend(nodes)


def _set_opsets(model) -> None:
    from onnx import helper

    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = max(opset.version, OPSET)
    if not any(opset.domain == "com.microsoft" for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))


def same_length_batches(token_ids, max_sentences: int):
    """(rows, input_ids, attention_mask) batches in which every sentence has the same token count, so nothing is
    padded; at most `max_sentences` each, in ascending length. `rows` index `token_ids`."""
    lengths = np.fromiter(map(len, token_ids), dtype=np.int64, count=len(token_ids))
    order = np.argsort(lengths, kind="stable")
    boundaries = np.flatnonzero(np.diff(lengths[order])) + 1
    for group in np.split(order, boundaries):
        for start in range(0, len(group), max_sentences):
            rows = group[start : start + max_sentences]
            input_ids = np.array([token_ids[row] for row in rows], dtype=np.int64).reshape(len(rows), -1)
            yield rows, input_ids, np.ones_like(input_ids)


def check_batch_invariance(session, vocab_size: int, pad_id: int = 0) -> None:
    """Score three sentences of one length together and one at a time: the logits must be bit-for-bit equal.
    Raises GraphRewriteError with the largest difference otherwise."""
    generator = np.random.default_rng(0)
    ids = generator.integers(5, vocab_size, size=(3, 19), dtype=np.int64)
    ids[ids == pad_id] = 5
    mask = np.ones_like(ids)
    together = session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
    alone = np.concatenate([session.run(["logits"], {"input_ids": ids[i : i + 1], "attention_mask": mask[i : i + 1]})[0]
                            for i in range(len(ids))])
    if not np.array_equal(together, alone):
        raise GraphRewriteError("int8 scores depend on the batch after the rewrite (max difference "
                                f"{np.abs(together - alone).max():.2e})")
