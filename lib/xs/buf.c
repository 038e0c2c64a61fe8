/* buf.c: the growable byte buffer (see buf.h). */
#include "xs/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void xs_buf_init(xs_buf *b, size_t first)
{
    *b = (xs_buf){.first = first};
}

void xs_buf_fini(xs_buf *b)
{
    if (b == NULL) {
        return;
    }
    free(b->p);
    xs_buf_init(b, b->first);
}

xs_err xs_buf_reserve(xs_buf *b, size_t n)
{
    if (b->failed) {
        return XS_ENOMEM;
    }
    if (b->p != NULL && n < b->cap - b->len) {
        return XS_OK;
    }
    if (n > SIZE_MAX / 2 - b->len) {
        b->failed = true;
        return XS_ENOMEM;
    }
    size_t cap = b->cap != 0 ? b->cap : b->first != 0 ? b->first : XS_BUF_FIRST;
    while (n >= cap - b->len) {
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->failed = true;
        return XS_ENOMEM;
    }
    if (b->p == NULL) {
        p[0] = '\0';
    }
    b->p = p;
    b->cap = cap;
    return XS_OK;
}

xs_err xs_buf_append(xs_buf *b, const void *data, size_t n)
{
    xs_err e = xs_buf_reserve(b, n);
    if (e != XS_OK) {
        return e;
    }
    if (n > 0) {
        memcpy(b->p + b->len, data, n);
    }
    b->len += n;
    b->p[b->len] = '\0';
    return XS_OK;
}

xs_err xs_buf_puts(xs_buf *b, const char *s)
{
    return xs_buf_append(b, s, strlen(s));
}

xs_err xs_buf_printf(xs_buf *b, const char *fmt, ...)
{
    if (b->failed) {
        return XS_ENOMEM;
    }
    /* Format into the room there is; when that is too small, make room for the whole text and
     * format again. */
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->p != NULL ? b->cap - b->len : 0;
    int k = vsnprintf(b->p != NULL ? b->p + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (k < 0) {
        if (b->p != NULL) {
            b->p[b->len] = '\0';
        }
        return XS_EINVAL;
    }
    if ((size_t)k >= room) {
        xs_err e = xs_buf_reserve(b, (size_t)k);
        if (e != XS_OK) {
            if (b->p != NULL) {
                b->p[b->len] = '\0';
            }
            return e;
        }
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)k;
    return XS_OK;
}

char *xs_buf_take(xs_buf *b, size_t *len)
{
    char *text = NULL;
    if (!b->failed && b->p != NULL) {
        text = b->p;
        if (len != NULL) {
            *len = b->len;
        }
    } else {
        free(b->p);
    }
    xs_buf_init(b, b->first);
    return text;
}
