/*
 * json_arena.c: the JSON arena of a request (xs_json_arena_*, see json.h).
 *
 * Once installed, jansson allocates through arena_malloc and arena_free: inside an arena
 * (begin to end, per thread) values are carved from 4 MiB chunks and freed all at once at
 * the end, outside one they come from malloc as before. It owns the per-thread arena and its
 * chunks (kept up to XS_JSON_ARENA_KEEP bytes between requests). It must not hand out memory
 * that outlives the arena's end, and it knows nothing of JSON text or decimals.
 */
#include <pthread.h>

#include "json_int.h"

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif
#ifdef ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define ARENA_HEAD 16 /* the size of each value, so a free can poison it */
#define ARENA_GAP  16 /* a poisoned gap after each value: an overrun is reported */
#else
#define ARENA_HEAD                        0
#define ARENA_GAP                         0
#define ASAN_POISON_MEMORY_REGION(p, n)   ((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#endif

#define ARENA_CHUNK ((size_t)4 << 20)
#define ARENA_ALIGN ((size_t)16)

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t cap, used; /* bytes of data after the header */
    unsigned char *data;
} arena_chunk;

typedef struct arena {
    bool active;
    arena_chunk *used;  /* chunks holding this request's values, the current one first */
    arena_chunk *spare; /* kept from earlier requests */
} arena;

static pthread_key_t arena_key;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;
static bool arena_ready;
static _Thread_local arena *tl_arena;

static void chunk_list_free(arena_chunk *c)
{
    while (c != NULL) {
        arena_chunk *n = c->next;
        ASAN_UNPOISON_MEMORY_REGION(c->data, c->cap);
        free(c);
        c = n;
    }
}

static void arena_destroy(void *p)
{
    arena *a = p;
    if (a != NULL) {
        chunk_list_free(a->used);
        chunk_list_free(a->spare);
        free(a);
    }
}

static bool arena_owns(const arena *a, const void *p)
{
    const unsigned char *b = p;
    for (const arena_chunk *c = a->used; c != NULL; c = c->next) {
        if (b >= c->data && b < c->data + c->cap) {
            return true;
        }
    }
    return false;
}

static void *arena_malloc(size_t size)
{
    arena *a = tl_arena;
    if (a == NULL || !a->active) {
        return malloc(size);
    }
    size_t need = (ARENA_HEAD + size + ARENA_GAP + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    if (need < size) {
        return NULL;
    }
    arena_chunk *c = a->used;
    if (c == NULL || c->cap - c->used < need) {
        /* A spare chunk big enough, else a new one. */
        arena_chunk **pp = &a->spare;
        while (*pp != NULL && (*pp)->cap < need) {
            pp = &(*pp)->next;
        }
        if (*pp != NULL) {
            c = *pp;
            *pp = c->next;
        } else {
            size_t cap = need > ARENA_CHUNK ? need : ARENA_CHUNK;
            c = malloc(sizeof(*c) + cap + ARENA_ALIGN);
            if (c == NULL) {
                return NULL;
            }
            c->cap = cap;
            uintptr_t d = ((uintptr_t)(c + 1) + ARENA_ALIGN - 1) & ~(uintptr_t)(ARENA_ALIGN - 1);
            c->data = (unsigned char *)d;
            ASAN_POISON_MEMORY_REGION(c->data, c->cap);
        }
        c->used = 0;
        c->next = a->used;
        a->used = c;
    }
    unsigned char *p = c->data + c->used + ARENA_HEAD;
    c->used += need;
#ifdef ARENA_ASAN
    ASAN_UNPOISON_MEMORY_REGION(p - ARENA_HEAD, ARENA_HEAD);
    memcpy(p - ARENA_HEAD, &size, sizeof(size));
    ASAN_POISON_MEMORY_REGION(p - ARENA_HEAD, ARENA_HEAD);
#endif
    ASAN_UNPOISON_MEMORY_REGION(p, size);
    return p;
}

static void arena_free(void *p)
{
    arena *a = tl_arena;
    if (a == NULL || !a->active || !arena_owns(a, p)) {
        free(p);
        return;
    }
#ifdef ARENA_ASAN
    size_t size = 0;
    unsigned char *b = p;
    ASAN_UNPOISON_MEMORY_REGION(b - ARENA_HEAD, ARENA_HEAD);
    memcpy(&size, b - ARENA_HEAD, sizeof(size));
    ASAN_POISON_MEMORY_REGION(b - ARENA_HEAD, ARENA_HEAD);
    ASAN_POISON_MEMORY_REGION(b, size);
#endif
}

static void arena_setup(void)
{
    arena_ready = pthread_key_create(&arena_key, arena_destroy) == 0;
    if (arena_ready) {
        json_set_alloc_funcs(arena_malloc, arena_free);
    }
}

void xs_json_arena_install(void)
{
    pthread_once(&arena_once, arena_setup);
}

void xs_json_arena_begin(void)
{
    if (!arena_ready) {
        return;
    }
    arena *a = tl_arena;
    if (a == NULL) {
        a = calloc(1, sizeof(*a));
        if (a == NULL || pthread_setspecific(arena_key, a) != 0) {
            free(a);
            return; /* values come from malloc, as without an arena */
        }
        tl_arena = a;
    }
    a->active = true;
}

void xs_json_arena_end(void)
{
    arena *a = tl_arena;
    if (a == NULL || !a->active) {
        return;
    }
    a->active = false;
    /* Keep at most XS_JSON_ARENA_KEEP bytes of chunks for the next request: the spare ones
     * (releases inside the request put chunks there) first, then the used ones. */
    size_t kept = 0;
    for (arena_chunk **pp = &a->spare; *pp != NULL;) {
        arena_chunk *c = *pp;
        if (kept + c->cap <= XS_JSON_ARENA_KEEP) {
            kept += c->cap;
            pp = &c->next;
        } else {
            *pp = c->next;
            c->next = NULL;
            chunk_list_free(c);
        }
    }
    while (a->used != NULL) {
        arena_chunk *c = a->used;
        a->used = c->next;
        ASAN_POISON_MEMORY_REGION(c->data, c->cap);
        if (kept + c->cap <= XS_JSON_ARENA_KEEP) {
            kept += c->cap;
            c->next = a->spare;
            a->spare = c;
        } else {
            c->next = NULL;
            chunk_list_free(c);
        }
    }
}

xs_json_arena_pos xs_json_arena_mark(void)
{
    xs_json_arena_pos pos = {0};
    arena *a = tl_arena;
    if (a != NULL && a->active) {
        pos.set = true;
        pos.chunk = a->used;
        pos.used = a->used != NULL ? a->used->used : 0;
    }
    return pos;
}

void xs_json_arena_release(xs_json_arena_pos pos)
{
    arena *a = tl_arena;
    if (!pos.set || a == NULL || !a->active) {
        return;
    }
    while (a->used != NULL && a->used != pos.chunk) {
        arena_chunk *c = a->used;
        a->used = c->next;
        ASAN_POISON_MEMORY_REGION(c->data, c->cap);
        c->next = a->spare;
        a->spare = c;
    }
    if (a->used != NULL) {
        arena_chunk *c = a->used;
        ASAN_POISON_MEMORY_REGION(c->data + pos.used, c->cap - pos.used);
        c->used = pos.used;
    }
}

size_t xs_json_arena_used(void)
{
    size_t n = 0;
    for (const arena_chunk *c = tl_arena != NULL ? tl_arena->used : NULL; c != NULL; c = c->next) {
        n += c->used;
    }
    return n;
}
