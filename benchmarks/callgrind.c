/* The cost worker's native part, for Python through ctypes, preloaded into the counted process
   (LD_PRELOAD) so that its allocator replaces glibc's while a fit is counted. Built by
   benchmarks/cost.py with the machine's gcc and valgrind headers. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <valgrind/callgrind.h>

/* --- callgrind's client requests: inline instruction sequences that valgrind recognises, so
   they need C; outside valgrind they do nothing. ------------------------------------------- */

static int fit_on;

int cg_running_on_valgrind(void) { return RUNNING_ON_VALGRIND; }

/* A point switches once (cost.py, Requests.instrumented), its fits told apart by cg_start and cg_stop. */
void cg_instrument(int on) {
    if (on)
        CALLGRIND_START_INSTRUMENTATION;
    else
        CALLGRIND_STOP_INSTRUMENTATION;
}

void cg_start(void) {
    fit_on = 1;
    CALLGRIND_ZERO_STATS;
}

void cg_stop(const char *label) {
    if (label)
        CALLGRIND_DUMP_STATS_AT(label);
    fit_on = 0;
}

/* --- the arenas: every allocation of the counted process comes from a deterministic allocator
   of ours instead of glibc's, and while a fit is counted, and while its data is made, from one
   kept apart for that.

   Why: X is 8,000,000 bytes at d = 100 float64 and the simulated last-level cache 8 MiB, so 2,120
   of its 8,192 sets hold 16 lines of X, and every other line a step touches in one of those sets
   (y, a temporary, a result) evicts X there on every pass. Where glibc put X, y and a fit's
   temporaries followed everything the process had allocated before, and that follows compiles
   run in threads and subprocesses: the same code counted up to 14% apart in estimated cycles
   there. So the fits' arena starts each point's generation at a multiple of 512 KiB (the period
   of the simulated cache's set index) with no free blocks: a block's place follows only the
   requests made for that point, whatever points came before. Everything else (the interpreter's
   objects, compiles, runtime threads) comes from the general arena: glibc gave each thread an
   arena of its own and mmap'd large blocks, so the place of interpreter objects (whose addresses
   key the lookups a call's fixed part makes) and of JIT code mapped after them followed which
   thread ran first. A request is served from a free list per size class (the last block freed
   first) or else from the arena's top; blocks are never returned to the system. Only under
   valgrind: the compilers that a JIT starts as subprocesses keep glibc's. ---------------------- */

#define FIT_BYTES ((size_t)8 << 30)      /* reserved, not committed */
#define GENERAL_BYTES ((size_t)32 << 30)
#define SET_PERIOD ((size_t)512 << 10)   /* 8,192 sets x 64-byte lines */
#define HEADER 16
#define CLASSES 320

struct header { uint32_t class; uint32_t offset; uint32_t generation; uint32_t unused; };
struct arena { char *base, *top, *end; uint32_t generation; void *free_lists[CLASSES]; };

static struct arena fit, general;
static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;

static void *(*real_malloc)(size_t);
static void (*real_free)(void *);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void *(*real_memalign)(size_t, size_t);
static size_t (*real_usable)(void *);

/* dlsym may allocate before it has found malloc: those few requests come from here. */
static char bootstrap[16384] __attribute__((aligned(64)));
static size_t bootstrap_used;
static int resolving;

static void resolve(void) {
    resolving = 1;
    real_malloc = dlsym(RTLD_NEXT, "malloc");
    real_free = dlsym(RTLD_NEXT, "free");
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_memalign = dlsym(RTLD_NEXT, "memalign");
    real_usable = dlsym(RTLD_NEXT, "malloc_usable_size");
    resolving = 0;
}

static void *bootstrap_alloc(size_t size) {
    size_t start = (bootstrap_used + 63) & ~(size_t)63;
    if (start + size > sizeof bootstrap) {
        fputs("callgrind.c: bootstrap buffer exhausted while resolving glibc's allocator\n", stderr);
        abort();
    }
    bootstrap_used = start + size;
    return bootstrap + start;
}

static int in_bootstrap(const void *p) {
    return (const char *)p >= bootstrap && (const char *)p < bootstrap + sizeof bootstrap;
}

static struct arena *owner_of(const void *p) {
    if (fit.base && (const char *)p >= fit.base && (const char *)p < fit.end) return &fit;
    if (general.base && (const char *)p >= general.base && (const char *)p < general.end) return &general;
    return NULL;
}

/* The arena that serves a request now; NULL: glibc. */
static struct arena *serving(void) { return fit_on ? &fit : general.base ? &general : NULL; }

/* 64-byte steps up to 4 KiB, then 8 steps per doubling (at most 12.5% unused). */
static unsigned class_of(size_t size) {
    if (size <= 4096) return (unsigned)((size + 63) / 64);
    unsigned lg = 63 - (unsigned)__builtin_clzl(size - 1);
    return 64 + 8 * (lg - 12) + (unsigned)((size - 1 - ((size_t)1 << lg)) >> (lg - 3)) + 1;
}

static size_t class_size(unsigned class) {
    if (class <= 64) return 64 * (size_t)class;
    unsigned i = class - 65, lg = 12 + i / 8;
    return ((size_t)1 << lg) + ((size_t)(i % 8 + 1) << (lg - 3));
}

static int reserve(struct arena *a, size_t bytes) {
    char *p = mmap(NULL, bytes + SET_PERIOD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return errno;
    a->base = a->top = (char *)(((uintptr_t)p + SET_PERIOD - 1) & ~(uintptr_t)(SET_PERIOD - 1));
    a->end = a->base + bytes;
    return 0;
}

int cg_arena_reserve(void) { return fit.base ? 0 : reserve(&fit, FIT_BYTES); }

void cg_arena(int on) { fit_on = on; }

/* A new generation of the fits' arena: its top moves on to the next multiple of SET_PERIOD and
   the blocks of earlier generations are never reused (their frees are dropped). */
void cg_arena_renew(void) {
    pthread_mutex_lock(&arena_lock);
    fit.top = (char *)(((uintptr_t)fit.top + SET_PERIOD - 1) & ~(uintptr_t)(SET_PERIOD - 1));
    memset(fit.free_lists, 0, sizeof fit.free_lists);
    fit.generation++;
    pthread_mutex_unlock(&arena_lock);
}

static void lock(void) { pthread_mutex_lock(&arena_lock); }
static void unlock(void) { pthread_mutex_unlock(&arena_lock); }

__attribute__((constructor)) static void take_over(void) {
    if (!RUNNING_ON_VALGRIND) return;
    pthread_atfork(lock, unlock, unlock);  /* a child forked while another thread allocates */
    int error = reserve(&general, GENERAL_BYTES);
    if (error) {
        fprintf(stderr, "callgrind.c: reserving the general arena: %s\n", strerror(error));
        abort();
    }
}

/* `size` bytes aligned to `align` (a power of two, at least 16) from `a`. */
static void *arena_alloc(struct arena *a, size_t size, size_t align) {
    if (!a->base) {
        fputs("callgrind.c: the fits' arena is on but was never reserved (cg_arena_reserve)\n", stderr);
        abort();
    }
    size_t slack = align > HEADER ? align : HEADER;
    if (size > (size_t)(a->end - a->base) - slack) {
        errno = ENOMEM;
        return NULL;
    }
    unsigned class = class_of(size + slack);
    pthread_mutex_lock(&arena_lock);
    char *block = a->free_lists[class];
    if (block) {
        a->free_lists[class] = *(void **)block;
    } else {
        if ((size_t)(a->end - a->top) < class_size(class)) {
            pthread_mutex_unlock(&arena_lock);
            fprintf(stderr, "callgrind.c: an arena's %zu bytes are used up (a request of %zu)\n",
                    (size_t)(a->end - a->base), size);
            abort();
        }
        block = a->top;
        a->top += class_size(class);
    }
    uint32_t generation = a->generation;
    pthread_mutex_unlock(&arena_lock);
    /* Blocks start at multiples of 64: the user's memory starts after the header, aligned. */
    char *user = (char *)(((uintptr_t)block + HEADER + align - 1) & ~(uintptr_t)(align - 1));
    struct header *h = (struct header *)user - 1;
    h->class = class;
    h->offset = (uint32_t)(user - block);
    h->generation = generation;
    return user;
}

static void arena_free(struct arena *a, void *p) {
    struct header *h = (struct header *)p - 1;
    char *block = (char *)p - h->offset;
    pthread_mutex_lock(&arena_lock);
    if (h->generation == a->generation) {
        *(void **)block = a->free_lists[h->class];
        a->free_lists[h->class] = block;
    }
    pthread_mutex_unlock(&arena_lock);
}

static size_t arena_usable(void *p) {
    struct header *h = (struct header *)p - 1;
    return class_size(h->class) - h->offset;
}

/* --- the allocator's entry points ------------------------------------------------------- */

void *malloc(size_t size) {
    if (!real_malloc) {
        if (resolving) return bootstrap_alloc(size);
        resolve();
    }
    struct arena *a = serving();
    return a ? arena_alloc(a, size, 16) : real_malloc(size);
}

void free(void *p) {
    if (!p || in_bootstrap(p)) return;
    struct arena *a = owner_of(p);
    if (a) {
        arena_free(a, p);
        return;
    }
    if (!real_free) resolve();
    real_free(p);
}

void *calloc(size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    if (!real_calloc) {
        if (resolving) return bootstrap_alloc(total);  /* static, so zeroed */
        resolve();
    }
    struct arena *a = serving();
    if (!a) return real_calloc(count, size);
    void *p = arena_alloc(a, total, 16);
    return p ? memset(p, 0, total) : NULL;
}

void *realloc(void *p, size_t size) {
    if (!p) return malloc(size);
    if (!real_realloc) resolve();
    size_t old;
    if (owner_of(p)) {
        old = arena_usable(p);
        if (size <= old) return p;
    } else if (in_bootstrap(p)) {
        old = (size_t)(bootstrap + sizeof bootstrap - (char *)p);
    } else if (!serving()) {
        return real_realloc(p, size);
    } else {
        old = real_usable(p);
    }
    void *q = malloc(size);
    if (q) {
        memcpy(q, p, old < size ? old : size);
        free(p);
    }
    return q;
}

void *memalign(size_t align, size_t size) {
    if (!real_memalign) resolve();
    struct arena *a = serving();
    if (!a) return real_memalign(align, size);
    if (align & (align - 1)) {
        errno = EINVAL;
        return NULL;
    }
    return arena_alloc(a, size, align < 16 ? 16 : align);
}

int posix_memalign(void **out, size_t align, size_t size) {
    if (align % sizeof(void *) || (align & (align - 1))) return EINVAL;
    void *p = memalign(align, size);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t size) { return memalign(align, size); }
void *valloc(size_t size) { return memalign((size_t)sysconf(_SC_PAGESIZE), size); }

void *pvalloc(size_t size) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return memalign(page, (size + page - 1) & ~(page - 1));
}

size_t malloc_usable_size(void *p) {
    if (!p) return 0;
    if (owner_of(p)) return arena_usable(p);
    if (!real_usable) resolve();
    return real_usable(p);
}
