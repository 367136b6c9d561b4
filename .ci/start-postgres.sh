#!/usr/bin/env bash
# Start a throwaway PostgreSQL server (Debian's packages) on 127.0.0.1:55432 for the test suite.
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
data=${LOUPE_PGDATA:-/tmp/loupe-ci-postgres}
url="postgresql+psycopg://postgres@127.0.0.1:55432/postgres"
if "$bin/pg_isready" -q -h 127.0.0.1 -p 55432; then echo "$url"; exit 0; fi  # one is already serving
if [ ! -s "$data/PG_VERSION" ]; then
  rm -rf "$data" && mkdir -p "$data" && chown postgres:postgres "$data"
  su postgres -c "$bin/initdb -D $data -A trust -U postgres" >/dev/null
fi
if ! su postgres -c "$bin/pg_ctl -D $data status" >/dev/null 2>&1; then
  su postgres -c "$bin/pg_ctl -D $data -o '-p 55432 -k /tmp -c listen_addresses=127.0.0.1' -l $data/log -w start" >/dev/null
fi
echo "$url"
