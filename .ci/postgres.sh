#!/usr/bin/env bash
# Make PostgreSQL's server binaries (initdb, pg_ctl) available to tests/cli/test_tune_postgres.py,
# which starts its own throw-away server. Debian's package puts them in /usr/lib/postgresql/<v>/bin,
# where the test looks too. Nothing is started here.
set -euo pipefail

have_server() {
    command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

if have_server; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "postgres.sh: initdb not found and no apt-get: install PostgreSQL's server package" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
have_server || { echo "postgres.sh: postgresql installed but initdb still not found" >&2; exit 1; }
