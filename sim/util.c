/* util.c: deterministic randomness (and ids made from it), packed strings, small maps, text and
 * time helpers for the simulator. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "xs/crypto.h"

/* ------------------------------------------------------------------ randomness */

uint64_t sim__mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

uint64_t sim__rng_next(sim_rng *r)
{
    r->s += UINT64_C(0x9e3779b97f4a7c15);
    return sim__mix64(r->s);
}

uint64_t sim__rng_below(sim_rng *r, uint64_t n)
{
    /* Lemire's multiply-shift; the tiny bias is irrelevant for test data. */
    return (uint64_t)(((unsigned __int128)sim__rng_next(r) * n) >> 64);
}

void sim__rng_uuid(sim_rng *r, xs_uuid *out)
{
    uint64_t a = sim__rng_next(r), b = sim__rng_next(r);
    uint8_t bytes[16];
    memcpy(bytes, &a, 8);
    memcpy(bytes + 8, &b, 8);
    xs_uuid_from_bytes(bytes, out);
}

uint64_t sim__hash64(const void *data, size_t n, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = UINT64_C(0xcbf29ce484222325) ^ sim__mix64(seed);
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return sim__mix64(h);
}

/* ------------------------------------------------------------------ packed strings */

#define STRS_END 0xFF

const char *sim__strs_get(const sim_strs *s, unsigned f)
{
    const unsigned char *p = s->p;
    if (p == NULL) {
        return "";
    }
    while (*p != STRS_END) {
        unsigned len = (unsigned)p[1] | (unsigned)p[2] << 8;
        if (*p == f) {
            return (const char *)p + 3;
        }
        p += 3 + len + 1;
    }
    return "";
}

void sim__strs_load(const sim_strs *s, const char **vals, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        vals[i] = "";
    }
    const unsigned char *p = s->p;
    if (p == NULL) {
        return;
    }
    while (*p != STRS_END) {
        unsigned len = (unsigned)p[1] | (unsigned)p[2] << 8;
        if (*p < n) {
            vals[*p] = (const char *)p + 3;
        }
        p += 3 + len + 1;
    }
}

xs_err sim__strs_build(sim_strs *s, const char *const *vals, unsigned n)
{
    size_t total = 1;
    for (unsigned i = 0; i < n; i++) {
        if (vals[i] != NULL && vals[i][0] != '\0') {
            size_t len = strlen(vals[i]);
            if (len > SIM_STR_MAX) {
                return XS_ETOOBIG;
            }
            total += 3 + len + 1;
        }
    }
    unsigned char *p = NULL;
    if (total > 1) {
        p = malloc(total);
        if (p == NULL) {
            return XS_ENOMEM;
        }
        size_t o = 0;
        for (unsigned i = 0; i < n; i++) {
            if (vals[i] != NULL && vals[i][0] != '\0') {
                size_t len = strlen(vals[i]);
                p[o] = (unsigned char)i;
                p[o + 1] = (unsigned char)(len & 0xff);
                p[o + 2] = (unsigned char)(len >> 8);
                memcpy(p + o + 3, vals[i], len + 1);
                o += 3 + len + 1;
            }
        }
        p[o] = STRS_END;
    }
    free(s->p);
    s->p = p;
    return XS_OK;
}

void sim__strs_free(sim_strs *s)
{
    free(s->p);
    s->p = NULL;
}

/* ------------------------------------------------------------------ index lists */

xs_err sim__idxlist_add(sim_idxlist *l, uint32_t v)
{
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 4;
        uint32_t *nv = realloc(l->v, cap * sizeof(*nv));
        if (nv == NULL) {
            return XS_ENOMEM;
        }
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = v;
    return XS_OK;
}

void sim__idxlist_del(sim_idxlist *l, uint32_t v)
{
    for (uint32_t i = 0; i < l->n; i++) {
        if (l->v[i] == v) {
            memmove(l->v + i, l->v + i + 1, (l->n - i - 1) * sizeof(*l->v));
            l->n--;
            return;
        }
    }
}

/* ------------------------------------------------------------------ hash multimap */

static xs_err imap_grow(sim_imap *m)
{
    uint32_t nb = m->nb ? m->nb * 2 : 64;
    sim_imap_node **b = calloc(nb, sizeof(*b));
    if (b == NULL) {
        return XS_ENOMEM;
    }
    for (uint32_t i = 0; i < m->nb; i++) {
        sim_imap_node *n = m->b[i];
        while (n != NULL) {
            sim_imap_node *next = n->next;
            uint32_t k = (uint32_t)(n->h & (nb - 1));
            n->next = b[k];
            b[k] = n;
            n = next;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
    return XS_OK;
}

xs_err sim__imap_add(sim_imap *m, uint64_t h, uint32_t idx)
{
    if (m->nb == 0 || m->n >= m->nb) {
        xs_err e = imap_grow(m);
        if (e != XS_OK) {
            return e;
        }
    }
    sim_imap_node *n = malloc(sizeof(*n));
    if (n == NULL) {
        return XS_ENOMEM;
    }
    uint32_t k = (uint32_t)(h & (m->nb - 1));
    n->h = h;
    n->idx = idx;
    n->next = m->b[k];
    m->b[k] = n;
    m->n++;
    return XS_OK;
}

void sim__imap_del(sim_imap *m, uint64_t h, uint32_t idx)
{
    if (m->nb == 0) {
        return;
    }
    sim_imap_node **pp = &m->b[h & (m->nb - 1)];
    while (*pp != NULL) {
        if ((*pp)->h == h && (*pp)->idx == idx) {
            sim_imap_node *d = *pp;
            *pp = d->next;
            free(d);
            m->n--;
            return;
        }
        pp = &(*pp)->next;
    }
}

sim_imap_node *sim__imap_first(const sim_imap *m, uint64_t h)
{
    if (m->nb == 0) {
        return NULL;
    }
    sim_imap_node *n = m->b[h & (m->nb - 1)];
    while (n != NULL && n->h != h) {
        n = n->next;
    }
    return n;
}

sim_imap_node *sim__imap_next(sim_imap_node *n, uint64_t h)
{
    n = n->next;
    while (n != NULL && n->h != h) {
        n = n->next;
    }
    return n;
}

void sim__imap_free(sim_imap *m)
{
    for (uint32_t i = 0; i < m->nb; i++) {
        sim_imap_node *n = m->b[i];
        while (n != NULL) {
            sim_imap_node *next = n->next;
            free(n);
            n = next;
        }
    }
    free(m->b);
    memset(m, 0, sizeof(*m));
}

/* ------------------------------------------------------------------ string map */

static uint64_t str_hash(const char *s)
{
    return sim__hash64(s, strlen(s), 7);
}

static xs_err smap_grow(sim_smap *m)
{
    uint32_t nb = m->nb ? m->nb * 2 : 64;
    sim_smap_node **b = calloc(nb, sizeof(*b));
    if (b == NULL) {
        return XS_ENOMEM;
    }
    for (uint32_t i = 0; i < m->nb; i++) {
        sim_smap_node *n = m->b[i];
        while (n != NULL) {
            sim_smap_node *next = n->next;
            uint32_t k = (uint32_t)(str_hash(n->key) & (nb - 1));
            n->next = b[k];
            b[k] = n;
            n = next;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
    return XS_OK;
}

xs_err sim__smap_put(sim_smap *m, const char *key, void *val, void **old)
{
    if (old != NULL) {
        *old = NULL;
    }
    if (m->nb != 0) {
        for (sim_smap_node *n = m->b[str_hash(key) & (m->nb - 1)]; n != NULL; n = n->next) {
            if (strcmp(n->key, key) == 0) {
                if (old != NULL) {
                    *old = n->val;
                }
                n->val = val;
                return XS_OK;
            }
        }
    }
    if (m->nb == 0 || m->n >= m->nb) {
        xs_err e = smap_grow(m);
        if (e != XS_OK) {
            return e;
        }
    }
    sim_smap_node *n = malloc(sizeof(*n));
    char *k = strdup(key);
    if (n == NULL || k == NULL) {
        free(n);
        free(k);
        return XS_ENOMEM;
    }
    uint32_t b = (uint32_t)(str_hash(key) & (m->nb - 1));
    n->key = k;
    n->val = val;
    n->next = m->b[b];
    m->b[b] = n;
    m->n++;
    return XS_OK;
}

void *sim__smap_get(const sim_smap *m, const char *key)
{
    if (m->nb == 0 || key == NULL) {
        return NULL;
    }
    for (sim_smap_node *n = m->b[str_hash(key) & (m->nb - 1)]; n != NULL; n = n->next) {
        if (strcmp(n->key, key) == 0) {
            return n->val;
        }
    }
    return NULL;
}

void *sim__smap_del(sim_smap *m, const char *key)
{
    if (m->nb == 0 || key == NULL) {
        return NULL;
    }
    sim_smap_node **pp = &m->b[str_hash(key) & (m->nb - 1)];
    while (*pp != NULL) {
        if (strcmp((*pp)->key, key) == 0) {
            sim_smap_node *d = *pp;
            void *v = d->val;
            *pp = d->next;
            free(d->key);
            free(d);
            m->n--;
            return v;
        }
        pp = &(*pp)->next;
    }
    return NULL;
}

void sim__smap_each(sim_smap *m, bool (*fn)(const char *key, void *val, void *arg), void *arg)
{
    for (uint32_t i = 0; i < m->nb; i++) {
        sim_smap_node **pp = &m->b[i];
        while (*pp != NULL) {
            sim_smap_node *n = *pp;
            if (fn(n->key, n->val, arg)) {
                *pp = n->next;
                free(n->key);
                free(n);
                m->n--;
            } else {
                pp = &n->next;
            }
        }
    }
}

void sim__smap_free(sim_smap *m, void (*free_val)(void *))
{
    for (uint32_t i = 0; i < m->nb; i++) {
        sim_smap_node *n = m->b[i];
        while (n != NULL) {
            sim_smap_node *next = n->next;
            if (free_val != NULL) {
                free_val(n->val);
            }
            free(n->key);
            free(n);
            n = next;
        }
    }
    free(m->b);
    memset(m, 0, sizeof(*m));
}

/* ------------------------------------------------------------------ text */

size_t sim__norm_key(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    bool space = false;
    if (cap == 0) {
        return 0;
    }
    while (*s != '\0' && isspace((unsigned char)*s)) {
        s++;
    }
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (isspace(ch)) {
            space = true;
            continue;
        }
        if (space && o + 1 < cap) {
            out[o++] = ' ';
        }
        space = false;
        if (o + 1 < cap) {
            out[o++] = (char)((ch >= 'A' && ch <= 'Z') ? ch + 32 : ch);
        }
    }
    out[o] = '\0';
    return o;
}

uint64_t sim__norm_hash(const char *s)
{
    char buf[1024];
    size_t n = sim__norm_key(s, buf, sizeof(buf));
    return sim__hash64(buf, n, 11);
}

bool sim__norm_eq(const char *a, const char *b)
{
    char x[1024], y[1024];
    sim__norm_key(a, x, sizeof(x));
    sim__norm_key(b, y, sizeof(y));
    return strcmp(x, y) == 0;
}

size_t sim__utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++) {
        n += ((unsigned char)*s & 0xC0) != 0x80;
    }
    return n;
}

bool sim__ci_contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0) {
        return true;
    }
    for (; *hay != '\0'; hay++) {
        if (strncasecmp(hay, needle, n) == 0) {
            return true;
        }
    }
    return false;
}

xs_err sim__form_get(const char *body, size_t len, const char *name, char **out)
{
    size_t pos = 0;
    return sim__form_next(body, len, name, &pos, out);
}

xs_err sim__form_next(const char *body, size_t len, const char *name, size_t *pos, char **out)
{
    size_t nlen = strlen(name);
    size_t i = *pos;
    while (i < len) {
        size_t end = i;
        while (end < len && body[end] != '&') {
            end++;
        }
        size_t eq = i;
        while (eq < end && body[eq] != '=') {
            eq++;
        }
        if (eq - i == nlen && memcmp(body + i, name, nlen) == 0) {
            size_t vstart = eq < end ? eq + 1 : end;
            char *v = malloc(end - vstart + 1);
            if (v == NULL) {
                return XS_ENOMEM;
            }
            size_t o = 0;
            for (size_t k = vstart; k < end; k++) {
                char ch = body[k];
                if (ch == '+') {
                    v[o++] = ' ';
                } else if (ch == '%') {
                    if (k + 2 >= end) {
                        free(v);
                        return XS_EPARSE;
                    }
                    int hi = xs_hex_digit((unsigned char)body[k + 1]);
                    int lo = xs_hex_digit((unsigned char)body[k + 2]);
                    if (hi < 0 || lo < 0) {
                        free(v);
                        return XS_EPARSE;
                    }
                    v[o++] = (char)(hi << 4 | lo);
                    k += 2;
                } else {
                    v[o++] = ch;
                }
            }
            v[o] = '\0';
            if (strlen(v) != o) { /* an encoded NUL */
                free(v);
                return XS_EPARSE;
            }
            *out = v;
            *pos = end + 1;
            return XS_OK;
        }
        i = end + 1;
    }
    return XS_ENOTFOUND;
}

bool sim__url_append(xs_buf *b, const char *s, bool encode)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t need = 0;
    for (const char *q = s; *q != '\0'; q++) {
        unsigned char ch = (unsigned char)*q;
        bool plain = !encode || isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~';
        need += plain ? 1 : 3;
    }
    /* Room for all of it first, so b keeps what it had when there is none; then no append
     * below can fail. */
    if (xs_buf_reserve(b, need) != XS_OK) {
        return false;
    }
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        bool plain = !encode || isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~';
        if (plain) {
            xs_buf_append(b, s, 1);
        } else {
            char esc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            xs_buf_append(b, esc, sizeof(esc));
        }
    }
    return true;
}

bool sim__html_append(xs_buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        const char *esc = NULL;
        switch (*s) {
        case '&':
            esc = "&amp;";
            break;
        case '<':
            esc = "&lt;";
            break;
        case '>':
            esc = "&gt;";
            break;
        case '"':
            esc = "&quot;";
            break;
        case '\'':
            esc = "&#39;";
            break;
        default:
            break;
        }
        if (esc != NULL) {
            xs_buf_puts(b, esc);
        } else {
            xs_buf_append(b, s, 1);
        }
    }
    return !b->failed;
}

/* ------------------------------------------------------------------ counts */

uint64_t sim__counts_bump(sim_counts *m, uint64_t key)
{
    char k[24];
    snprintf(k, sizeof(k), "%016llx", (unsigned long long)key);
    uintptr_t v = (uintptr_t)sim__smap_get(&m->cur, k);
    if (v == 0) {
        v = (uintptr_t)sim__smap_get(&m->old, k);
        uint32_t cap = m->cap != 0 ? m->cap : SIM_COUNTS_CAP;
        if (m->cur.n >= cap) {
            /* the newer generation is full: the older one (and whatever it alone held) goes */
            sim__smap_free(&m->old, NULL);
            m->old = m->cur;
            memset(&m->cur, 0, sizeof(m->cur));
        }
    }
    uint64_t seen = v > 0 ? (uint64_t)(v - 1) : 0;
    sim__smap_put(&m->cur, k, (void *)(uintptr_t)(seen + 2), NULL);
    return seen;
}

size_t sim__counts_size(const sim_counts *m)
{
    return (size_t)m->cur.n + m->old.n;
}

void sim__counts_free(sim_counts *m)
{
    uint32_t cap = m->cap;
    sim__smap_free(&m->cur, NULL);
    sim__smap_free(&m->old, NULL);
    m->cap = cap;
}

/* ------------------------------------------------------------------ time */

xs_err sim__time_parse_http(const char *text, xs_time *out)
{
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char wd[4], mon[4], zone[4];
    int d, y, h, mi, s;
    int used = 0;
    /* %3s takes "Sun" and stops before the comma, which the format then matches */
    if (sscanf(text, "%3s, %d %3s %d %d:%d:%d %3s%n", wd, &d, mon, &y, &h, &mi, &s, zone, &used) !=
            8 ||
        text[used] != '\0' || strcmp(zone, "GMT") != 0) {
        return XS_EPARSE;
    }
    int m = 0;
    for (int i = 0; i < 12; i++) {
        if (strcmp(mon, months[i]) == 0) {
            m = i + 1;
        }
    }
    if (m == 0 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 60 ||
        y < 1900 || y > 9999) {
        return XS_EPARSE;
    }
    *out = (xs_time_days_from_civil(y, m, d) * 86400 + h * 3600 + mi * 60 + s) * 1000;
    return XS_OK;
}

void sim__time_format_plain(xs_time t, char *buf)
{
    xs_time_fields tf;
    xs_time_split(t, &tf);
    if (tf.year < 0 || tf.year > 9999) {
        xs_time_format_iso_seconds(t, buf);
        return;
    }
    /* By hand, not snprintf: replies carry two of these per invoice. */
    const int v[6] = {(int)tf.year, tf.month, tf.day, tf.hour, tf.min, tf.sec};
    static const char after[6] = {'-', '-', 'T', ':', ':', '\0'};
    char *p = buf;
    for (int f = 0; f < 6; f++) {
        int width = f == 0 ? 4 : 2;
        for (int k = width - 1, x = v[f]; k >= 0; k--, x /= 10) {
            p[k] = (char)('0' + x % 10);
        }
        p += width;
        *p++ = after[f];
    }
}

/* year4 bounds a year to Xero's four digits (no time the simulator keeps is outside them), so
 * that the text fits XS_TIME_ISO_MAX; GCC's -Wformat-truncation cannot bound an int64_t year
 * and fails the Release build otherwise. */
static int year4(int64_t y)
{
    return y < 0 ? 0 : y > 9999 ? 9999 : (int)y;
}

void sim__time_format_ms(xs_time t, char *buf)
{
    xs_time_fields f;
    xs_time_split(t, &f);
    snprintf(buf, XS_TIME_ISO_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%03d", year4(f.year), f.month,
             f.day, f.hour, f.min, f.sec, f.ms);
}

void sim__time_format_7(xs_time t, char *buf)
{
    xs_time_fields f;
    xs_time_split(t, &f);
    snprintf(buf, XS_TIME_ISO_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%03d0000", year4(f.year), f.month,
             f.day, f.hour, f.min, f.sec, f.ms);
}

xs_time sim__day_start(xs_time t)
{
    int64_t days = t >= 0 ? t / SIM_DAY_MS : -((-t + SIM_DAY_MS - 1) / SIM_DAY_MS);
    return days * SIM_DAY_MS;
}

/* ------------------------------------------------------------------ JSON values */

json_t *sim__json_xero_date(xs_time t)
{
    char buf[XS_TIME_XERO_MAX];
    xs_time_format_xero(t, buf);
    return json_string_nocheck(buf);
}

json_t *sim__json_money(xs_money m, int places)
{
    xs_money r;
    if (xs_money_round(m, places, XS_ROUND_HALF_UP, &r) != XS_OK) {
        r = m;
    }
    return xs_json_money(r, places);
}

json_t *sim__json_money_min(xs_money m, int min)
{
    char buf[XS_MONEY_TEXT_MAX];
    xs_money_format_min(m, min, buf);
    return xs_json_decimal(buf);
}

json_t *sim__json_uuid(const xs_uuid *u)
{
    char buf[XS_UUID_STR];
    xs_uuid_format(u, buf);
    return json_string_nocheck(buf);
}

json_t *sim__shared_str(sim_shared *sh, const char *v)
{
    if (v[0] != '\0') {
        return json_string_nocheck(v);
    }
    if (sh->str == NULL) {
        sh->str = json_string_nocheck("");
    }
    return json_incref(sh->str);
}

json_t *sim__shared_array(sim_shared *sh)
{
    if (sh->arr == NULL) {
        sh->arr = json_array();
    }
    return json_incref(sh->arr);
}

void sim__shared_fini(sim_shared *sh)
{
    json_decref(sh->str);
    json_decref(sh->arr);
    sh->str = NULL;
    sh->arr = NULL;
}

/* ------------------------------------------------------------------ money */

xs_err sim__money_line(xs_money q, xs_money u, xs_money rate, xs_money *out)
{
    /* With q and u scaled by 10^6 and f = (100 - rate) scaled by 10^6, q * u * f is the
     * line amount in cents scaled by 10^18: one exact product, one rounding. */
    const __int128 e6 = 1000000;
    const __int128 e15 = (__int128)1000000000000000LL;
    const __int128 d = e15 * 1000; /* 10^18 */
    __int128 f = 100 * e6 - rate.units;
    if (f < 0 || f > 100 * e6) {
        return XS_ERANGE;
    }
    __int128 a = (__int128)q.units * u.units;
    if (a > e15 * e15 || a < -(e15 * e15)) {
        return XS_ERANGE;
    }
    __int128 n = a * f; /* |n| <= 10^38 */
    __int128 cents = n / d, rem = n % d;
    if (rem * 2 >= d) {
        cents++;
    } else if (rem * 2 <= -d) {
        cents--;
    }
    __int128 units = cents * 10000;
    if (units > INT64_MAX || units < INT64_MIN) {
        return XS_ERANGE;
    }
    out->units = (int64_t)units;
    return XS_OK;
}
