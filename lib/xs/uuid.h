/*
 * uuid.h: UUIDs, the one module that makes, reads and writes them.
 *
 * An xs_uuid is 16 bytes. Its text is the canonical 8-4-4-4-12 hex form: written in lowercase,
 * read in either case. New ids are version 4 (random, from OpenSSL's RAND_bytes through
 * xs_crypto_random); a caller with its own reproducible randomness (the simulator's seeded
 * generator) makes a version-4 id from 16 bytes of it with xs_uuid_from_bytes. Owns nothing; no
 * allocation, no state.
 */
#ifndef XS_UUID_H
#define XS_UUID_H

#include <stdbool.h>
#include <stdint.h>

#include "xs/err.h"

/* The text form's size, including the terminating NUL: 36 characters + 1. */
#define XS_UUID_STR 37

typedef struct xs_uuid {
    uint8_t b[16];
} xs_uuid;

/* xs_uuid_random makes a random version-4 id into *out (xs_crypto_random: OpenSSL's
 * RAND_bytes); on failure its error, and *out unchanged. */
xs_err xs_uuid_random(xs_uuid *out);

/* xs_uuid_random_text makes a random version-4 id and writes its text into out. */
xs_err xs_uuid_random_text(char out[XS_UUID_STR]);

/* xs_uuid_from_bytes makes a version-4 id from 16 bytes of the caller's randomness: the
 * version and variant bits are set, the other 122 bits are the bytes as given. */
void xs_uuid_from_bytes(const uint8_t bytes[16], xs_uuid *out);

/* xs_uuid_format writes the lowercase 36-character form and a NUL into out. */
void xs_uuid_format(const xs_uuid *u, char out[XS_UUID_STR]);

/* xs_uuid_parse reads the 36-character canonical form (hex digits of either case) into *out
 * (may be NULL: only check); false, *out unchanged, when s is NULL or not exactly that form. */
bool xs_uuid_parse(const char *s, xs_uuid *out);

/* xs_uuid_valid tells whether s is a UUID in the canonical 8-4-4-4-12 hex form (either case;
 * NULL is not). */
bool xs_uuid_valid(const char *s);

/* xs_uuid_is_nil tells whether u is the nil id (all zeros). */
bool xs_uuid_is_nil(const xs_uuid *u);

/* xs_uuid_eq tells whether a and b are the same id. */
bool xs_uuid_eq(const xs_uuid *a, const xs_uuid *b);

#endif
