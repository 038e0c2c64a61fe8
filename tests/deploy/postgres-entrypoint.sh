#!/bin/sh
# postgres-entrypoint.sh: the entry point of tests/deploy/postgres.Dockerfile. On first start
# (an empty $PGDATA) makes the cluster as the official postgres image does: superuser
# $POSTGRES_USER (default postgres) with password $POSTGRES_PASSWORD (required), database
# $POSTGRES_DB (default: the user's name), TCP from anywhere with scram-sha-256. Then runs the
# command (postgres) in its place, so it is PID 1's child of docker-init or PID 1 itself and
# gets the stop signal.
set -eu

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?postgres: set POSTGRES_PASSWORD}"
    user=${POSTGRES_USER:-postgres}
    db=${POSTGRES_DB:-$user}
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    if [ "$db" != postgres ]; then
        # single-user mode: nothing listens yet, so the healthcheck cannot pass early
        db_ident=$(printf '%s' "$db" | sed 's/"/""/g')
        echo "CREATE DATABASE \"$db_ident\"" | postgres --single -D "$PGDATA" postgres >/dev/null
    fi
    echo "postgres-entrypoint: made the cluster (user $user, database $db)"
fi
exec "$@"
