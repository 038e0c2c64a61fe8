/*
 * crypto.h: the cryptography xero-sync needs, over OpenSSL.
 *
 * AES-256-GCM sealing of secrets at rest (tokens), HMAC-SHA256 (webhook signatures),
 * SHA-256 (checksums, PKCE), base64 and base64url, constant-time comparison and random
 * bytes. Buffers returned through `uint8_t **` or `char **` are new, malloc'ed, and the
 * caller frees them with free(); secrets are wiped with xs_crypto_wipe before freeing.
 */
#ifndef XS_CRYPTO_H
#define XS_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xs/err.h"

#define XS_SHA256_LEN      32
#define XS_AEAD_KEY_LEN    32
#define XS_AEAD_NONCE_LEN  12
#define XS_AEAD_TAG_LEN    16
#define XS_AEAD_KEY_ID_MAX 17 /* 16 hex characters and a NUL */

/* xs_crypto_random fills buf with n cryptographically strong random bytes. */
xs_err xs_crypto_random(void *buf, size_t n);

/* xs_crypto_random_token writes a random base64url string of `nbytes` bytes of entropy into
 * *out (new). Used for OAuth state, PKCE verifiers and request ids. nbytes 0 is XS_EINVAL. */
xs_err xs_crypto_random_token(size_t nbytes, char **out);

/* xs_crypto_equal compares n bytes in time independent of their contents. */
bool xs_crypto_equal(const void *a, const void *b, size_t n);

/* xs_crypto_equal_str compares two NUL-terminated strings without leaking, through timing,
 * where they first differ or whether their lengths differ (it compares their SHA-256 sums).
 * NULL equals nothing. */
bool xs_crypto_equal_str(const char *a, const char *b);

/* xs_crypto_wipe zeroes n bytes at p in a way the compiler keeps. p may be NULL. */
void xs_crypto_wipe(void *p, size_t n);

/* xs_sha256 hashes n bytes into out. data may be NULL when n is 0. It cannot fail short of
 * OpenSSL being unable to allocate; then it aborts rather than return a wrong digest. */
void xs_sha256(const void *data, size_t n, uint8_t out[XS_SHA256_LEN]);

/* xs_sha256_hex writes the lowercase hex SHA-256 of data (64 characters + NUL) into out. */
void xs_sha256_hex(const void *data, size_t n, char out[2 * XS_SHA256_LEN + 1]);

/* xs_hex_encode writes the lowercase hex of n bytes into out (room for 2n + 1). */
void xs_hex_encode(const void *data, size_t n, char *out);

/* xs_hex_digit returns the value of hex digit c (either case), or -1. */
int xs_hex_digit(int c);

/* xs_hex_decode reads len hex digits (either case; len even) into *out (new) and *outlen.
 * XS_EPARSE for an odd length or a character that is not a hex digit. */
xs_err xs_hex_decode(const char *text, size_t len, uint8_t **out, size_t *outlen);

/* xs_hmac_sha256 computes HMAC-SHA256(key, data) into out. */
xs_err xs_hmac_sha256(const void *key, size_t keylen, const void *data, size_t n,
                      uint8_t out[XS_SHA256_LEN]);

/* xs_base64_encode writes standard base64 with padding of data into *out (new, NUL
 * terminated). */
xs_err xs_base64_encode(const void *data, size_t n, char **out);

/* xs_base64_decode reads len characters of standard base64 (padding required, no
 * whitespace, no other characters) into *out (new) and *outlen. Unused bits in the last
 * character must be zero. *out is followed by a NUL not counted in *outlen. Malformed text
 * is XS_EPARSE. */
xs_err xs_base64_decode(const char *text, size_t len, uint8_t **out, size_t *outlen);

/* xs_base64url_encode writes base64url without padding (RFC 4648 section 5, as PKCE wants)
 * into *out (new). */
xs_err xs_base64url_encode(const void *data, size_t n, char **out);

/* xs_base64url_decode reads base64url with or without padding into *out (new), with the
 * rules of xs_base64_decode otherwise. */
xs_err xs_base64url_decode(const char *text, size_t len, uint8_t **out, size_t *outlen);

/* An AES-256-GCM key and its id. The id is the first 16 hex characters of SHA-256 of the
 * key, so it names the key without revealing it and needs no separate configuration. */
typedef struct xs_aead_key {
    uint8_t key[XS_AEAD_KEY_LEN];
    char id[XS_AEAD_KEY_ID_MAX];
} xs_aead_key;

/* xs_aead_key_from_base64 reads a key given as standard base64 of exactly 32 bytes. On any
 * other input it returns XS_ECONFIG. */
xs_err xs_aead_key_from_base64(const char *b64, xs_aead_key *out);

/* xs_aead_key_from_bytes makes a key from 32 raw bytes. */
void xs_aead_key_from_bytes(const uint8_t raw[XS_AEAD_KEY_LEN], xs_aead_key *out);

/* xs_aead_seal encrypts and authenticates n bytes of plaintext with a fresh random nonce,
 * binding aad (additional authenticated data, not stored; may be NULL with aadlen 0).
 * *out (new) is nonce || ciphertext || tag, *outlen is n + 28. */
xs_err xs_aead_seal(const xs_aead_key *key, const void *pt, size_t n, const void *aad,
                    size_t aadlen, uint8_t **out, size_t *outlen);

/* xs_aead_open reverses xs_aead_seal. A wrong key, wrong aad, truncated or tampered input
 * gives XS_ECRYPTO and writes nothing. *pt (new) is NUL terminated for convenience (the
 * NUL is not counted in *ptlen). */
xs_err xs_aead_open(const xs_aead_key *key, const uint8_t *in, size_t inlen, const void *aad,
                    size_t aadlen, uint8_t **pt, size_t *ptlen);

#endif
