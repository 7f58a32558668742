#!/bin/sh
# Apply one overlay in the order a release needs (docs/operations.md, "Deploy"):
#   1. namespace, network policies, config, service accounts, NATS and the PostgreSQL clusters;
#      wait until NATS has rolled out and every database cluster is Ready
#   2. check the app secret exists (it is never in the repository)
#   3. replace the migration Jobs (a Job's pod template is immutable) and wait for all of them to succeed
#   4. the services and the gateway (rolling update), then wait for their rollouts
#   5. everything once more, so nothing the selectors missed is left behind
# Usage: deploy/k8s-release.sh k8s/overlays/prod        (KUBECTL=... to use another kubectl binary)
set -eu

overlay="${1:?usage: $0 k8s/overlays/<name>}"
kubectl="${KUBECTL:-kubectl}"
timeout="${RELEASE_TIMEOUT_SECONDS:-900}"
secret="callcentre-secrets"

rendered="$(mktemp)"
trap 'rm -f "$rendered"' EXIT
$kubectl kustomize "$overlay" > "$rendered"

# The namespace object's name, as kustomize renders it (kind, then metadata with name as its last key).
namespace="$(awk '/^kind: Namespace$/ {found = 1} found && /^  name: / {print $2; exit}' "$rendered")"
[ -n "$namespace" ] || { echo "no Namespace in $overlay" >&2; exit 1; }
echo "release: overlay $overlay into namespace $namespace"

$kubectl get crd clusters.postgresql.cnpg.io > /dev/null || {
    echo "CloudNativePG is not installed (no clusters.postgresql.cnpg.io CRD): install the operator first" >&2
    exit 1
}

echo "release: 1/5 infrastructure"
$kubectl apply -f "$rendered" --selector 'app.kubernetes.io/component notin (server,migration)'
$kubectl -n "$namespace" rollout status statefulset/nats --timeout="${timeout}s"
$kubectl -n "$namespace" wait clusters.postgresql.cnpg.io --all --for=condition=Ready --timeout="${timeout}s"

echo "release: 2/5 secrets"
$kubectl -n "$namespace" get secret "$secret" > /dev/null || {
    echo "secret $namespace/$secret is missing: create it first (docs/operations.md, 'Secrets')" >&2
    exit 1
}

echo "release: 3/5 migrations"
$kubectl -n "$namespace" delete job --selector app.kubernetes.io/component=migration --ignore-not-found --wait=true
$kubectl apply -f "$rendered" --selector app.kubernetes.io/component=migration
deadline=$(( $(date +%s) + timeout ))
while :; do
    waiting=""
    for job in $($kubectl -n "$namespace" get job --selector app.kubernetes.io/component=migration -o name); do
        failed="$($kubectl -n "$namespace" get "$job" -o jsonpath='{.status.conditions[?(@.type=="Failed")].status}')"
        if [ "$failed" = "True" ]; then
            echo "release: $job failed; its log:" >&2
            $kubectl -n "$namespace" logs "$job" --tail=50 >&2 || true
            exit 1
        fi
        succeeded="$($kubectl -n "$namespace" get "$job" -o jsonpath='{.status.succeeded}')"
        [ "${succeeded:-0}" -ge 1 ] || waiting="$waiting $job"
    done
    [ -z "$waiting" ] && break
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "release: migrations still running after ${timeout}s:$waiting" >&2
        exit 1
    fi
    sleep 5
done

echo "release: 4/5 services"
$kubectl apply -f "$rendered" --selector app.kubernetes.io/component=server
for deployment in $($kubectl -n "$namespace" get deployment --selector app.kubernetes.io/component=server -o name); do
    $kubectl -n "$namespace" rollout status "$deployment" --timeout="${timeout}s"
done

echo "release: 5/5 the rest"
$kubectl apply -f "$rendered"
echo "release: done"
