#!/bin/sh
# The image's entry point: prepares the environment, then runs the command it was given (exec, so the
# service is PID 1 and receives SIGTERM itself).
#
# CloudNativePG publishes each database's connection string in its `<cluster>-app` secret under `uri`, as a
# libpq URI (postgresql://user:password@host:5432/db) whose user and password are already percent-encoded.
# SQLAlchemy needs the async driver in the scheme, so when POSTGRES_URI is given (Kubernetes passes it from
# that secret) and no database URL is set, the scheme is swapped and the result handed to the service through
# the shared CALLCENTRE_DATABASE_URL (a service-specific <PREFIX>DATABASE_URL, if set, still wins).
set -eu

if [ -n "${POSTGRES_URI:-}" ] && [ -z "${CALLCENTRE_DATABASE_URL:-}" ]; then
    case "$POSTGRES_URI" in
        postgres://*|postgresql://*) ;;
        *) echo "callcentre-entrypoint: POSTGRES_URI must start with postgresql://" >&2; exit 64 ;;
    esac
    CALLCENTRE_DATABASE_URL="postgresql+asyncpg://${POSTGRES_URI#*://}"
    export CALLCENTRE_DATABASE_URL
    unset POSTGRES_URI
fi

exec "$@"
