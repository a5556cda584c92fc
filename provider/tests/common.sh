# Sourced by the provider's shell tests, with $name set: where the module
# is (mods), the configuration as installed (cnf, pkalloc-provider(7)),
# the glibc tunables it asks for (tunables), and a skip (exit 77) where the
# provider cannot run here.
mods="$(cd "${top_builddir:-.}" && pwd)/provider/.libs"
cnf=${top_srcdir:-.}/provider/pkalloc.cnf
tunables=glibc.rtld.optional_static_tls=16384:glibc.malloc.perturb=165
skip() { echo "SKIP: $name: $*" >&2; exit 77; }
# need CMD...: skip unless every command is here.
need() { for c; do command -v "$c" >/dev/null || skip "no $c command"; done; }
test -f "$mods/pkalloc.so" || skip "the provider was not built (OpenSSL 3 development files missing?)"
# Programs not built with the sanitizer, whose runtime must come first,
# cannot load a sanitized module.
[ -z "${SAN_CFLAGS:-}" ] || skip "sanitizer build"
