"""What the ``tf`` framework (1.2) leaves out and ``alab_layer`` needs from Terraform's plugin protocol.

Three gaps, closed here so the resource itself stays a plain ``tf`` resource:

- Write-only attributes (protocol 6.8, Terraform >= 1.11): the framework's generated protobuf predates
  the ``write_only`` field, so :class:`WriteOnlyAttribute` appends it to the encoded schema attribute.
  Terraform then never stores such a value in a plan or in state; that is how index credentials stay out
  of ``terraform.tfstate``.
- Write-only values reach the provider only in the ``config`` of ApplyResourceChange, which the framework
  does not hand to ``create``/``update``; :class:`AlabServicer` copies them into the planned state it
  passes on, and nulls them in every plan and new state it returns (Terraform requires null there).
- The framework plans a create without asking the resource, so a plan could not say why a layer version
  will be published; :class:`AlabServicer` runs the resource's ``plan`` for creates too.
"""

from __future__ import annotations

from typing import Any

import grpc
from tf.gen import tfplugin_pb2 as pb
from tf.iface import PlanContext
from tf.provider import ProviderServicer, _decode_state, _encode_state
from tf.schema import Attribute
from tf.utils import Diagnostics, read_dynamic_value, to_dynamic_value

#: ``Schema.Attribute.write_only`` is field 11 (varint): tag (11 << 3) | 0 = 0x58, value true = 0x01.
_WRITE_ONLY_TRUE = b"\x58\x01"


class WriteOnlyAttribute(Attribute):
    """An attribute Terraform passes to apply but never records in a plan or in state."""

    def to_pb(self) -> pb.Schema.Attribute:
        message = super().to_pb()
        return pb.Schema.Attribute.FromString(message.SerializeToString() + _WRITE_ONLY_TRUE)


class AlabServicer(ProviderServicer):
    """The framework's servicer plus write-only attributes and a resource-driven create plan."""

    def _write_only_names(self, type_name: str) -> list[str]:
        return [name for name, attr in self._get_res_attrs(type_name).items() if isinstance(attr, WriteOnlyAttribute)]

    def PlanResourceChange(self, request: pb.PlanResourceChange.Request, context: grpc.ServicerContext) -> Any:
        response = super().PlanResourceChange(request, context)
        type_name = request.type_name
        planned = read_dynamic_value(response.planned_state)
        if planned is None:
            return response
        failed = any(d.severity == pb.Diagnostic.ERROR for d in response.diagnostics)
        if read_dynamic_value(request.prior_state) is None and not failed:
            attrs = self._get_res_attrs(type_name)
            blocks = self._get_res_blocks(type_name)
            diags = Diagnostics()
            planned_enc, planned_state = _decode_state(diags, attrs, blocks, planned)
            resource = self.app.new_resource(self._get_res_cls(type_name))
            plan_context = PlanContext(diags, type_name, changed_fields=set(planned_state or {}))
            new_state = resource.plan(plan_context, None, planned_state or {})
            response.diagnostics.extend(diags.to_pb())
            if not diags.has_errors():
                planned = read_dynamic_value(_encode_state(attrs, blocks, new_state, planned_enc))
        for name in self._write_only_names(type_name):
            planned[name] = None
        response.planned_state.CopyFrom(to_dynamic_value(planned))
        return response

    def ApplyResourceChange(self, request: pb.ApplyResourceChange.Request, context: grpc.ServicerContext) -> Any:
        type_name = request.type_name
        names = self._write_only_names(type_name)
        planned = read_dynamic_value(request.planned_state)
        config = read_dynamic_value(request.config)
        if names and planned is not None and config is not None:
            for name in names:
                planned[name] = config.get(name)
            patched = pb.ApplyResourceChange.Request()
            patched.CopyFrom(request)
            patched.planned_state.CopyFrom(to_dynamic_value(planned))
            request = patched
        response = super().ApplyResourceChange(request, context)
        new_state = read_dynamic_value(response.new_state)
        if new_state is not None and names:
            for name in names:
                new_state[name] = None
            response.new_state.CopyFrom(to_dynamic_value(new_state))
        return response
