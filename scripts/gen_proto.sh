#!/usr/bin/env bash
# Regenerate the Python code for proto/alliance/v1/*.proto into gateway/pb/.
# Imports are rewritten to be package-qualified (gateway.pb.alliance.v1).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
# protoc finds the mypy plugins (protoc-gen-mypy, protoc-gen-mypy_grpc) on PATH.
PATH="$(dirname "$PY"):$PATH"
out=gateway/pb
rm -rf "$out/alliance"
mkdir -p "$out"
"$PY" -m grpc_tools.protoc -I proto \
  --python_out="$out" --grpc_python_out="$out" \
  --mypy_out="$out" --mypy_grpc_out="$out" \
  proto/alliance/v1/*.proto
find "$out/alliance" -name '*.py' -o -name '*.pyi' | sort | while read -r f; do
  sed -i -E 's/^from alliance\.v1 import /from gateway.pb.alliance.v1 import /; s/^import alliance\.v1\./import gateway.pb.alliance.v1./' "$f"
done
touch "$out/alliance/__init__.py" "$out/alliance/v1/__init__.py"
