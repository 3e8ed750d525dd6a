"""An ONNX graph cut in two at one tensor: :func:`split_graph`.

The first part runs the first layers of a network, the second part the rest
from their output; the two parts in turn compute what the whole graph does,
operation for operation. A cascade runs the first part of its CNN beside the
cheap stage, on the core that the cheap stage leaves idle, and the rest only
for a photo the cheap stage passes on (see ``hybridclf.cascade._ahead``).

The graph is read and written at the level of the protobuf wire format
(fields of ``ModelProto``, ``GraphProto``, ``NodeProto``): the ``onnx``
package would do it too, but importing it costs a serving process about
17 MB, and only the list of nodes, their inputs and outputs, and the
initializers' names and shapes are needed.
"""

__all__ = ["split_graph"]

# field numbers of onnx.proto3
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_INPUT, _GRAPH_OUTPUT = 1, 5, 11, 12
_GRAPH_VALUE_INFO = 13
_NODE_INPUT, _NODE_OUTPUT, _NODE_OP_TYPE, _NODE_ATTRIBUTE = 1, 2, 4, 5
_ATTR_NAME, _ATTR_I, _ATTR_INTS = 1, 3, 8
_TENSOR_DIMS, _TENSOR_NAME = 1, 8
_VALUE_NAME = 1
#: The ops a cut may feed: ONNX Runtime fuses none of them with the node
#: before, so each part runs the same kernels as the whole graph.
_CUT_CONSUMERS = {"Conv", "Pad"}


def _varint(data, pos):
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(data):
    """``(number, wire_type, value, raw)`` of each field of a message."""
    pos, out = 0, []
    while pos < len(data):
        start = pos
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = data[pos : pos + size], pos + size
        else:
            raise ValueError(f"split_graph: unsupported protobuf wire type {wire}.")
        out.append((number, wire, value, data[start:pos]))
    return out


def _encode_varint(value):
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number, payload):
    """A length-delimited field."""
    return _encode_varint(number << 3 | 2) + _encode_varint(len(payload)) + payload


def _strings(fields, number):
    return [bytes(v).decode() for n, w, v, _ in fields if n == number and w == 2]


def _ints(fields, number):
    """The repeated int64 field ``number``, packed or not."""
    values = []
    for n, w, v, _ in fields:
        if n == number and w == 0:
            values.append(v)
        elif n == number and w == 2:
            pos = 0
            while pos < len(v):
                value, pos = _varint(v, pos)
                values.append(value)
    return values


class _Node:
    def __init__(self, raw):
        self.raw = raw
        fields = _fields(raw)
        self.inputs = [name for name in _strings(fields, _NODE_INPUT) if name]
        self.outputs = _strings(fields, _NODE_OUTPUT)
        self.op_type = _strings(fields, _NODE_OP_TYPE)[0]
        self.attributes = {}
        for _, _, value, _ in (f for f in fields if f[0] == _NODE_ATTRIBUTE):
            attr = _fields(value)
            ints = _ints(attr, _ATTR_INTS)
            single = [v for n, w, v, _ in attr if n == _ATTR_I and w == 0]
            self.attributes[_strings(attr, _ATTR_NAME)[0]] = ints or single


def _tensor_value_info(name, shape):
    """A ``ValueInfoProto``: a float tensor of this shape (None: a named size)."""
    dims = b"".join(
        _field(1, _field(2, f"d{i}".encode()) if size is None
               else _encode_varint(1 << 3) + _encode_varint(size))
        for i, size in enumerate(shape))
    tensor = _encode_varint(1 << 3) + _encode_varint(1) + _field(2, dims)
    return _field(_VALUE_NAME, name.encode()) + _field(2, _field(1, tensor))


def _costs(nodes, dynamic, dims):
    """Relative cost of each node: weights times output area (input area 1)."""
    area, costs = {}, []
    for node in nodes:
        if not dynamic(node):
            costs.append(0.0)
            continue
        here = next((area[name] for name in node.inputs if name in area), 1.0)
        if node.op_type == "Conv":
            for stride in node.attributes.get("strides", []):
                here /= max(stride, 1)
        cost = 0.0
        for name in node.inputs:
            if len(dims.get(name, ())) >= 2:
                weights = 1
                for d in dims[name]:
                    weights *= d
                cost += weights * here
        costs.append(cost)
        for name in node.outputs:
            area[name] = here
    return costs


def _best_cut(nodes, inputs, outputs, dims, fraction):
    """``(index, tensor)``: the valid cut after ``nodes[index]`` nearest ``fraction``.

    Cuts are compared by the share of the work before them.
    """
    dynamic_names = set(inputs)
    producer, last_use, consumers = {}, {}, {}
    for i, node in enumerate(nodes):
        for name in node.inputs:
            last_use[name] = i
            consumers.setdefault(name, []).append(node.op_type)
        if any(name in dynamic_names for name in node.inputs):
            dynamic_names.update(node.outputs)
            producer.update((name, i) for name in node.outputs)
    costs = _costs(nodes, lambda n: any(x in dynamic_names for x in n.inputs), dims)
    total = sum(costs) or 1.0
    best, done = None, 0.0
    for i in range(len(nodes) - 1):
        done += costs[i]
        live = [name for name, p in producer.items()
                if p <= i and (last_use.get(name, -1) > i or name in outputs)]
        live += [name for name in inputs if last_use.get(name, -1) > i]
        if (len(live) == 1 and live[0] in producer
                and len(consumers[live[0]]) == 1
                and consumers[live[0]][0] in _CUT_CONSUMERS
                and 0 < done < total):
            gap = abs(done / total - fraction)
            if best is None or gap < best[0]:
                best = (gap, i, live[0])
    return None if best is None else best[1:]


def _needed(nodes, targets, stop):
    """Indices of the nodes that ``targets`` depend on, not through ``stop``."""
    producer = {name: i for i, node in enumerate(nodes) for name in node.outputs}
    todo, seen = [t for t in targets if t not in stop], set()
    while todo:
        i = producer.get(todo.pop())
        if i is None or i in seen:
            continue
        seen.add(i)
        todo.extend(name for name in nodes[i].inputs if name not in stop)
    return sorted(seen)


def split_graph(model, fraction, shape=(None,) * 4):
    """The graph ``model`` cut in two after about ``fraction`` of its work.

    Parameters
    ----------
    model : bytes
        A serialised ONNX ``ModelProto`` with one input and dense
        initializers.

    fraction : float
        The share of the network's work (weights times output area, summed
        over the nodes with weights) wanted in the first part.

    shape : tuple of (int or None), default=(None, None, None, None)
        The cut tensor's shape as the parts declare it, None for a size
        left to ONNX Runtime: a CNN's feature maps have 4 dimensions.
        Without a declared rank ONNX Runtime runs the second part with other
        kernels, whose features differ in the last bits.

    Returns
    -------
    parts : tuple of (bytes, bytes, str) or None
        The first part (the graph's input to the cut tensor), the second
        (the cut tensor to the graph's outputs) and the cut tensor's name;
        None when no tensor cuts the graph alone: a valid cut is the only
        value passed from the first part to the second, feeds one ``Conv``
        or ``Pad`` node, and leaves work on both sides.
    """
    model = memoryview(model)  # fields as views: no copy of the weights
    model_fields = _fields(model)
    graph = next(v for n, w, v, _ in model_fields if n == _MODEL_GRAPH and w == 2)
    graph_fields = _fields(graph)
    nodes = [_Node(v) for n, _, v, _ in graph_fields if n == _GRAPH_NODE]
    initializers = {}
    dims = {}
    for n, _, v, raw in graph_fields:
        if n == _GRAPH_INITIALIZER:
            fields = _fields(v)
            name = _strings(fields, _TENSOR_NAME)[0]
            initializers[name], dims[name] = raw, _ints(fields, _TENSOR_DIMS)
    input_raw = {_strings(_fields(v), _VALUE_NAME)[0]: raw
                 for n, _, v, raw in graph_fields if n == _GRAPH_INPUT}
    inputs = [name for name in input_raw if name not in initializers]
    output_raw = {_strings(_fields(v), _VALUE_NAME)[0]: raw
                  for n, _, v, raw in graph_fields if n == _GRAPH_OUTPUT}
    cut = _best_cut(nodes, inputs, set(output_raw), dims, fraction)
    if len(inputs) != 1 or cut is None:
        return None
    _, tensor = cut
    info = _tensor_value_info(tensor, shape)
    head = _part(model_fields, graph_fields, nodes, initializers,
                 _needed(nodes, [tensor], set(inputs)),
                 [input_raw[inputs[0]]], [_field(_GRAPH_OUTPUT, info)])
    tail = _part(model_fields, graph_fields, nodes, initializers,
                 _needed(nodes, list(output_raw), {tensor}),
                 [_field(_GRAPH_INPUT, info)], list(output_raw.values()))
    return head, tail, tensor


def _part(model_fields, graph_fields, nodes, initializers, chosen, inputs, outputs):
    """A model of the nodes ``chosen``, with these input and output fields."""
    used = {name for i in chosen for name in nodes[i].inputs}
    graph = b"".join(
        [_field(_GRAPH_NODE, nodes[i].raw) for i in chosen]
        + [raw for name, raw in initializers.items() if name in used]
        + inputs + outputs
        + [raw for n, _, _, raw in graph_fields
           if n not in (_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_INPUT,
                        _GRAPH_OUTPUT, _GRAPH_VALUE_INFO)])
    return b"".join(_field(_MODEL_GRAPH, graph) if n == _MODEL_GRAPH else raw
                    for n, _, _, raw in model_fields)
