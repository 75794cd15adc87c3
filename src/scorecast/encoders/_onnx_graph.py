"""Just enough of the ONNX model schema to read a graph's nodes and add an intermediate tensor as
a graph output, without the ``onnx`` package (not a dependency): a minimal protobuf schema is
built at run time; every field it does not name is kept as an unknown field and written back
unchanged, so the model onnxruntime loads is the shipped one plus one more output."""

from __future__ import annotations

from functools import lru_cache

ONNX_FLOAT = 1  # TensorProto.FLOAT


@lru_cache(maxsize=1)
def _model_class():
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(
        name="scorecast_onnx_min.proto", package="scorecast_onnx_min", syntax="proto2"
    )

    def message(name: str, fields: list[tuple[str, int, int, int, str | None]]) -> None:
        m = fdp.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = f".scorecast_onnx_min.{type_name}"

    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    # field numbers from onnx.proto (ModelProto.graph=7, GraphProto.node=1, .output=12, ...)
    message("TensorType", [("elem_type", 1, F.TYPE_INT32, opt, None)])
    message("TypeProto", [("tensor_type", 1, F.TYPE_MESSAGE, opt, "TensorType")])
    message("ValueInfoProto", [("name", 1, F.TYPE_STRING, opt, None), ("type", 2, F.TYPE_MESSAGE, opt, "TypeProto")])
    message(
        "NodeProto",
        [
            ("input", 1, F.TYPE_STRING, rep, None),
            ("output", 2, F.TYPE_STRING, rep, None),
            ("name", 3, F.TYPE_STRING, opt, None),
            ("op_type", 4, F.TYPE_STRING, opt, None),
        ],
    )
    message(
        "GraphProto",
        [("node", 1, F.TYPE_MESSAGE, rep, "NodeProto"), ("output", 12, F.TYPE_MESSAGE, rep, "ValueInfoProto")],
    )
    message("ModelProto", [("graph", 7, F.TYPE_MESSAGE, opt, "GraphProto")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("scorecast_onnx_min.ModelProto"))


def with_penultimate_output(model_bytes: bytes) -> tuple[bytes, str]:
    """The model with one more graph output: the input of its last MatMul (the activations the
    final dense layer reads). Returns (new model bytes, that tensor's name)."""
    model = _model_class()()
    model.ParseFromString(model_bytes)
    matmuls = [n for n in model.graph.node if n.op_type in ("MatMul", "Gemm")]
    if not matmuls:
        raise ValueError("graph has no MatMul/Gemm node: no penultimate layer to expose")
    name = matmuls[-1].input[0]
    if name not in {o.name for o in model.graph.output}:
        out = model.graph.output.add()
        out.name = name
        out.type.tensor_type.elem_type = ONNX_FLOAT
    return model.SerializeToString(), name
