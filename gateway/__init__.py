"""Alliance Gateway: signed list records, an RFC 9162 audit log and federation over mTLS.

Layers (see docs/ARCHITECTURE in the README):
- ``gateway.core``: pure domain (stdlib + cryptography only);
- ``gateway.codec``: protobuf <-> domain, the one place that converts;
- ``gateway.service``: use cases over small storage/peer protocols;
- ``gateway.storage``: SQLAlchemy adapters (the only importer of sqlalchemy);
- ``gateway.transport``: gRPC adapters (the only importer of grpc);
- ``gateway.ops``: configuration, metrics, logging, the operator CLI.
"""
