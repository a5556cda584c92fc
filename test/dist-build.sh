#!/bin/sh
# Unpack the distribution tarball into DIR (emptied first) and configure it
# there with the arguments given: the second builds of check-sanitizers,
# check-faults, check-tsan and check-fuzz (a configured source tree cannot
# host another build).  Prints the build's directory.
# Usage: dist-build.sh TARBALL DIR [CONFIGURE-ARG...]
set -e
tarball=$1 dir=$2
shift 2
rm -rf "$dir"
mkdir -p "$dir"
tar -xzf "$tarball" -C "$dir"
cd "$dir"/*/
./configure -q "$@" >&2
pwd
