#!/usr/bin/env bash
# Static checks of deploy/: YAML lint, compose schema, Kubernetes schemas, Prometheus
# config and rules (promtool), Grafana dashboard JSON. No container engine is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV_BIN:-.venv/bin}

"$BIN/yamllint" -s deploy/ .yamllint.yaml
"$BIN/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose/compose.yaml
# Every resource file (not kustomization.yaml) against the Kubernetes schemas; the
# ServiceMonitor CRD has no bundled schema and is reported as a warning only.
find deploy/kubernetes -name '*.yaml' ! -name kustomization.yaml -print0 \
  | xargs -0 "$BIN/kubernetes-validate" --strict --quiet
# Each kustomization must name files that exist.
"$BIN/python" - <<'PY'
import pathlib, sys, yaml
bad = []
for k in pathlib.Path("deploy/kubernetes").rglob("kustomization.yaml"):
    doc = yaml.safe_load(k.read_text())
    for entry in doc.get("resources", []):
        if not (k.parent / entry).exists():
            bad.append(f"{k}: resource {entry} does not exist")
    for gen in doc.get("configMapGenerator", []):
        for f in gen.get("files", []):
            if not (k.parent / f).exists():
                bad.append(f"{k}: configMap file {f} does not exist")
if bad:
    sys.exit("\n".join(bad))
PY
if ! command -v promtool >/dev/null; then
  echo "promtool not found: install Debian's prometheus package (.ci/run does)" >&2
  exit 1
fi
promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/alliance-rules.yml
promtool test rules deploy/prometheus/alliance-rules.test.yml
"$BIN/python" -c "
import json, sys
d = json.load(open('deploy/grafana/dashboards/alliance-gateway.json'))
assert d['uid'] and d['panels'], 'dashboard has no panels'
for p in d['panels']:
    assert p['targets'] and all(t['expr'] for t in p['targets']), p['title']
print('dashboard:', len(d['panels']), 'panels')
"
echo "deploy/: all checks passed"
