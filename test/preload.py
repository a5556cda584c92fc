# A Python workload for test/preload.sh: deterministic output from dicts,
# lists, strings, json and zlib, then (when libpkalloc is preloaded) a
# domain pointer passed to the C library's free and malloc_usable_size
# through ctypes, which only pkalloc's malloc family can take.
import ctypes
import json
import zlib

table = {}
for i in range(60000):
    key = "k%05d" % (i * 7919 % 60013)
    table.setdefault(key[:4], []).append(key * (i % 7 + 1))
text = json.dumps(table, sort_keys=True)
words = sorted(set(text.split('"')), key=lambda w: (len(w), w))
print("groups", len(table), "bytes", len(text), "words", len(words))
print("crc32", "%08x" % zlib.crc32(text.encode()))
print("compressed", len(zlib.compress(text.encode(), 6)))

proc = ctypes.CDLL(None)
try:
    create = proc.domain_create
except AttributeError:
    print("pkalloc: not in this process")
else:
    create.restype = ctypes.c_void_p
    create.argtypes = [ctypes.c_char_p, ctypes.c_uint]
    proc.domain_malloc.restype = ctypes.c_void_p
    proc.domain_malloc.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    proc.domain_usable_size.restype = ctypes.c_size_t
    proc.domain_usable_size.argtypes = [ctypes.c_void_p]
    proc.malloc_usable_size.restype = ctypes.c_size_t
    proc.malloc_usable_size.argtypes = [ctypes.c_void_p]
    proc.free.argtypes = [ctypes.c_void_p]
    proc.domain_destroy.argtypes = [ctypes.c_void_p]
    d = create(b"python", 0)
    p = proc.domain_malloc(d, 100)
    same = proc.malloc_usable_size(p) == proc.domain_usable_size(p) >= 100
    proc.free(p)
    gone = proc.domain_destroy(d) == 0
    print("pkalloc: domain pointer through free and malloc_usable_size",
          "ok" if same and gone else "FAILED")
