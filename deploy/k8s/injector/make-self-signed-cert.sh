#!/usr/bin/env bash
# For clusters without cert-manager: makes a CA of the injector's own and a serving
# certificate for its Service, and writes a kustomization over base/ that deploys the
# injector with them (the Secret yuxi-config-injector-tls, and the CA as the webhook's
# caBundle). Then `kubectl apply -k DIR`.
#
#   deploy/k8s/injector/make-self-signed-cert.sh [--out DIR] [--days N] [--ca-days N]
#
#   --out DIR     where the files go (created; keep ca.key secret). Default:
#                 ./yuxi-config-injector-tls
#   --days N      the serving certificate's lifetime. Default: 365
#   --ca-days N   the CA's lifetime, when a new CA is made. Default: 3650
#
# Run it again with the same DIR before the certificate expires: it keeps the CA (so the
# caBundle the API server holds stays valid), issues a new serving certificate, and
# `kubectl apply -k DIR` replaces the Secret; the injector reads the new pair within
# seconds, without a restart. Needs openssl. Exit status: 0 done, 1 failed, 2 usage.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=./yuxi-config-injector-tls
days=365
ca_days=3650
namespace=yuxi-config-system
service=yuxi-config-injector

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }
while (($#)); do
    case $1 in
        --out) out=${2:?--out needs a directory}; shift 2 ;;
        --days) days=${2:?--days needs a number}; shift 2 ;;
        --ca-days) ca_days=${2:?--ca-days needs a number}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "make-self-signed-cert.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
for n in "$days" "$ca_days"; do
    if ! [[ $n =~ ^[1-9][0-9]{0,4}$ ]]; then
        echo "make-self-signed-cert.sh: '$n' is not a number of days" >&2
        exit 2
    fi
done
command -v openssl >/dev/null || { echo "make-self-signed-cert.sh: needs openssl" >&2; exit 1; }

umask 077
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

host=$service.$namespace.svc
if [[ ! -s $out/ca.key || ! -s $out/ca.crt ]]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$out/ca.key" -out "$out/ca.crt" -days "$ca_days" -subj "/CN=$service-ca" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    echo "make-self-signed-cert.sh: made a new CA in $out/ca.crt (valid $ca_days days)"
else
    echo "make-self-signed-cert.sh: keeping the CA in $out/ca.crt"
fi
printf 'subjectAltName=DNS:%s,DNS:%s.cluster.local\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n' \
    "$host" "$host" >"$work/ext"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/tls.key" \
    -out "$work/tls.csr" -subj "/CN=$host" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
openssl x509 -req -in "$work/tls.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days "$days" -out "$work/tls.crt" \
    -extfile "$work/ext" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
openssl verify -CAfile "$out/ca.crt" "$work/tls.crt" >/dev/null
mv "$work/tls.key" "$out/tls.key"
mv "$work/tls.crt" "$out/tls.crt"

# The Secret as a manifest of its own (0600, like the key): kustomize's secretGenerator
# would wrap the base64 over several lines.
cat >"$out/secret.yaml" <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: yuxi-config-injector-tls
  labels:
    app.kubernetes.io/name: yuxi-config-injector
type: kubernetes.io/tls
data:
  tls.crt: $(base64 -w0 <"$out/tls.crt")
  tls.key: $(base64 -w0 <"$out/tls.key")
YAML
ca_bundle=$(base64 -w0 <"$out/ca.crt")
base=$(realpath --relative-to="$out" "$here/base")
umask 022
cat >"$out/kustomization.yaml" <<YAML
# Written by deploy/k8s/injector/make-self-signed-cert.sh: yuxi-config-injector with a
# certificate for $host signed by the CA in ca.crt. Apply with: kubectl apply -k $out
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: $namespace
resources:
- $base
- secret.yaml
patches:
- target:
    group: admissionregistration.k8s.io
    kind: MutatingWebhookConfiguration
    name: yuxi-config-injector
  patch: |-
    - op: add
      path: /webhooks/0/clientConfig/caBundle
      value: $ca_bundle
YAML
echo "make-self-signed-cert.sh: wrote $out/tls.crt (valid $days days, for $host), secret.yaml and kustomization.yaml"
echo "next: kubectl apply -k $out"
