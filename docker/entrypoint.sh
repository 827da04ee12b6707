#!/usr/bin/env bash
# The image's entrypoint: one role per container, chosen by the first argument; settings from
# the environment. Every role `exec`s its process, so it is PID 1's child and gets SIGTERM.
#
#   code-server   Dagster gRPC code server for plusultra_pipeline.definitions
#                 (DAGSTER_CODE_SERVER_HOST=0.0.0.0, DAGSTER_CODE_SERVER_PORT=4000)
#   webserver     Dagster UI (DAGSTER_WEBSERVER_PORT=3000) on DAGSTER_WORKSPACE
#   daemon        Dagster daemon (schedules, sensors, run queue) on DAGSTER_WORKSPACE
#   serve         plusultra serve (PLUSULTRA_SERVE_HOST=0.0.0.0, PLUSULTRA_SERVE_PORT=8000;
#                 a non-loopback host needs PLUSULTRA_SERVE_TOKEN -- plusultra says so)
#   train         plusultra train (the settings' training config; extra arguments pass through)
#   demo          plusultra demo
#   plusultra ... | dagster ...   any other command of either, as given
#
# The Dagster roles need $DAGSTER_HOME/dagster.yaml (compose mounts deploy/dagster.yaml there) and
# every environment variable it reads (DAGSTER_PG_HOST, DAGSTER_PG_PORT, ...): a missing one is
# named here, in one line, instead of in a stack trace from Dagster's config loader.
set -euo pipefail

ROLES="code-server webserver daemon serve train demo plusultra dagster"
: "${PLUSULTRA_HOME:=/data}"
: "${DAGSTER_HOME:=${PLUSULTRA_HOME}/dagster_home}"
: "${DAGSTER_WORKSPACE:=/app/docker/workspace.yaml}"
export PLUSULTRA_HOME DAGSTER_HOME

die() {
    echo "entrypoint: error: $*" >&2
    exit 2
}

# Every `env: NAME` (Dagster's syntax for a value from the environment) in dagster.yaml must be set.
check_dagster_home() {
    local config="${DAGSTER_HOME}/dagster.yaml" name missing=()
    [[ -f "$config" ]] || die "${config} not found: mount deploy/dagster.yaml there (DAGSTER_HOME=${DAGSTER_HOME})"
    while read -r name; do
        [[ -n "${!name:-}" ]] || missing+=("$name")
    done < <(grep -oE 'env:[[:space:]]*["'"'"']?[A-Za-z_][A-Za-z0-9_]*' "$config" | sed -E 's/env:[[:space:]]*["'"'"']?//' | sort -u)
    ((${#missing[@]} == 0)) || die "${config} reads ${missing[*]}, not set in the environment"
}

role="${1:-}"
[[ -n "$role" ]] || die "no role given; expected one of: ${ROLES}"
shift

case "$role" in
    code-server)
        check_dagster_home
        exec dagster code-server start --host "${DAGSTER_CODE_SERVER_HOST:-0.0.0.0}" \
            --port "${DAGSTER_CODE_SERVER_PORT:-4000}" --module-name plusultra_pipeline.definitions \
            --location-name plusultra "$@" ;;
    webserver)
        check_dagster_home
        exec dagster-webserver --host 0.0.0.0 --port "${DAGSTER_WEBSERVER_PORT:-3000}" \
            --workspace "$DAGSTER_WORKSPACE" "$@" ;;
    daemon)
        check_dagster_home
        exec dagster-daemon run --workspace "$DAGSTER_WORKSPACE" "$@" ;;
    serve)
        exec plusultra serve --host "${PLUSULTRA_SERVE_HOST:-0.0.0.0}" --port "${PLUSULTRA_SERVE_PORT:-8000}" "$@" ;;
    train)
        exec plusultra train "$@" ;;
    demo)
        exec plusultra demo "$@" ;;
    plusultra|dagster)
        exec "$role" "$@" ;;
    *)
        die "unknown role '${role}'; expected one of: ${ROLES}" ;;
esac
