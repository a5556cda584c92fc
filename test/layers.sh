#!/bin/sh
# The layers of src/ (test/layers.py): no cycle among the includes nor
# among the library objects' calls, and no call without its include.
srcdir=${top_srcdir:-.}/src
objdir=${top_builddir:-.}/src/.libs
[ -d "$objdir" ] || objdir=${top_builddir:-.}/src
command -v python3 >/dev/null || { echo "SKIP: no python3" >&2; exit 77; }
exec python3 "${top_srcdir:-.}/test/layers.py" "$srcdir" "$objdir"
