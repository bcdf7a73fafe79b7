#!/usr/bin/env bash
# Checks deploy/docker/Dockerfile against the binaries of a build: ldd + dpkg -S give the
# Debian packages the runtime stage must install; USER must be non-root (10001:10001),
# ENTRYPOINT exec form, EXPOSE 9464. With --self-test, broken copies of the Dockerfile
# must all be rejected. See check_dockerfile.py for the details.
#
#   tests/deploy/check_dockerfile.sh [--self-test] BUILD_DIR
#   tests/deploy/check_dockerfile.sh [--self-test] path/to/yuxi-config-agent path/to/yuxi-configctl \
#       path/to/yuxi-config-injector \
#       path/to/yuxi-config-injector
#
# Exit status: 0 pass, 1 fail, 77 skipped (ldd, dpkg or python3 missing).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if ! command -v python3 >/dev/null 2>&1; then
    echo "SKIP: python3 is not installed" >&2
    exit 77
fi
exec python3 "$here/check_dockerfile.py" "$@"
