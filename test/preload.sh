#!/bin/sh
# Real programs on pkalloc's malloc: python3 and git under
# LD_PRELOAD=libpkalloc.so, and a C++ program both preloaded and linked with
# -lpkalloc.  Each one's output must equal the same program's on glibc, and
# each must show pkalloc in the process (a domain pointer round trip,
# operator new capture, or the mapping itself).
#
# Usage: preload.sh LIBPKALLOC BINDIR PYDIR
#   BINDIR holds cxx_plain (not linked with pkalloc) and cxx_linked;
#   PYDIR holds preload.py.
set -u
lib=${1:-${top_builddir:-.}/.libs/libpkalloc.so}
bindir=${2:-${top_builddir:-.}/test}
pydir=${3:-${top_srcdir:-.}/test}
if [ -n "${SAN_CFLAGS:-}" ]; then
	# A sanitizer-built libpkalloc cannot be preloaded into programs that
	# are not (the sanitizer runtime must come first).
	echo "SKIP: preload.sh: sanitizer build"
	exit 77
fi
fail=0
bad() { echo "FAIL: $*"; fail=1; }
python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3) || { echo "preload.sh: python3 is missing (apt-get install python3)"; exit 1; }
command -v git >/dev/null 2>&1 || { echo "preload.sh: git is missing (apt-get install git)"; exit 1; }
[ -f "$lib" ] || { echo "preload.sh: no $lib"; exit 1; }
lib=$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")     # git changes directory
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pkalloc-preload.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# same NAME EXPECTED-LAST-LINE: compare the runs in $tmp/NAME.{plain,pk}
# except their last lines, which say whether pkalloc was there.
same() {
	head -n -1 "$tmp/$1.plain" > "$tmp/a"; head -n -1 "$tmp/$1.pk" > "$tmp/b"
	if [ ! -s "$tmp/a" ] || ! cmp -s "$tmp/a" "$tmp/b"; then
		bad "$1: output differs from glibc's"; diff "$tmp/a" "$tmp/b" | head -n 20
	fi
	tail -n 1 "$tmp/$1.pk" | grep -qx "$2" || { bad "$1: last line is not '$2'"; tail -n 3 "$tmp/$1.pk"; }
}

# python3: isolated (-I), no site (-S), no bytecode written (-B).
"$python" -I -S -B "$pydir/preload.py" > "$tmp/python.plain" 2>&1 || bad "python3 on glibc failed"
tail -n 1 "$tmp/python.plain" | grep -qx 'pkalloc: not in this process' || bad "python3 on glibc sees pkalloc"
LD_PRELOAD=$lib "$python" -I -S -B "$pydir/preload.py" > "$tmp/python.pk" 2>&1 || bad "python3 on pkalloc failed"
same python 'pkalloc: domain pointer through free and malloc_usable_size ok'
echo "python3: $(head -n 2 "$tmp/python.pk" | tr '\n' ' ')"

# git: a scratch repository with fixed names and dates, so that the commit
# ids are the same on both allocators.
gitrun() {
	repo=$tmp/repo.$1
	(
		export HOME=$tmp GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=pkalloc GIT_AUTHOR_EMAIL=test@pkalloc.invalid \
			GIT_COMMITTER_NAME=pkalloc GIT_COMMITTER_EMAIL=test@pkalloc.invalid \
			GIT_AUTHOR_DATE='2026-01-01T00:00:00Z' GIT_COMMITTER_DATE='2026-01-01T00:00:00Z'
		git init -q --template= -b main "$repo" && cd "$repo" || exit 1
		i=1
		while [ $i -le 12 ]; do
			seq 1 $((i * 300)) | sed "s/^/line $i /" > "file$((i % 5)).txt"
			git add -A && git commit -q -m "commit $i" || exit 1
			i=$((i + 1))
		done
		git log --format='%H %s' && git diff --stat HEAD~6 HEAD && git cat-file -p 'HEAD^{tree}' &&
			git repack -adq && git count-objects -v | grep -v size && git fsck --no-progress --strict &&
			git show --format=%B HEAD:file2.txt | sha256sum
		# The last line: is libpkalloc mapped in git itself ($PPID of the alias's shell)?
		if git -c 'alias.maps=!grep -q libpkalloc /proc/$PPID/maps' maps; then
			echo "pkalloc: in git"
		else
			echo "pkalloc: not in this process"
		fi
	)
}
gitrun plain > "$tmp/git.plain" 2>&1 || bad "git on glibc failed"
tail -n 1 "$tmp/git.plain" | grep -qx 'pkalloc: not in this process' || bad "git on glibc sees pkalloc"
LD_PRELOAD=$lib gitrun pk > "$tmp/git.pk" 2>&1 || bad "git on pkalloc failed"
same git 'pkalloc: in git'
echo "git: $(head -n 1 "$tmp/git.pk")"

# C++: on glibc, preloaded, and linked with -lpkalloc.
"$bindir/cxx_plain" > "$tmp/cxx.plain" 2>&1 || bad "C++ program on glibc failed"
tail -n 1 "$tmp/cxx.plain" | grep -qx 'pkalloc: not in this process' || bad "C++ program on glibc sees pkalloc"
LD_PRELOAD=$lib "$bindir/cxx_plain" > "$tmp/cxx.pk" 2>&1 || bad "C++ program preloaded failed"
same cxx 'pkalloc: operator new captured, delete outside ok'
"$bindir/cxx_linked" > "$tmp/cxx.pk" 2>&1 || bad "C++ program linked with -lpkalloc failed"
same cxx 'pkalloc: operator new captured, delete outside ok'
echo "c++: $(head -n 1 "$tmp/cxx.pk")"

[ $fail -eq 0 ] && echo "preload.sh: python3, git and C++ ran on pkalloc, outputs equal to glibc's"
exit $fail
