"""``python -m gateway.ops.healthcheck --config FILE``: exit 0 when the gateway serves.

Container health checks and Kubernetes exec probes use this: the gRPC port requires a
client certificate, so the check connects with the gateway's own certificate and asks
the standard health service (grpc.health.v1) for the overall status.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway.errors import GatewayError
from gateway.ops.config import load_config
from gateway.transport.health_probe import probe


def check(config_path: Path, *, timeout_s: float = 3.0, service: str = "") -> bool:
    config = load_config(config_path)
    host, _, port = config.listen_address.rpartition(":")
    target = f"{'127.0.0.1' if host in ('', '0.0.0.0', '[::]') else host}:{port}"  # noqa: S104
    return probe(
        target,
        ca_file=config.ca_file,
        cert_file=config.cert_file,
        key_file=config.key_file,
        timeout_s=timeout_s,
        service=service,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.ops.healthcheck")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    try:
        ok = check(args.config, timeout_s=args.timeout)
    except (GatewayError, OSError) as e:
        print(f"unhealthy: {e}", file=sys.stderr)
        return 1
    print("serving" if ok else "not serving")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
