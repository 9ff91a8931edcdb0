#!/bin/sh
# Builds the fake V4L2 camera and the probe client, then checks them end to end.
# Optional tools (v4l2-ctl, v4l2-compliance, ffmpeg, ffprobe, djpeg, node) are
# used when installed and reported as skipped otherwise. Ends with the line
# "N passed, N failed, N skipped"; exit status 1 if anything failed.
#   sh test/fakes/v4l2/selftest.sh [check-name-substring...]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
make -s -C "$here" >&2
exec python3 "$here/selftest.py" "$@"
