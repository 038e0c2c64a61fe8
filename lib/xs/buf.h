/*
 * buf.h: a growable byte buffer, kept NUL-terminated, for text whose size is not known in
 * advance (a reply body, a request body, a generated page).
 *
 * An xs_buf all zeros is an empty buffer with the default first allocation; xs_buf_init names
 * another. The first append allocates; later ones double the capacity as needed. An append
 * that cannot allocate marks the buffer failed: it keeps what it had, every later append does
 * nothing and returns XS_ENOMEM, and xs_buf_take hands back NULL. A caller therefore may append
 * many times and check once at the end. Limits on the size (a body too big) are the caller's.
 * Not thread-safe: one buffer belongs to one thread at a time.
 */
#ifndef XS_BUF_H
#define XS_BUF_H

#include <stdbool.h>
#include <stddef.h>

#include "xs/err.h"

/* The first allocation of a buffer whose `first` is 0. */
#define XS_BUF_FIRST 256

typedef struct xs_buf {
    char *p;      /* owned; NUL-terminated after the first append, NULL before it */
    size_t len;   /* bytes held, not counting the NUL */
    size_t cap;   /* bytes allocated at p */
    size_t first; /* the first allocation (0: XS_BUF_FIRST) */
    bool failed;  /* an append ran out of memory: the text is incomplete */
} xs_buf;

/* xs_buf_init empties b (without freeing: b must hold nothing) and sets its first allocation
 * to first bytes (0: XS_BUF_FIRST). */
void xs_buf_init(xs_buf *b, size_t first);

/* xs_buf_fini frees b's text and empties it, keeping its first allocation; b may be NULL. */
void xs_buf_fini(xs_buf *b);

/* xs_buf_reserve makes room for n more bytes and the NUL, so the next appends of up to n
 * bytes in all cannot fail. XS_ENOMEM (b failed) when out of memory or b failed before. */
xs_err xs_buf_reserve(xs_buf *b, size_t n);

/* xs_buf_append appends n bytes of data (borrowed; may be NULL when n is 0). Even n = 0
 * allocates, so b->p is a string afterwards. XS_ENOMEM, b unchanged but failed, when out of
 * memory or b failed before. */
xs_err xs_buf_append(xs_buf *b, const void *data, size_t n);

/* xs_buf_puts appends the string s (borrowed), as xs_buf_append. */
xs_err xs_buf_puts(xs_buf *b, const char *s);

/* xs_buf_printf appends the printf of fmt, whole, as xs_buf_append; XS_EINVAL (b unchanged
 * and not failed) when fmt cannot be formatted. */
xs_err xs_buf_printf(xs_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* xs_buf_take returns b's text (new: the caller frees it) and, when len is not NULL, its
 * length in *len, and empties b. NULL, with the text freed and *len untouched, when nothing
 * was appended or an append failed. */
char *xs_buf_take(xs_buf *b, size_t *len);

#endif
