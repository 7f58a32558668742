#!/bin/sh
# Runs once, when the PostgreSQL volume is first initialised (docker-entrypoint-initdb.d): one database and
# one owning role per service, so no service can read another's tables. For each name in SERVICE_DATABASES
# the password comes from <NAME>_DB_PASSWORD (deploy/.env). The passwords go into connection URLs, so keep
# them URL-safe (openssl rand -hex 24).
set -eu

for name in ${SERVICE_DATABASES:-registry booking desk}; do
    variable="$(echo "$name" | tr '[:lower:]-' '[:upper:]_')_DB_PASSWORD"
    password="$(printenv "$variable" || true)"
    if [ -z "$password" ]; then
        echo "10-service-databases: $variable is not set" >&2
        exit 1
    fi
    psql --set ON_ERROR_STOP=1 --no-psqlrc --quiet --username "${POSTGRES_USER:-postgres}" --dbname postgres \
        --set role="$name" --set password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
done
