#!/usr/bin/env bash
# The main job on the embedded simulated kernel (see README.md): the port of KVM's
# access_tracking_perf_test, on seed-v4 (the v4 series, cap 0x8 on):
#   1. MGLRU mode, the v4 flow: 4 vCPUs x 256 MiB, five generation checks;
#   2. idle page tracking mode: 1 vCPU x 64 MiB;
#   3. the -p benchmark: 4 vCPUs x 256 MiB faulting while aging runs (simulated times
#      from the timing model; a kselftest skip, exit 4, if it is not available).
# Exit codes are kselftest's: a step fails the job on 1 (fail), not on 4 (skip).
# Extra arguments go to every step (e.g. --config seed-v4-noopt, --arch arm64).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1

status=0
step() {
  echo "# mglru access-tracking-perf-test $*"
  .venv/bin/mglru access-tracking-perf-test "$@"
  local rc=$?
  case $rc in
    0) echo "# ok" ;;
    4) echo "# skip" ;;
    *) echo "# FAIL (exit $rc)"; status=1 ;;
  esac
  echo
}
step -l -v 4 -b 256M "$@"
step -v 1 -b 64M "$@"
step -l -p -v 4 -b 256M "$@"
exit $status
