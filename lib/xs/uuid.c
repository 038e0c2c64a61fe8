/* uuid.c: UUIDs: random version 4, text form, comparison. */
#include "xs/uuid.h"

#include <string.h>

#include "xs/crypto.h"

xs_err xs_uuid_random(xs_uuid *out)
{
    uint8_t b[16];
    xs_err e = xs_crypto_random(b, sizeof(b));
    if (e != XS_OK) {
        return e;
    }
    xs_uuid_from_bytes(b, out);
    return XS_OK;
}

xs_err xs_uuid_random_text(char out[XS_UUID_STR])
{
    xs_uuid u;
    xs_err e = xs_uuid_random(&u);
    if (e != XS_OK) {
        return e;
    }
    xs_uuid_format(&u, out);
    return XS_OK;
}

void xs_uuid_from_bytes(const uint8_t bytes[16], xs_uuid *out)
{
    memcpy(out->b, bytes, 16);
    out->b[6] = (uint8_t)((out->b[6] & 0x0f) | 0x40); /* version 4 */
    out->b[8] = (uint8_t)((out->b[8] & 0x3f) | 0x80); /* RFC 9562 variant */
}

void xs_uuid_format(const xs_uuid *u, char out[XS_UUID_STR])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out[o++] = '-';
        }
        out[o++] = hex[u->b[i] >> 4];
        out[o++] = hex[u->b[i] & 15];
    }
    out[o] = '\0';
}

bool xs_uuid_parse(const char *s, xs_uuid *out)
{
    if (s == NULL) {
        return false;
    }
    xs_uuid u;
    size_t j = 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') {
                return false;
            }
            continue;
        }
        /* the pairs never straddle a dash (the groups have even lengths); s[i + 1] is read
         * only when s[i] is a digit, so never past the NUL */
        int hi = xs_hex_digit((unsigned char)s[i]);
        int lo = hi < 0 ? -1 : xs_hex_digit((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        u.b[j++] = (uint8_t)(hi << 4 | lo);
        i++;
    }
    if (s[36] != '\0') {
        return false;
    }
    if (out != NULL) {
        *out = u;
    }
    return true;
}

bool xs_uuid_valid(const char *s)
{
    return xs_uuid_parse(s, NULL);
}

bool xs_uuid_is_nil(const xs_uuid *u)
{
    for (int i = 0; i < 16; i++) {
        if (u->b[i] != 0) {
            return false;
        }
    }
    return true;
}

bool xs_uuid_eq(const xs_uuid *a, const xs_uuid *b)
{
    return memcmp(a->b, b->b, 16) == 0;
}
