#!/usr/bin/env bash
# deploy/k8s/injector/make-self-signed-cert.sh, for clusters without cert-manager: the pair
# it makes verifies against its CA for the Service's DNS name; the injector serves it to a
# client that knows only that CA and that name (as the API server does with the caBundle);
# a second run keeps the CA, renews the certificate, and the running injector takes the
# new one without a restart; the kustomization it writes validates like deploy/k8s.
#
#   tests/injector/self_signed_cert_test.sh path/to/yuxi-config-injector
#
# Exit status: 0 pass, 1 fail, 77 skipped (openssl or curl missing).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
injector=$(realpath "${1:?usage: self_signed_cert_test.sh path/to/yuxi-config-injector}")
script=$repo/deploy/k8s/injector/make-self-signed-cert.sh
host=yuxi-config-injector.yuxi-config-system.svc
for tool in openssl curl; do
    command -v "$tool" >/dev/null || { echo "SKIP: needs $tool" >&2; exit 77; }
done

dir=$(mktemp -d /tmp/yuxi-self-signed-XXXXXX)
pid=
cleanup() {
    if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL $*" >&2; [[ -f $dir/injector.log ]] && tail -n 20 "$dir/injector.log" >&2; exit 1; }

"$script" --bogus >/dev/null 2>&1 && fail "an unknown argument was accepted"
[[ $("$script" --days 0 2>&1 >/dev/null; echo $?) == *2 ]] || fail "--days 0 did not exit 2"

out=$dir/tls
"$script" --out "$out" --days 30 >/dev/null
for f in ca.crt ca.key tls.crt tls.key secret.yaml kustomization.yaml; do
    [[ -s $out/$f ]] || fail "$f was not written"
done
[[ $(stat -c %a "$out/tls.key") == 600 && $(stat -c %a "$out/ca.key") == 600 ]] || fail "a key is readable by others"
openssl verify -CAfile "$out/ca.crt" "$out/tls.crt" >/dev/null || fail "tls.crt does not verify against ca.crt"
sans=$(openssl x509 -in "$out/tls.crt" -noout -ext subjectAltName)
[[ $sans == *"DNS:$host,"* && $sans == *"DNS:$host.cluster.local"* ]] || fail "subjectAltName is $sans"
echo "ok   the pair verifies against its CA for $host"

# The injector serves it; a client that trusts only ca.crt and calls the Service's name.
for attempt in 1 2 3 4 5; do
    port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$injector" --listen "127.0.0.1:$port" --tls-cert "$out/tls.crt" --tls-key "$out/tls.key" \
        --tls-reload-interval 200ms >>"$dir/injector.log" 2>&1 &
    pid=$!
    curl_ready() { curl -sf -o /dev/null --max-time 2 --cacert "$out/ca.crt" --resolve "$host:$port:127.0.0.1" "https://$host:$port/readyz"; }
    for _ in $(seq 50); do curl_ready && break; sleep 0.1; done
    curl_ready && break
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=
done
[[ -n $pid ]] || fail "the injector never answered with the generated certificate"
echo "ok   the injector serves it to a client that knows only the CA and the Service's name"

served() {
    openssl s_client -connect "127.0.0.1:$port" -servername "$host" </dev/null 2>/dev/null |
        openssl x509 -noout -fingerprint -sha256
}
ca_before=$(sha256sum <"$out/ca.crt")
first=$(served)
"$script" --out "$out" --days 60 >/dev/null
[[ $(sha256sum <"$out/ca.crt") == "$ca_before" ]] || fail "a second run replaced the CA"
renewed=$(openssl x509 -in "$out/tls.crt" -noout -fingerprint -sha256)
[[ $renewed != "$first" ]] || fail "a second run did not renew the certificate"
for _ in $(seq 100); do [[ $(served) == "$renewed" ]] && break; sleep 0.1; done
[[ $(served) == "$renewed" ]] || fail "the running injector did not take the renewed certificate"
kill -0 "$pid" || fail "the injector stopped"
curl_ready || fail "a client that trusts the CA fails after the renewal"
echo "ok   a second run keeps the CA; the running injector takes the renewed certificate"

# The kustomization validates as deploy/k8s does (when kustomize v5 and node are there).
version=$(kubectl version --client -o json 2>/dev/null | sed -n 's/.*"kustomizeVersion": *"v\{0,1\}\([0-9]*\).*/\1/p')
if [[ ${version:-0} -ge 5 ]] && command -v node >/dev/null && "$repo/tests/deploy/ensure_node_modules.sh"; then
    node "$repo/tests/deploy/validate.mjs" --kustomize "kubectl kustomize" --injector-dir "$out" >"$dir/validate.log" 2>&1 ||
        { cat "$dir/validate.log" >&2; fail "the written kustomization does not validate"; }
    echo "ok   $(grep -c '^ok' "$dir/validate.log") kustomizations valid, the written one among them"
else
    echo "skip the kustomization's validation (needs kustomize v5 and node)"
fi
