"""A protobuf message's fields read without any .proto: the numbers on the wire, as the tests' clients check them."""
from google.protobuf import empty_pb2
from google.protobuf.unknown_fields import UnknownFieldSet


def wire_fields(data):
    """A message's fields as (number, wire type, value)."""
    message = empty_pb2.Empty()
    message.ParseFromString(data)
    return [(f.field_number, f.wire_type, f.data) for f in UnknownFieldSet(message)]
