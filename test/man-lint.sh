#!/bin/sh
# The man pages lint clean and render; the provider's page shows its
# configuration file as installed; every public symbol of pkalloc.h is
# named in a page's NAME or SYNOPSIS and described in a page; every call has
# its man link (MAN3_LINKS in Makefile.am); every message the library can
# print is under DIAGNOSTICS; and every EXAMPLES program compiles, links
# against the built library and runs.
# Environment: MANDOC, CC, SAN_CFLAGS (non-empty: compile the examples with
# the sanitizers, and do not run them), top_srcdir, top_builddir.
[ -n "$MANDOC" ] || { echo "SKIP: mandoc is not installed"; exit 77; }
src=${top_srcdir:-.}
build=${top_builddir:-.}
hdr=$src/include/pkalloc.h
status=0
bad() { echo "FAIL: $*"; status=1; }
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT

pages=$(ls "$src"/man/*.[1-9])
[ -n "$pages" ] || { echo "no man pages in $src/man"; exit 99; }

# Lint to the style level.  Two kinds of message are about the manuals
# installed on this machine, not about ours: they are left out.
for m in $pages; do
	out=$("$MANDOC" -Tlint -W style "$m" 2>&1 |
	      grep -v -e 'referenced manual not found' -e 'mandoc\.db')
	[ -z "$out" ] || bad "mandoc -Tlint $m:
$out"
	[ -n "$("$MANDOC" -Tutf8 "$m" 2>/dev/null)" ] || bad "$m does not render with mandoc"
	if command -v man >/dev/null 2>&1; then
		[ -n "$(MANWIDTH=80 man -l "$m" 2>/dev/null)" ] || bad "man -l $m renders nothing"
	fi
done

# The public symbols: functions, macros (not the include guard nor the
# attribute helpers, whose definitions are __attribute__ spellings),
# structs and typedefs.
funcs=$(sed -n 's/^PKALLOC_API .*[ *]\([a-z_][a-z0-9_]*\)(.*/\1/p' "$hdr" | sort -u)
helpers=$(sed -n 's/^#define \([A-Z_][A-Z0-9_]*\).*__attribute__.*/\1/p' "$hdr" | sort -u)
macros=$(sed -n 's/^#define \([A-Z_][A-Z0-9_]*\).*/\1/p' "$hdr" | sort -u |
         grep -v -x -e PKALLOC_H $(for h in $helpers; do echo "-e $h"; done))
structs=$(sed -n 's/^struct \([a-z_][a-z0-9_]*\) {.*/\1/p' "$hdr" | sort -u)
typedefs=$(sed -n 's/^typedef .*[ *]\([a-z_][a-z0-9_]*\);.*/\1/p' "$hdr" | sort -u)
[ -n "$funcs" ] && [ -n "$macros" ] && [ -n "$structs" ] && [ -n "$typedefs" ] ||
	{ echo "could not read the symbols of $hdr"; exit 99; }

# NAME and SYNOPSIS of every page, and the rest of them.
for m in $pages; do
	sed -n '/^\.Sh NAME/,/^\.Sh DESCRIPTION/p' "$m" | grep -v '^\.Sh DESCRIPTION'
done > "$tmp/head"
for m in $pages; do sed -n '/^\.Sh DESCRIPTION/,$p' "$m"; done > "$tmp/body"

for f in $funcs; do
	grep -q "^\.Nm $f\( ,\)\{0,1\}$" "$tmp/head" || bad "$f is not in a NAME section"
	grep -q "^\.Fn $f " "$tmp/head" || bad "$f is not in a SYNOPSIS"
done
for s in $macros; do
	grep -q "^\.Fd #define $s " "$tmp/head" || bad "macro $s is not in a SYNOPSIS"
done
for s in $structs; do
	grep -q "^\.Vt struct $s ;\$" "$tmp/head" || bad "struct $s is not in a SYNOPSIS"
done
for s in $typedefs; do
	grep -q "^\.Vt typedef .* $s ;\$" "$tmp/head" || bad "typedef $s is not in a SYNOPSIS"
done
for s in $funcs $macros $structs $typedefs; do
	grep -q "\b$s\b" "$tmp/body" || bad "$s is named but not described in any page"
done

# Every call has its link: "man domain_exit" works once installed.
links=$(sed -n '/^MAN3_LINKS *=/,/[^\\]$/p' "$src/Makefile.am" | sed 's/^MAN3_LINKS *=//; s/\\$//')
[ -n "$links" ] || { echo "no MAN3_LINKS in $src/Makefile.am"; exit 99; }
for f in $funcs; do
	echo " $links " | tr -s ' \t' '  ' | grep -q " $f " || bad "$f has no man link in MAN3_LINKS"
done
for l in $links; do
	grep -q "^\.Nm $l\( ,\)\{0,1\}$" "$src/man/pkalloc.3" || bad "link $l.3 names no function of pkalloc.3"
done

# Every message: the literal parts of what the library writes, the call
# of every fatal error and every call name passed down to one are under
# DIAGNOSTICS in pkalloc.3 (as "CALL(0x" or as a .Fn or .Sy in a list).
sed -n '/^\.Sh DIAGNOSTICS/,/^\.Sh /p' "$src/man/pkalloc.3" > "$tmp/diag"
perl -0777 -ne '
	s{/\*.*?\*/}{}gs;
	$def{$1} = $2 while /#define\s+(\w+)\s+"((?:[^"\\]|\\.)*)"/g;
	push @names, $1 while /\b(\w+)\s*\([^;{)]*const char \*call\b/g;
	# Strings (or string macros) assigned to a variable, for a message
	# that fatal() gets through one.
	push @{$set{$1}}, $2 while /\*?\s*\b(\w+)\s*=\s*("(?:[^"\\]|\\.)*"|[A-Z_][A-Z0-9_]*)\s*;/g;
	push @calls, [$1, $2] while /\b(?:pk_)?(fatal|say|line_put)\s*\(((?:[^;"]|"(?:[^"\\]|\\.)*")*?)\)\s*;/g;
	# A helper that ends in a fatal line takes the parts of that line after
	# its object: pk_pages_apply_or_die(d, "call", "why").
	push @calls, ["fatal", $1] while /\b\w+_or_die\s*\(\s*\w+\s*,((?:[^;"]|"(?:[^"\\]|\\.)*")*?)\)\s*;/g;
	# A lookahead, so that a call within the arguments of another is seen too.
	push @uses, [$1, $2] while /\b(\w+)\s*\((?=((?:[^;"]|"(?:[^"\\]|\\.)*")*?)\)\s*;)/g;
	END {
		my %callfn = map { $_ => 1 } @names;
		for (@calls) {
			my ($fn, $args) = @$_;
			my @lit = $args =~ /"((?:[^"\\]|\\.)*)"/g;
			if ($fn eq "fatal") {
				print "what\t$1\n" if $args =~ /^\s*"((?:[^"\\]|\\.)*)"\s*,/;
				# Both literal: the whole line, call and reason together.
				print "pair\t$1(0x...): $2\n"
					if $args =~ /^\s*"((?:[^"\\]|\\.)*)"\s*,(?:.*,)?\s*"((?:[^"\\]|\\.)*)"\s*$/s;
				my ($why) = $args =~ /,\s*(\w+)\s*$/;
				for my $v (defined $why ? ($why, @{$set{$why} || []}) : ()) {
					if ($v =~ /^"(.*)"$/s) { push @lit, $1 }
					elsif (exists $def{$v}) { push @lit, $def{$v} }
				}
			}
			print "text\t$_\n" for @lit;
		}
		for (@uses) {
			my ($fn, $args) = @$_;
			next unless $callfn{$fn};
			print "call\t$_\n" for $args =~ /,\s*"((?:[^"\\]|\\.)*)"\s*$/;
		}
	}' "$src"/src/*.c | sort -u > "$tmp/said"
grep -q '^what' "$tmp/said" || { echo "found no fatal message in $src/src"; exit 99; }
[ -z "${MAN_LINT_SHOW:-}" ] || cat "$tmp/said"
while IFS='	' read -r kind text; do
	text=$(printf '%s' "$text" | sed 's/\\"/\\(dq/g')
	case $kind in
	text) grep -q -F -- "$text" "$tmp/diag" || bad "DIAGNOSTICS lacks the text \"$text\"" ;;
	call) grep -q -e "^\.Fn $text\( [,.]\)\{0,1\}$" -e "^\.Sy $text\( [,.]\)\{0,1\}$" "$tmp/diag" ||
	      bad "DIAGNOSTICS does not name the call \"$text\"" ;;
	pair) # As written, with a null pointer as 0x0, or under CALL for a
	      # reason several calls share (each call named, see "what").
	      w=${text%%(0x...)*} y=${text#*(0x...): }
	      grep -q -F -e "$text" -e "$w(0x0): $y" -e "CALL(0x...): $y" "$tmp/diag" ||
	      bad "DIAGNOSTICS lacks the line \"pkalloc: $text\"" ;;
	what) grep -q -F -- "$text(0x" "$tmp/diag" ||
	      grep -q -e "^\.Fn $text\( [,.]\)\{0,1\}$" -e "^\.Sy $text\( [,.]\)\{0,1\}$" "$tmp/diag" ||
	      bad "DIAGNOSTICS has no message of \"$text\"" ;;
	esac
done < "$tmp/said"

# The provider's page shows pkalloc.cnf as installed: the same lines, the
# first display under "Configuration".
prov=$src/man/pkalloc-provider.7
if [ -f "$prov" ]; then
	sed -n '/^\.Ss Configuration/,/^\.S[sh] /p' "$prov" |
		awk '/^\.Bd -literal/ { inside = 1; next } /^\.Ed/ { if (inside) exit } inside' > "$tmp/cnf"
	cmp -s "$tmp/cnf" "$src/provider/pkalloc.cnf" ||
		bad "$prov does not show provider/pkalloc.cnf as it is: $(diff "$tmp/cnf" "$src/provider/pkalloc.cnf" | head -5)"
	# Every line the provider prints is under its DIAGNOSTICS: the text
	# of each "pkalloc provider: ..." literal up to its first conversion,
	# found in the section as rendered.
	"$MANDOC" -Tascii "$prov" 2>/dev/null | col -b |
		sed -n '/^DIAGNOSTICS/,/^SEE ALSO/p' | tr -s ' \n' '  ' > "$tmp/pdiag"
	grep -ho '"pkalloc provider: [^"%]*' "$src"/provider/*.c | sed 's/^"//; s/\\n$//; s/ *(*$//' |
		sort -u > "$tmp/psaid"
	[ -s "$tmp/psaid" ] || bad "no \"pkalloc provider:\" line found in $src/provider"
	while IFS= read -r text; do
		[ "$text" = "pkalloc provider:" ] && continue
		grep -qF -- "$text" "$tmp/pdiag" || bad "$prov: DIAGNOSTICS has no line \"$text\""
	done < "$tmp/psaid"
else
	bad "no page for the provider ($prov)"
fi

# EXAMPLES: every literal display is a whole program; compile, link, run.
# Not the provider's page: its examples are command lines.
n=0
for m in $pages; do
	[ "$m" != "$prov" ] || continue
	sed -n '/^\.Sh EXAMPLES/,/^\.Sh /p' "$m" | awk -v out="$tmp/ex-${m##*/}" '
		/^\.Bd -literal/ { n++; f = out "-" n ".c"; inside = 1; next }
		/^\.Ed/          { inside = 0; next }
		inside           { print > f }'
done
lib=$(cd "$build" && pwd)/.libs
for c in "$tmp"/ex-*.c; do
	[ -f "$c" ] || continue
	n=$((n + 1))
	name=${c##*/ex-}
	sed -i -e 's/\\e/\\/g' -e 's/\\&//g' -e 's/\\(dq/"/g' -e 's/\\-/-/g' "$c"
	grep -q '^main(' "$c" || { bad "EXAMPLES display $name is not a whole program"; continue; }
	if ! ${CC:-cc} -std=gnu11 -Wall -Wextra -Werror $SAN_CFLAGS -I"$src/include" -o "${c%.c}" "$c" \
	     -L"$lib" -Wl,-rpath,"$lib" -lpkalloc > "$tmp/cc.log" 2>&1; then
		bad "EXAMPLES display $name does not compile:"; cat "$tmp/cc.log"; continue
	fi
	if [ -n "$SAN_CFLAGS" ]; then
		echo "ok: $name compiles (not run under the sanitizers: their malloc is not pkalloc's)"
		continue
	fi
	if out=$("${c%.c}" 2>&1); then
		echo "ok: $name compiles and runs"
	else
		bad "EXAMPLES display $name exited $?: $out"
	fi
done
[ $n -gt 0 ] || bad "no EXAMPLES programs found"
exit $status
