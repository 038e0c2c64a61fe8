/*
 * multipart.c: a multipart/form-data reader (RFC 7578 over RFC 2046 section 5.1). Strict
 * where a sloppy reading could store the wrong bytes (the boundary, the part headers, the
 * closing delimiter), lenient where clients differ (a preamble, padding after a delimiter,
 * header names' case, quoted or bare parameter values).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "multipart.h"

/* find returns the first occurrence of needle (n bytes) in hay (len bytes), or NULL. */
static const char *find(const char *hay, size_t len, const char *needle, size_t n)
{
    if (n == 0 || len < n) {
        return NULL;
    }
    for (const char *p = hay, *end = hay + len - n; p <= end; p++) {
        p = memchr(p, needle[0], (size_t)(end - p) + 1);
        if (p == NULL) {
            return NULL;
        }
        if (memcmp(p, needle, n) == 0) {
            return p;
        }
    }
    return NULL;
}

/* param reads the parameter `key` of a header value ("form-data; name=\"a\"; ...") into out
 * (cap bytes): quoted (with backslash escapes) or a bare token. 1 found, 0 absent, -1
 * malformed or too long. */
static int param(const char *v, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key);
    const char *p = strchr(v, ';');
    while (p != NULL) {
        p++;
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (strncasecmp(p, key, klen) == 0 && p[klen] == '=') {
            const char *s = p + klen + 1;
            size_t o = 0;
            if (*s == '"') {
                for (s++; *s != '"'; s++) {
                    if (*s == '\0') {
                        return -1;
                    }
                    if (*s == '\\' && s[1] != '\0') {
                        s++;
                    }
                    if (o + 1 >= cap) {
                        return -1;
                    }
                    out[o++] = *s;
                }
            } else {
                for (; *s != '\0' && *s != ';' && *s != ' ' && *s != '\t'; s++) {
                    if (o + 1 >= cap) {
                        return -1;
                    }
                    out[o++] = *s;
                }
            }
            out[o] = '\0';
            return 1;
        }
        /* skip this parameter, quoted semicolons included */
        bool q = false;
        for (; *p != '\0' && (q || *p != ';'); p++) {
            if (*p == '"') {
                q = !q;
            } else if (q && *p == '\\' && p[1] != '\0') {
                p++;
            }
        }
        p = *p == ';' ? p : NULL;
    }
    return 0;
}

/* part_headers reads the header block [h, end) of one part into part; false with why. */
static bool part_headers(const char *h, const char *end, sim_mp_part *part, char *why)
{
    bool disposition = false;
    while (h < end) {
        const char *eol = find(h, (size_t)(end - h), "\r\n", 2);
        const char *le = eol != NULL ? eol : end;
        char line[2 * SIM_MP_NAME_MAX + 128];
        size_t n = (size_t)(le - h);
        if (n >= sizeof(line) || memchr(h, '\0', n) != NULL) {
            snprintf(why, 200, "a part header is too long or holds a NUL byte");
            return false;
        }
        memcpy(line, h, n);
        line[n] = '\0';
        h = eol != NULL ? eol + 2 : end;
        char *colon = strchr(line, ':');
        if (colon == NULL) {
            snprintf(why, 200, "a part header line has no colon");
            return false;
        }
        *colon = '\0';
        const char *val = colon + 1;
        while (*val == ' ' || *val == '\t') {
            val++;
        }
        if (strcasecmp(line, "Content-Disposition") == 0) {
            if (strncasecmp(val, "form-data", 9) != 0 || (val[9] != '\0' && val[9] != ';')) {
                snprintf(why, 200, "a part's Content-Disposition is not form-data");
                return false;
            }
            int rn = param(val, "name", part->name, sizeof(part->name));
            int rf = param(val, "filename", part->filename, sizeof(part->filename));
            if (rn != 1 || rf < 0) {
                snprintf(why, 200, "a part's Content-Disposition has no usable name%s",
                         rf < 0 ? " or filename" : "");
                return false;
            }
            part->has_filename = rf == 1;
            disposition = true;
        } else if (strcasecmp(line, "Content-Type") == 0) {
            if (strlen(val) >= sizeof(part->ctype)) {
                snprintf(why, 200, "a part's Content-Type is too long");
                return false;
            }
            snprintf(part->ctype, sizeof(part->ctype), "%s", val);
        }
    }
    if (!disposition) {
        snprintf(why, 200, "a part has no Content-Disposition header");
        return false;
    }
    return true;
}

/* boundary reads the boundary parameter of a multipart/form-data Content-Type into out. */
static bool boundary(const char *ctype, char out[72], char *why)
{
    if (ctype == NULL || strncasecmp(ctype, "multipart/form-data", 19) != 0 ||
        (ctype[19] != '\0' && ctype[19] != ';' && ctype[19] != ' ')) {
        snprintf(why, 200, "the Content-Type is %.80s, not multipart/form-data",
                 ctype != NULL ? ctype : "missing");
        return false;
    }
    int r = param(ctype + 19, "boundary", out, 72);
    if (r != 1 || out[0] == '\0') {
        snprintf(why, 200, "the Content-Type has no boundary of 1 to 70 characters");
        return false;
    }
    return true;
}

xs_err sim__mp_parse(const char *ctype, const char *body, size_t len, sim_mp *out, char *why)
{
    char b[72];
    memset(out, 0, sizeof(*out));
    if (!boundary(ctype, b + 0, why)) {
        return XS_EINVAL;
    }
    char delim[80];
    int dn = snprintf(delim, sizeof(delim), "\r\n--%s", b);
    /* the first delimiter may open the body (no CRLF before it) or follow a preamble */
    const char *p;
    if (len >= (size_t)dn - 2 && memcmp(body, delim + 2, (size_t)dn - 2) == 0) {
        p = body + dn - 2;
    } else {
        p = body != NULL ? find(body, len, delim, (size_t)dn) : NULL;
        if (p == NULL) {
            snprintf(why, 200, "the body holds no delimiter for the boundary");
            return XS_EINVAL;
        }
        p += dn;
    }
    const char *end = body + len;
    for (;;) {
        /* after a delimiter: "--" closes the body; else optional padding and CRLF */
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') {
            return out->n > 0 ? XS_OK : (snprintf(why, 200, "the body has no parts"), XS_EINVAL);
        }
        while (p < end && (*p == ' ' || *p == '\t')) {
            p++;
        }
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') {
            snprintf(why, 200, "a delimiter is not followed by CRLF (or the body ends early)");
            return XS_EINVAL;
        }
        p += 2;
        if (out->n == SIM_MP_PARTS_MAX) {
            snprintf(why, 200, "more than %d parts", SIM_MP_PARTS_MAX);
            return XS_EINVAL;
        }
        sim_mp_part *part = &out->parts[out->n];
        const char *hend;
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
            hend = p; /* no headers at all */
        } else {
            hend = find(p, (size_t)(end - p), "\r\n\r\n", 4);
            if (hend == NULL) {
                snprintf(why, 200, "a part's headers do not end with an empty line");
                return XS_EINVAL;
            }
        }
        if (!part_headers(p, hend, part, why)) {
            return XS_EINVAL;
        }
        p = hend + (hend == p ? 2 : 4);
        const char *next = find(p, (size_t)(end - p), delim, (size_t)dn);
        if (next == NULL) {
            snprintf(why, 200, "the body ends without the closing delimiter");
            return XS_EINVAL;
        }
        part->data = p;
        part->len = (size_t)(next - p);
        out->n++;
        p = next + dn;
    }
}

const sim_mp_part *sim__mp_find(const sim_mp *mp, const char *name)
{
    for (size_t i = 0; i < mp->n; i++) {
        if (strcmp(mp->parts[i].name, name) == 0) {
            return &mp->parts[i];
        }
    }
    return NULL;
}
