#!/bin/sh
# Creates, once, three regional alliances (CA, gateway certificate and log key,
# gateway.toml with the other two as federation peers) under /pki. Development
# material for the compose demo only.
set -eu
umask 077
cd /pki
[ -f .done ] && exit 0
for r in zj gd bj; do
  alliance-gateway certs init-ca --dir "$r/ca" --trust-domain "$r.alliance.test"
  alliance-gateway certs issue-gateway --ca "$r/ca" --trust-domain "$r.alliance.test" \
    --name "$r-gateway" --out "$r/gateway" --host "gateway-$r" --host localhost
  alliance-gateway signing-key --out "$r/gateway/signing-key.pem" > /dev/null
done
region() { case "$1" in zj) echo 330100;; gd) echo 440300;; bj) echo 110000;; esac; }
for r in zj gd bj; do
  cfg="$r/gateway/gateway.toml"
  cat > "$cfg" <<TOML
trust_domain = "$r.alliance.test"
gateway_name = "$r-gateway"
region_code = "$(region "$r")"
ca_file = "../ca/ca.pem"
cert_file = "$r-gateway.pem"
key_file = "$r-gateway-key.pem"
signing_key_file = "signing-key.pem"
crl_file = "../ca/crl.pem"
TOML
done
for r in zj gd bj; do
  for p in zj gd bj; do
    [ "$r" = "$p" ] && continue
    vkey=$(alliance-gateway log-key --config "$p/gateway/gateway.toml")
    cat >> "$r/gateway/gateway.toml" <<TOML

[[peers]]
name = "$p-gateway"
address = "gateway-$p:50051"
trust_domain = "$p.alliance.test"
ca_file = "../../$p/ca/ca.pem"
crl_file = "../../$p/ca/crl.pem"
log_origin = "$p.alliance.test/alliance-log/v1"
log_vkey = "$vkey"
TOML
  done
done
chmod -R a+rX /pki
touch .done
