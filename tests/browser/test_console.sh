#!/usr/bin/env bash
# The console in real headless Chromium (issue 18, "Tests"): console.test.mjs drives the
# pages of the build's web/ against a real iotd, MariaDB and iotsim devices (stack.sh).
# Screenshots (phone and desktop) go to $IOTD_TEST_OUTPUT.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../integration/lib.sh"
. "$HERE/stack.sh"
[ -x /usr/bin/chromium ] || fail "no /usr/bin/chromium (Debian's chromium: ./dev.sh deps)"
mkdir -p "${IOTD_TEST_OUTPUT:?}"
T_CHECKS=$((T_CHECKS + 1))
timeout 560 node --test --test-concurrency=1 "$HERE/console.test.mjs" || fail "the console's checks failed"
stack_stop
t_stop
t_done
