/* crypto.c: SHA-256, HMAC-SHA256, AES-256-GCM, base64 and randomness over OpenSSL 3.0. */
#include "xs/crypto.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

/* OpenSSL rejects NULL data pointers in some paths even for zero lengths; point there. */
static const uint8_t empty[1];

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

xs_err xs_crypto_random(void *buf, size_t n)
{
    if (buf == NULL && n > 0) {
        return XS_EINVAL;
    }
    uint8_t *p = buf;
    while (n > 0) {
        int chunk = n > (size_t)INT_MAX ? INT_MAX : (int)n;
        if (RAND_bytes(p, chunk) != 1) {
            ERR_clear_error();
            return XS_ECRYPTO;
        }
        p += chunk;
        n -= (size_t)chunk;
    }
    return XS_OK;
}

/* b64_encode writes base64 of data with the 64-character alphabet `abc`, padded with '='
 * when pad is true, into *out (new). */
static xs_err b64_encode(const void *data, size_t n, const char *abc, bool pad, char **out)
{
    if ((data == NULL && n > 0) || out == NULL) {
        return XS_EINVAL;
    }
    if (n / 3 >= SIZE_MAX / 4 - 1) {
        return XS_ETOOBIG;
    }
    char *s = malloc((n + 2) / 3 * 4 + 1);
    if (s == NULL) {
        return XS_ENOMEM;
    }
    const uint8_t *in = n > 0 ? data : empty;
    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        s[o++] = abc[v >> 18];
        s[o++] = abc[(v >> 12) & 63];
        s[o++] = abc[(v >> 6) & 63];
        s[o++] = abc[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        s[o++] = abc[v >> 18];
        s[o++] = abc[(v >> 12) & 63];
        if (pad) {
            s[o++] = '=';
            s[o++] = '=';
        }
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        s[o++] = abc[v >> 18];
        s[o++] = abc[(v >> 12) & 63];
        s[o++] = abc[(v >> 6) & 63];
        if (pad) {
            s[o++] = '=';
        }
    }
    s[o] = '\0';
    *out = s;
    return XS_OK;
}

/* b64_value returns the 6-bit value of c in the standard (url false) or URL-safe alphabet,
 * or -1 when c is not in it. */
static int b64_value(unsigned char c, bool url)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == (url ? '-' : '+')) {
        return 62;
    }
    if (c == (url ? '_' : '/')) {
        return 63;
    }
    return -1;
}

/* b64_decode reads len characters of base64 in the standard or URL-safe alphabet into *out
 * (new, with a NUL after the data) and *outlen. Padding is required for the standard
 * alphabet and optional for the URL-safe one; when present it must complete the last
 * quantum. Unused low bits of the last character must be zero, so every byte string has
 * exactly one accepted text. Malformed text is XS_EPARSE. */
static xs_err b64_decode(const char *text, size_t len, bool url, uint8_t **out, size_t *outlen)
{
    if ((text == NULL && len > 0) || out == NULL || outlen == NULL) {
        return XS_EINVAL;
    }
    size_t pad = 0;
    while (pad < 2 && pad < len && text[len - 1 - pad] == '=') {
        pad++;
    }
    if ((pad > 0 || !url) && len % 4 != 0) {
        return XS_EPARSE;
    }
    size_t dlen = len - pad;
    size_t rem = dlen % 4;
    if (rem == 1) {
        return XS_EPARSE;
    }
    size_t n = dlen / 4 * 3 + (rem == 0 ? 0 : rem - 1);
    uint8_t *buf = malloc(n + 1);
    if (buf == NULL) {
        return XS_ENOMEM;
    }
    size_t o = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < dlen; i++) {
        int v = b64_value((unsigned char)text[i], url);
        if (v < 0) {
            goto fail;
        }
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            buf[o++] = (uint8_t)(acc >> 16);
            buf[o++] = (uint8_t)(acc >> 8);
            buf[o++] = (uint8_t)acc;
            acc = 0;
        }
    }
    if (rem == 2) {
        if ((acc & 0x0f) != 0) {
            goto fail;
        }
        buf[o++] = (uint8_t)(acc >> 4);
    } else if (rem == 3) {
        if ((acc & 0x03) != 0) {
            goto fail;
        }
        buf[o++] = (uint8_t)(acc >> 10);
        buf[o++] = (uint8_t)(acc >> 2);
    }
    buf[o] = '\0';
    *out = buf;
    *outlen = o;
    return XS_OK;

fail:
    xs_crypto_wipe(buf, n + 1);
    free(buf);
    return XS_EPARSE;
}

xs_err xs_crypto_random_token(size_t nbytes, char **out)
{
    if (nbytes == 0 || out == NULL) {
        return XS_EINVAL;
    }
    uint8_t *raw = malloc(nbytes);
    if (raw == NULL) {
        return XS_ENOMEM;
    }
    xs_err err = xs_crypto_random(raw, nbytes);
    if (err == XS_OK) {
        err = xs_base64url_encode(raw, nbytes, out);
    }
    xs_crypto_wipe(raw, nbytes);
    free(raw);
    return err;
}

bool xs_crypto_equal(const void *a, const void *b, size_t n)
{
    if (n == 0) {
        return true;
    }
    if (a == NULL || b == NULL) {
        return false;
    }
    return CRYPTO_memcmp(a, b, n) == 0;
}

bool xs_crypto_equal_str(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        return false;
    }
    /* Digests of equal length, so neither where they differ nor their lengths show. */
    uint8_t da[XS_SHA256_LEN], db[XS_SHA256_LEN];
    xs_sha256(a, strlen(a), da);
    xs_sha256(b, strlen(b), db);
    return CRYPTO_memcmp(da, db, XS_SHA256_LEN) == 0;
}

void xs_crypto_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0) {
        OPENSSL_cleanse(p, n);
    }
}

void xs_sha256(const void *data, size_t n, uint8_t out[XS_SHA256_LEN])
{
    unsigned int len = 0;
    if (EVP_Digest(n > 0 ? data : empty, n, out, &len, EVP_sha256(), NULL) != 1 ||
        len != XS_SHA256_LEN) {
        /* This function cannot report failure, and a wrong digest would silently corrupt
         * checksums and PKCE challenges; OpenSSL only fails here when out of memory. */
        fputs("xs_sha256: OpenSSL could not compute SHA-256\n", stderr);
        abort();
    }
}

void xs_hex_encode(const void *data, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *b = data;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[2 * n] = '\0';
}

int xs_hex_digit(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

xs_err xs_hex_decode(const char *text, size_t len, uint8_t **out, size_t *outlen)
{
    if (text == NULL || out == NULL || outlen == NULL || len % 2 != 0) {
        return text == NULL || out == NULL || outlen == NULL ? XS_EINVAL : XS_EPARSE;
    }
    uint8_t *b = malloc(len / 2 + 1);
    if (b == NULL) {
        return XS_ENOMEM;
    }
    for (size_t i = 0; i < len / 2; i++) {
        int hi = xs_hex_digit((unsigned char)text[2 * i]),
            lo = xs_hex_digit((unsigned char)text[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(b);
            return XS_EPARSE;
        }
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    b[len / 2] = 0;
    *out = b;
    *outlen = len / 2;
    return XS_OK;
}

void xs_sha256_hex(const void *data, size_t n, char out[2 * XS_SHA256_LEN + 1])
{
    uint8_t md[XS_SHA256_LEN];
    xs_sha256(data, n, md);
    xs_hex_encode(md, sizeof(md), out);
}

xs_err xs_hmac_sha256(const void *key, size_t keylen, const void *data, size_t n,
                      uint8_t out[XS_SHA256_LEN])
{
    if ((key == NULL && keylen > 0) || (data == NULL && n > 0) || out == NULL) {
        return XS_EINVAL;
    }
    if (keylen > (size_t)INT_MAX) {
        return XS_ETOOBIG;
    }
    unsigned int len = 0;
    uint8_t md[EVP_MAX_MD_SIZE];
    if (HMAC(EVP_sha256(), keylen > 0 ? key : empty, (int)keylen, n > 0 ? data : empty, n, md,
             &len) == NULL ||
        len != XS_SHA256_LEN) {
        ERR_clear_error();
        return XS_ECRYPTO;
    }
    memcpy(out, md, XS_SHA256_LEN);
    return XS_OK;
}

xs_err xs_base64_encode(const void *data, size_t n, char **out)
{
    return b64_encode(data, n, b64_std, true, out);
}

xs_err xs_base64_decode(const char *text, size_t len, uint8_t **out, size_t *outlen)
{
    return b64_decode(text, len, false, out, outlen);
}

xs_err xs_base64url_encode(const void *data, size_t n, char **out)
{
    return b64_encode(data, n, b64_url, false, out);
}

xs_err xs_base64url_decode(const char *text, size_t len, uint8_t **out, size_t *outlen)
{
    return b64_decode(text, len, true, out, outlen);
}

void xs_aead_key_from_bytes(const uint8_t raw[XS_AEAD_KEY_LEN], xs_aead_key *out)
{
    if (raw == NULL || out == NULL) {
        return;
    }
    char hex[2 * XS_SHA256_LEN + 1];
    memmove(out->key, raw, XS_AEAD_KEY_LEN);
    xs_sha256_hex(out->key, XS_AEAD_KEY_LEN, hex);
    memcpy(out->id, hex, XS_AEAD_KEY_ID_MAX - 1);
    out->id[XS_AEAD_KEY_ID_MAX - 1] = '\0';
}

xs_err xs_aead_key_from_base64(const char *b64, xs_aead_key *out)
{
    if (b64 == NULL || out == NULL) {
        return XS_ECONFIG;
    }
    uint8_t *raw = NULL;
    size_t n = 0;
    if (xs_base64_decode(b64, strlen(b64), &raw, &n) != XS_OK) {
        return XS_ECONFIG;
    }
    xs_err err = XS_ECONFIG;
    if (n == XS_AEAD_KEY_LEN) {
        xs_aead_key_from_bytes(raw, out);
        err = XS_OK;
    }
    xs_crypto_wipe(raw, n);
    free(raw);
    return err;
}

xs_err xs_aead_seal(const xs_aead_key *key, const void *pt, size_t n, const void *aad,
                    size_t aadlen, uint8_t **out, size_t *outlen)
{
    if (key == NULL || (pt == NULL && n > 0) || (aad == NULL && aadlen > 0) || out == NULL ||
        outlen == NULL) {
        return XS_EINVAL;
    }
    if (n > (size_t)INT_MAX - XS_AEAD_NONCE_LEN - XS_AEAD_TAG_LEN || aadlen > (size_t)INT_MAX) {
        return XS_ETOOBIG;
    }
    size_t total = XS_AEAD_NONCE_LEN + n + XS_AEAD_TAG_LEN;
    xs_err err = XS_ECRYPTO;
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t *buf = malloc(total);
    if (buf == NULL) {
        return XS_ENOMEM;
    }
    uint8_t *nonce = buf;
    uint8_t *ct = buf + XS_AEAD_NONCE_LEN;
    uint8_t *tag = ct + n;
    int len = 0;
    err = xs_crypto_random(nonce, XS_AEAD_NONCE_LEN);
    if (err != XS_OK) {
        goto fail;
    }
    err = XS_ECRYPTO;
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        err = XS_ENOMEM;
        goto fail;
    }
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key->key, nonce) != 1) {
        goto fail;
    }
    if (aadlen > 0 && EVP_EncryptUpdate(ctx, NULL, &len, aad, (int)aadlen) != 1) {
        goto fail;
    }
    if (n > 0 && (EVP_EncryptUpdate(ctx, ct, &len, pt, (int)n) != 1 || (size_t)len != n)) {
        goto fail;
    }
    if (EVP_EncryptFinal_ex(ctx, ct + n, &len) != 1 || len != 0) {
        goto fail;
    }
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, XS_AEAD_TAG_LEN, tag) != 1) {
        goto fail;
    }
    EVP_CIPHER_CTX_free(ctx);
    *out = buf;
    *outlen = total;
    return XS_OK;

fail:
    ERR_clear_error();
    EVP_CIPHER_CTX_free(ctx);
    xs_crypto_wipe(buf, total);
    free(buf);
    return err;
}

xs_err xs_aead_open(const xs_aead_key *key, const uint8_t *in, size_t inlen, const void *aad,
                    size_t aadlen, uint8_t **pt, size_t *ptlen)
{
    if (key == NULL || (in == NULL && inlen > 0) || (aad == NULL && aadlen > 0) || pt == NULL ||
        ptlen == NULL) {
        return XS_EINVAL;
    }
    if (inlen < XS_AEAD_NONCE_LEN + XS_AEAD_TAG_LEN) {
        return XS_ECRYPTO;
    }
    if (inlen > (size_t)INT_MAX || aadlen > (size_t)INT_MAX) {
        return XS_ETOOBIG;
    }
    size_t n = inlen - XS_AEAD_NONCE_LEN - XS_AEAD_TAG_LEN;
    const uint8_t *nonce = in;
    const uint8_t *ct = in + XS_AEAD_NONCE_LEN;
    uint8_t tag[XS_AEAD_TAG_LEN];
    memcpy(tag, ct + n, XS_AEAD_TAG_LEN);
    xs_err err = XS_ECRYPTO;
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t *buf = malloc(n + 1);
    if (buf == NULL) {
        return XS_ENOMEM;
    }
    int len = 0;
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        err = XS_ENOMEM;
        goto fail;
    }
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key->key, nonce) != 1) {
        goto fail;
    }
    if (aadlen > 0 && EVP_DecryptUpdate(ctx, NULL, &len, aad, (int)aadlen) != 1) {
        goto fail;
    }
    if (n > 0 && (EVP_DecryptUpdate(ctx, buf, &len, ct, (int)n) != 1 || (size_t)len != n)) {
        goto fail;
    }
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, XS_AEAD_TAG_LEN, tag) != 1) {
        goto fail;
    }
    /* The tag is checked here; until it passes, the plaintext in buf must not escape. */
    if (EVP_DecryptFinal_ex(ctx, buf + n, &len) != 1 || len != 0) {
        goto fail;
    }
    EVP_CIPHER_CTX_free(ctx);
    buf[n] = '\0';
    *pt = buf;
    *ptlen = n;
    return XS_OK;

fail:
    ERR_clear_error();
    EVP_CIPHER_CTX_free(ctx);
    xs_crypto_wipe(buf, n + 1);
    free(buf);
    return err;
}
