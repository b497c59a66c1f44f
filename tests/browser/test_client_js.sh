#!/usr/bin/env bash
# clients/js/iotd.js in Node against a real iotd, MariaDB and iotsim devices (stack.sh):
# clients/js/test/iotd.test.mjs, with the ws package for Node 20's missing WebSocket.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../integration/lib.sh"
. "$HERE/stack.sh"
T_CHECKS=$((T_CHECKS + 1))
timeout 360 node --test --test-concurrency=1 "$HERE/../../clients/js/test/iotd.test.mjs" ||
    fail "the JavaScript client's checks failed"
stack_stop
t_stop
t_done
