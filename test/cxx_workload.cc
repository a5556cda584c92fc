// A C++ program on pkalloc: std::string, std::vector, std::map and
// std::thread doing deterministic work, then, when pkalloc is in the
// process (linked or preloaded; found with dlsym so that one source serves
// both), operator new captured by a DOMAIN_CAPTURE_MALLOC domain.
// test/preload.sh compares the output with the same program on glibc.
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

namespace {

uint64_t fnv(uint64_t h, const std::string &s)
{
	for (unsigned char c : s)
		h = (h ^ c) * 1099511628211ull;
	return h;
}

// Each worker builds, sorts and folds its own strings.
void work(int id, uint64_t *out)
{
	std::vector<std::string> v;
	for (int i = 0; i < 20000; i++)
		v.push_back(std::to_string(i * 7919 % 10007) + std::string(i % 50, char('a' + id)));
	std::map<std::string, int> m;
	for (size_t i = 0; i < v.size(); i++)
		m[v[i]] += int(i);
	uint64_t h = 14695981039346656037ull;
	for (const auto &kv : m)
		h = fnv(h, kv.first + std::to_string(kv.second));
	*out = h;
}

struct alignas(256) Wide {
	char bytes[256];
};

template <typename F> F *sym(const char *name)
{
	return reinterpret_cast<F *>(dlsym(RTLD_DEFAULT, name));
}

int capture_check()
{
	typedef void *create_fn(const char *, unsigned);
	typedef int enter_fn(void *, int);
	typedef int exit_fn(void *);
	typedef void *of_fn(const void *);
	auto create = sym<create_fn>("domain_create");
	auto enter = sym<enter_fn>("domain_enter");
	auto leave = sym<exit_fn>("domain_exit");
	auto owner = sym<of_fn>("domain_of");
	auto destroy = sym<exit_fn>("domain_destroy");
	if (!create || !enter || !leave || !owner || !destroy) {
		std::puts("pkalloc: not in this process");
		return 0;
	}
	void *d = create("c++", 0x4 /* DOMAIN_CAPTURE_MALLOC */);
	if (!d || enter(d, 2 /* DOMAIN_RDWR */) != 0) {
		std::puts("pkalloc: cannot create or enter a domain");
		return 1;
	}
	auto *v = new std::vector<int>(1000, 7);
	auto *s = new std::string(300, 's');
	auto *w = new Wide;
	auto *n = new (std::nothrow) char[10];
	bool ok = owner(v) == d && owner(v->data()) == d && owner(s) == d &&
	          owner(s->data()) == d && owner(w) == d && owner(n) == d &&
	          reinterpret_cast<uintptr_t>(w) % alignof(Wide) == 0;
	leave(d);
	auto *outside = new std::string(300, 'o');
	ok = ok && owner(outside) == nullptr && owner(outside->data()) == nullptr;
	delete outside;
	// Trivially destructible objects can be deleted outside the domain:
	// delete finds them by address and frees them in it.
	delete w;
	delete[] n;
	// A destructor reads the object: back inside for those.
	enter(d, 2);
	delete v;
	delete s;
	leave(d);
	ok = ok && destroy(d) == 0;
	std::puts(ok ? "pkalloc: operator new captured, delete outside ok" : "pkalloc: capture FAILED");
	return ok ? 0 : 1;
}

int handler_calls;

// Out of memory: the new-handler runs until it gives up, then
// std::bad_alloc is thrown (nullptr for the nothrow forms).
void out_of_memory()
{
	volatile size_t huge = SIZE_MAX / 2;
	bool thrown = false;
	try {
		char *p = new char[huge];
		delete[] p;
	} catch (const std::bad_alloc &) {
		thrown = true;
	}
	char *q = new (std::nothrow) char[huge];
	std::set_new_handler([] {
		if (++handler_calls == 3)
			std::set_new_handler(nullptr);
	});
	bool thrown_after_handler = false;
	try {
		Wide *w = new Wide[huge / sizeof(Wide)];
		delete[] w;
	} catch (const std::bad_alloc &) {
		thrown_after_handler = true;
	}
	std::printf("out of memory: bad_alloc %s, nothrow %s, handler called %d times, then bad_alloc %s\n",
	            thrown ? "thrown" : "NOT thrown", q ? "NOT null" : "null", handler_calls,
	            thrown_after_handler ? "thrown" : "NOT thrown");
}

} // namespace

int main()
{
	out_of_memory();
	const int threads = 4;
	std::vector<uint64_t> out(threads);
	std::vector<std::thread> pool;
	for (int i = 0; i < threads; i++)
		pool.emplace_back(work, i, &out[i]);
	for (auto &t : pool)
		t.join();
	for (int i = 0; i < threads; i++)
		std::printf("worker %d: %016llx\n", i, static_cast<unsigned long long>(out[i]));
	auto shared = std::make_shared<std::string>("shared across threads");
	std::thread([shared] { std::printf("thread sees: %s\n", shared->c_str()); }).join();
	return capture_check();
}
