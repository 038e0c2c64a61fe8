/* crypto_test.c: known-answer vectors and failure paths of crypto.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "xs/crypto.h"

/* hex_of writes the lowercase hex of n bytes into out (2n + 1 bytes). */
static void hex_of(const uint8_t *p, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* unhex reads the hex string s into out, which holds strlen(s) / 2 bytes. */
static void unhex(const char *s, uint8_t *out)
{
    size_t n = strlen(s);
    assert_int_equal(n % 2, 0);
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v = 0;
        for (int j = 0; j < 2; j++) {
            char c = s[2 * i + (size_t)j];
            v <<= 4;
            if (c >= '0' && c <= '9') {
                v |= (unsigned)(c - '0');
            } else if (c >= 'a' && c <= 'f') {
                v |= (unsigned)(c - 'a' + 10);
            } else {
                fail_msg("bad hex digit %c", c);
            }
        }
        out[i] = (uint8_t)v;
    }
}

/* next_rand is a deterministic generator (splitmix64) for test data. */
static uint64_t next_rand(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static void fill_rand(uint64_t *state, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)next_rand(state);
    }
}

static void test_sha256_vectors(void **state)
{
    (void)state;
    char hex[2 * XS_SHA256_LEN + 1];
    uint8_t md[XS_SHA256_LEN];
    char mdhex[2 * XS_SHA256_LEN + 1];

    xs_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    xs_sha256("abc", 3, md);
    hex_of(md, sizeof(md), mdhex);
    assert_string_equal(mdhex, hex);

    xs_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    xs_sha256_hex(NULL, 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    xs_sha256_hex(two, strlen(two), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

    /* Only n bytes are hashed, not up to a NUL. */
    xs_sha256_hex("abcdef", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_hmac_vectors(void **state)
{
    (void)state;
    uint8_t md[XS_SHA256_LEN];
    char hex[2 * XS_SHA256_LEN + 1];

    /* RFC 4231 test case 1. */
    uint8_t k1[20];
    memset(k1, 0x0b, sizeof(k1));
    assert_int_equal(xs_hmac_sha256(k1, sizeof(k1), "Hi There", 8, md), XS_OK);
    hex_of(md, sizeof(md), hex);
    assert_string_equal(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

    /* RFC 4231 test case 2. */
    const char *d2 = "what do ya want for nothing?";
    assert_int_equal(xs_hmac_sha256("Jefe", 4, d2, strlen(d2), md), XS_OK);
    hex_of(md, sizeof(md), hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

    /* RFC 4231 test case 6: a key longer than the block is hashed first. */
    uint8_t k6[131];
    memset(k6, 0xaa, sizeof(k6));
    const char *d6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    assert_int_equal(xs_hmac_sha256(k6, sizeof(k6), d6, strlen(d6), md), XS_OK);
    hex_of(md, sizeof(md), hex);
    assert_string_equal(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");

    /* Empty key and empty message, with and without pointers. */
    assert_int_equal(xs_hmac_sha256(NULL, 0, NULL, 0, md), XS_OK);
    hex_of(md, sizeof(md), hex);
    assert_string_equal(hex, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
    assert_int_equal(xs_hmac_sha256("", 0, "", 0, md), XS_OK);
    hex_of(md, sizeof(md), hex);
    assert_string_equal(hex, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

static void test_hmac_errors(void **state)
{
    (void)state;
    uint8_t md[XS_SHA256_LEN];
    memset(md, 0x5a, sizeof(md));
    assert_int_equal(xs_hmac_sha256(NULL, 4, "x", 1, md), XS_EINVAL);
    assert_int_equal(xs_hmac_sha256("Jefe", 4, NULL, 1, md), XS_EINVAL);
    assert_int_equal(xs_hmac_sha256("Jefe", 4, "x", 1, NULL), XS_EINVAL);
    /* Nothing was written on failure. */
    for (size_t i = 0; i < sizeof(md); i++) {
        assert_int_equal(md[i], 0x5a);
    }
}

struct b64_vector {
    const char *plain;
    const char *std;
    const char *url;
};

/* RFC 4648 section 10, with the unpadded base64url forms. */
static const struct b64_vector rfc4648[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

static void test_base64_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
        const struct b64_vector *v = &rfc4648[i];
        size_t n = strlen(v->plain);
        char *s = NULL;
        uint8_t *d = NULL;
        size_t dn = 99;

        assert_int_equal(xs_base64_encode(v->plain, n, &s), XS_OK);
        assert_string_equal(s, v->std);
        free(s);
        assert_int_equal(xs_base64url_encode(v->plain, n, &s), XS_OK);
        assert_string_equal(s, v->url);
        free(s);

        assert_int_equal(xs_base64_decode(v->std, strlen(v->std), &d, &dn), XS_OK);
        assert_int_equal(dn, n);
        assert_memory_equal(d, v->plain, n);
        assert_int_equal(d[n], 0); /* NUL after the data */
        free(d);
        /* base64url accepts the padded and the unpadded form. */
        assert_int_equal(xs_base64url_decode(v->std, strlen(v->std), &d, &dn), XS_OK);
        assert_int_equal(dn, n);
        assert_memory_equal(d, v->plain, n);
        free(d);
        assert_int_equal(xs_base64url_decode(v->url, strlen(v->url), &d, &dn), XS_OK);
        assert_int_equal(dn, n);
        assert_memory_equal(d, v->plain, n);
        free(d);
    }
}

static void test_base64_alphabets(void **state)
{
    (void)state;
    const uint8_t hi[] = {0xfb, 0xff, 0xbf};
    char *s = NULL;
    assert_int_equal(xs_base64_encode(hi, 3, &s), XS_OK);
    assert_string_equal(s, "+/+/");
    free(s);
    assert_int_equal(xs_base64url_encode(hi, 3, &s), XS_OK);
    assert_string_equal(s, "-_-_");
    free(s);
    assert_int_equal(xs_base64url_encode(hi, 2, &s), XS_OK);
    assert_string_equal(s, "-_8");
    free(s);

    uint8_t *d = NULL;
    size_t dn = 0;
    assert_int_equal(xs_base64_decode("+/+/", 4, &d, &dn), XS_OK);
    assert_int_equal(dn, 3);
    assert_memory_equal(d, hi, 3);
    free(d);
    assert_int_equal(xs_base64url_decode("-_-_", 4, &d, &dn), XS_OK);
    assert_int_equal(dn, 3);
    assert_memory_equal(d, hi, 3);
    free(d);
    /* Each decoder refuses the other's two special characters. */
    assert_int_equal(xs_base64_decode("-_-_", 4, &d, &dn), XS_EPARSE);
    assert_int_equal(xs_base64url_decode("+/+/", 4, &d, &dn), XS_EPARSE);
    assert_int_equal(xs_base64_decode("ab-c", 4, &d, &dn), XS_EPARSE);
    assert_int_equal(xs_base64url_decode("ab/c", 4, &d, &dn), XS_EPARSE);
}

static void test_base64_decode_errors(void **state)
{
    (void)state;
    static const char *bad_std[] = {
        "Z",        "Zg",       "Zg=",      "Zm9",      "Z===",       "====",     "=",
        "==",       "Zg==Zg==", "Zm=v",     "Zm9v\n",   " Zm9v",      "Zm9v ",    "Zm9\tv",
        "Zm9v====", "Zm9v=",    "Zg===",    "Zh==",     "Zm9=",       "Zm8=Zm8=", "Zm9vY",
        "Zm9v\r\n", "Zm.v",     "Zm9vYg=A", "Zm9vY===", "\xc3\xa9zg", "Zg\x80=",  "AB=C",
    };
    for (size_t i = 0; i < sizeof(bad_std) / sizeof(bad_std[0]); i++) {
        uint8_t *d = (uint8_t *)"untouched";
        size_t dn = 77;
        xs_err err = xs_base64_decode(bad_std[i], strlen(bad_std[i]), &d, &dn);
        if (err != XS_EPARSE) {
            fail_msg("base64 \"%s\" gave %d, want XS_EPARSE", bad_std[i], err);
        }
        assert_string_equal((const char *)d, "untouched");
        assert_int_equal(dn, 77);
    }
    static const char *bad_url[] = {
        "Z",    "Zg=",   "Zg===",  "Zm9vY", "Zh",     "Zm9",  "Zh==",
        "Zm9=", "Zm9v=", "Zg==Zg", "+/+/",  "Zm9v\n", "Z=g=", "=Zg=",
    };
    for (size_t i = 0; i < sizeof(bad_url) / sizeof(bad_url[0]); i++) {
        uint8_t *d = NULL;
        size_t dn = 77;
        xs_err err = xs_base64url_decode(bad_url[i], strlen(bad_url[i]), &d, &dn);
        if (err != XS_EPARSE) {
            fail_msg("base64url \"%s\" gave %d, want XS_EPARSE", bad_url[i], err);
        }
        assert_null(d);
        assert_int_equal(dn, 77);
    }

    /* An embedded NUL inside the given length is a bad character, not an end. */
    uint8_t *d = NULL;
    size_t dn = 0;
    assert_int_equal(xs_base64_decode("Zg\0=", 4, &d, &dn), XS_EPARSE);
    /* Only len characters are read. */
    assert_int_equal(xs_base64_decode("Zm9v!!!!", 4, &d, &dn), XS_OK);
    assert_int_equal(dn, 3);
    assert_memory_equal(d, "foo", 3);
    free(d);
    d = NULL;

    /* Argument errors. */
    assert_int_equal(xs_base64_decode(NULL, 4, &d, &dn), XS_EINVAL);
    assert_int_equal(xs_base64_decode("Zm9v", 4, NULL, &dn), XS_EINVAL);
    assert_int_equal(xs_base64_decode("Zm9v", 4, &d, NULL), XS_EINVAL);
    assert_int_equal(xs_base64url_decode(NULL, 1, &d, &dn), XS_EINVAL);
    assert_int_equal(xs_base64_decode(NULL, 0, &d, &dn), XS_OK);
    assert_int_equal(dn, 0);
    free(d);

    char *s = NULL;
    assert_int_equal(xs_base64_encode(NULL, 1, &s), XS_EINVAL);
    assert_int_equal(xs_base64_encode("x", 1, NULL), XS_EINVAL);
    assert_int_equal(xs_base64url_encode(NULL, 1, &s), XS_EINVAL);
    assert_null(s);
    assert_int_equal(xs_base64url_encode(NULL, 0, &s), XS_OK);
    assert_string_equal(s, "");
    free(s);
}

static void test_base64_round_trip(void **state)
{
    (void)state;
    uint64_t seed = 42;
    uint8_t buf[300];
    for (size_t n = 0; n <= sizeof(buf); n++) {
        fill_rand(&seed, buf, n);
        char *s = NULL;
        uint8_t *d = NULL;
        size_t dn = 0;

        assert_int_equal(xs_base64_encode(buf, n, &s), XS_OK);
        assert_int_equal(strlen(s), (n + 2) / 3 * 4);
        assert_int_equal(xs_base64_decode(s, strlen(s), &d, &dn), XS_OK);
        assert_int_equal(dn, n);
        assert_memory_equal(d, buf, n);
        free(d);
        free(s);

        assert_int_equal(xs_base64url_encode(buf, n, &s), XS_OK);
        assert_int_equal(strlen(s), (4 * n + 2) / 3);
        assert_null(strchr(s, '='));
        assert_null(strchr(s, '+'));
        assert_null(strchr(s, '/'));
        assert_int_equal(xs_base64url_decode(s, strlen(s), &d, &dn), XS_OK);
        assert_int_equal(dn, n);
        assert_memory_equal(d, buf, n);
        free(d);
        free(s);
    }
}

static void test_pkce_rfc7636(void **state)
{
    (void)state;
    /* RFC 7636 appendix B: the verifier is base64url of these 32 octets, and the S256
     * challenge is base64url of its SHA-256. */
    static const uint8_t octets[32] = {116, 24,  223, 180, 151, 153, 224, 37,  79,  250, 96,
                                       125, 216, 173, 187, 186, 22,  212, 37,  77,  105, 214,
                                       191, 240, 91,  88,  5,   88,  83,  132, 141, 121};
    const char *verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    char *s = NULL;
    assert_int_equal(xs_base64url_encode(octets, sizeof(octets), &s), XS_OK);
    assert_string_equal(s, verifier);
    free(s);

    uint8_t md[XS_SHA256_LEN];
    xs_sha256(verifier, strlen(verifier), md);
    assert_int_equal(xs_base64url_encode(md, sizeof(md), &s), XS_OK);
    assert_string_equal(s, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    free(s);
}

static void test_random(void **state)
{
    (void)state;
    assert_int_equal(xs_crypto_random(NULL, 0), XS_OK);
    assert_int_equal(xs_crypto_random(NULL, 1), XS_EINVAL);

    uint8_t a[1024];
    uint8_t b[1024];
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    assert_int_equal(xs_crypto_random(a, sizeof(a)), XS_OK);
    assert_int_equal(xs_crypto_random(b, sizeof(b)), XS_OK);
    assert_memory_not_equal(a, b, sizeof(a));
    /* Every byte value is about equally likely: 1024 bytes with no zero byte at all, or
     * nothing but zeros, would mean the buffer was not filled. */
    size_t zeros = 0;
    for (size_t i = 0; i < sizeof(a); i++) {
        zeros += a[i] == 0;
    }
    assert_true(zeros < 64);
}

static int is_url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static void test_random_token(void **state)
{
    (void)state;
    char *t = NULL;
    assert_int_equal(xs_crypto_random_token(0, &t), XS_EINVAL);
    assert_null(t);
    assert_int_equal(xs_crypto_random_token(16, NULL), XS_EINVAL);

    for (size_t n = 1; n <= 96; n++) {
        assert_int_equal(xs_crypto_random_token(n, &t), XS_OK);
        size_t len = strlen(t);
        assert_int_equal(len, (4 * n + 2) / 3);
        for (size_t i = 0; i < len; i++) {
            if (!is_url_char(t[i])) {
                fail_msg("token %s has character %c", t, t[i]);
            }
        }
        uint8_t *d = NULL;
        size_t dn = 0;
        assert_int_equal(xs_base64url_decode(t, len, &d, &dn), XS_OK);
        assert_int_equal(dn, n);
        free(d);
        free(t);
    }

    /* A PKCE verifier from 32 bytes has 43 characters, the RFC 7636 minimum; two differ. */
    char *u = NULL;
    assert_int_equal(xs_crypto_random_token(32, &t), XS_OK);
    assert_int_equal(xs_crypto_random_token(32, &u), XS_OK);
    assert_int_equal(strlen(t), 43);
    assert_string_not_equal(t, u);
    free(t);
    free(u);
}

static void test_equal(void **state)
{
    (void)state;
    uint8_t a[64];
    uint8_t b[64];
    for (size_t i = 0; i < sizeof(a); i++) {
        a[i] = b[i] = (uint8_t)(i * 7);
    }
    assert_true(xs_crypto_equal(a, b, sizeof(a)));
    assert_true(xs_crypto_equal(a, a, sizeof(a)));
    assert_true(xs_crypto_equal(a, b, 0));
    assert_true(xs_crypto_equal(NULL, NULL, 0));
    assert_false(xs_crypto_equal(NULL, b, 1));
    assert_false(xs_crypto_equal(a, NULL, 1));
    /* A difference in any single bit of any byte is seen. */
    for (size_t i = 0; i < sizeof(a); i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1u << bit);
            assert_false(xs_crypto_equal(a, b, sizeof(a)));
            /* Only the first n bytes are compared. */
            assert_true(xs_crypto_equal(a, b, i));
            b[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_true(xs_crypto_equal(a, b, sizeof(a)));
}

static void test_equal_str(void **state)
{
    (void)state;
    assert_true(xs_crypto_equal_str("", ""));
    assert_true(xs_crypto_equal_str("sig=abc", "sig=abc"));
    assert_false(xs_crypto_equal_str("sig=abc", "sig=abd"));
    assert_false(xs_crypto_equal_str("xig=abc", "sig=abc"));
    assert_false(xs_crypto_equal_str("abc", "abcd"));
    assert_false(xs_crypto_equal_str("abcd", "abc"));
    assert_false(xs_crypto_equal_str("", "a"));
    assert_false(xs_crypto_equal_str(NULL, ""));
    assert_false(xs_crypto_equal_str("", NULL));
    assert_false(xs_crypto_equal_str(NULL, NULL));
}

static void test_wipe(void **state)
{
    (void)state;
    uint8_t buf[40];
    memset(buf, 0xee, sizeof(buf));
    xs_crypto_wipe(buf + 4, 32);
    for (size_t i = 0; i < sizeof(buf); i++) {
        assert_int_equal(buf[i], i < 4 || i >= 36 ? 0xee : 0);
    }
    xs_crypto_wipe(NULL, 10);
    xs_crypto_wipe(buf, 0);
    assert_int_equal(buf[0], 0xee);
}

static void test_aead_key_from_base64(void **state)
{
    (void)state;
    xs_aead_key k;
    assert_int_equal(xs_aead_key_from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", &k),
                     XS_OK);
    uint8_t zero[32] = {0};
    assert_memory_equal(k.key, zero, 32);
    assert_string_equal(k.id, "66687aadf862bd77");

    assert_int_equal(xs_aead_key_from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", &k),
                     XS_OK);
    for (int i = 0; i < 32; i++) {
        assert_int_equal(k.key[i], i);
    }
    assert_string_equal(k.id, "630dcd2966c43366");

    static const char *bad[] = {
        "",
        "AAAA",
        /* 31 bytes */
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
        /* 33 bytes */
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        /* 48 bytes */
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        /* padding missing */
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        /* non-canonical trailing bits */
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=",
        /* whitespace */
        " AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        /* URL-safe alphabet */
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh-=",
        /* hex, not base64 */
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&k, 0x33, sizeof(k));
        xs_err err = xs_aead_key_from_base64(bad[i], &k);
        if (err != XS_ECONFIG) {
            fail_msg("key \"%s\" gave %d, want XS_ECONFIG", bad[i], err);
        }
        assert_int_equal(k.key[0], 0x33);
    }
    assert_int_equal(xs_aead_key_from_base64(NULL, &k), XS_ECONFIG);
    assert_int_equal(xs_aead_key_from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", NULL),
                     XS_ECONFIG);
}

static void test_aead_key_from_bytes(void **state)
{
    (void)state;
    uint8_t raw[32];
    for (int i = 0; i < 32; i++) {
        raw[i] = (uint8_t)i;
    }
    xs_aead_key k;
    xs_aead_key_from_bytes(raw, &k);
    assert_memory_equal(k.key, raw, 32);
    assert_string_equal(k.id, "630dcd2966c43366");
    assert_int_equal(strlen(k.id), XS_AEAD_KEY_ID_MAX - 1);
    /* The id is the prefix of the key's SHA-256. */
    char hex[65];
    xs_sha256_hex(raw, 32, hex);
    assert_memory_equal(k.id, hex, 16);
}

/* key_seq makes the key whose bytes are 0, 1, ..., 31. */
static void key_seq(xs_aead_key *k)
{
    uint8_t raw[32];
    for (int i = 0; i < 32; i++) {
        raw[i] = (uint8_t)i;
    }
    xs_aead_key_from_bytes(raw, k);
}

static void test_aead_open_known_answer(void **state)
{
    (void)state;
    /* AES-256-GCM, all-zero key and nonce (McGrew and Viega test cases 13 and 14), laid out
     * as nonce || ciphertext || tag. */
    xs_aead_key zk;
    uint8_t zero[32] = {0};
    xs_aead_key_from_bytes(zero, &zk);

    uint8_t in13[28];
    memset(in13, 0, 12);
    unhex("530f8afbc74536b9a963b4f1c4cb738b", in13 + 12);
    uint8_t *pt = NULL;
    size_t ptlen = 99;
    assert_int_equal(xs_aead_open(&zk, in13, sizeof(in13), NULL, 0, &pt, &ptlen), XS_OK);
    assert_int_equal(ptlen, 0);
    assert_int_equal(pt[0], 0);
    free(pt);

    uint8_t in14[44];
    memset(in14, 0, 12);
    unhex("cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919", in14 + 12);
    assert_int_equal(xs_aead_open(&zk, in14, sizeof(in14), NULL, 0, &pt, &ptlen), XS_OK);
    assert_int_equal(ptlen, 16);
    assert_memory_equal(pt, zero, 16);
    free(pt);

    /* With aad: key 00..1f, nonce 64..6f, checked against an independent implementation. */
    xs_aead_key k;
    key_seq(&k);
    uint8_t in[12 + 18 + 16];
    for (int i = 0; i < 12; i++) {
        in[i] = (uint8_t)(100 + i);
    }
    unhex("307eac09599b33f84c072c80fa11059627ac24e5a81e01962b7053951dd90207c984", in + 12);
    assert_int_equal(xs_aead_open(&k, in, sizeof(in), "tenant-1", 8, &pt, &ptlen), XS_OK);
    assert_int_equal(ptlen, 18);
    assert_string_equal((char *)pt, "xero refresh token");
    free(pt);
    pt = NULL;
    assert_int_equal(xs_aead_open(&k, in, sizeof(in), "tenant-2", 8, &pt, &ptlen), XS_ECRYPTO);
    assert_int_equal(xs_aead_open(&k, in, sizeof(in), NULL, 0, &pt, &ptlen), XS_ECRYPTO);
    assert_null(pt);
}

static void test_aead_round_trip(void **state)
{
    (void)state;
    xs_aead_key k;
    key_seq(&k);
    uint64_t seed = 7;
    uint8_t msg[200];
    for (size_t n = 0; n <= sizeof(msg); n += (n < 40 ? 1 : 23)) {
        fill_rand(&seed, msg, n);
        uint8_t *sealed = NULL;
        size_t slen = 0;
        assert_int_equal(xs_aead_seal(&k, msg, n, "aad", 3, &sealed, &slen), XS_OK);
        assert_int_equal(slen, n + XS_AEAD_NONCE_LEN + XS_AEAD_TAG_LEN);
        if (n >= 16) {
            assert_memory_not_equal(sealed + XS_AEAD_NONCE_LEN, msg, n);
        }
        uint8_t *pt = NULL;
        size_t ptlen = 0;
        assert_int_equal(xs_aead_open(&k, sealed, slen, "aad", 3, &pt, &ptlen), XS_OK);
        assert_int_equal(ptlen, n);
        assert_memory_equal(pt, msg, n);
        assert_int_equal(pt[n], 0);
        free(pt);
        free(sealed);
    }

    /* No aad at all, and an empty message. */
    uint8_t *sealed = NULL;
    size_t slen = 0;
    assert_int_equal(xs_aead_seal(&k, NULL, 0, NULL, 0, &sealed, &slen), XS_OK);
    assert_int_equal(slen, 28);
    uint8_t *pt = NULL;
    size_t ptlen = 5;
    assert_int_equal(xs_aead_open(&k, sealed, slen, NULL, 0, &pt, &ptlen), XS_OK);
    assert_int_equal(ptlen, 0);
    free(pt);
    free(sealed);

    /* Two seals of the same message differ (fresh nonces) and both open. */
    uint8_t *s1 = NULL;
    uint8_t *s2 = NULL;
    size_t l1 = 0;
    size_t l2 = 0;
    assert_int_equal(xs_aead_seal(&k, "secret", 6, NULL, 0, &s1, &l1), XS_OK);
    assert_int_equal(xs_aead_seal(&k, "secret", 6, NULL, 0, &s2, &l2), XS_OK);
    assert_int_equal(l1, l2);
    assert_memory_not_equal(s1, s2, XS_AEAD_NONCE_LEN);
    assert_memory_not_equal(s1, s2, l1);
    assert_int_equal(xs_aead_open(&k, s2, l2, NULL, 0, &pt, &ptlen), XS_OK);
    assert_string_equal((char *)pt, "secret");
    free(pt);
    free(s1);
    free(s2);
}

static void test_aead_wrong_key_and_aad(void **state)
{
    (void)state;
    xs_aead_key k;
    xs_aead_key other;
    key_seq(&k);
    other = k;
    other.key[31] ^= 1;
    uint8_t *sealed = NULL;
    size_t slen = 0;
    assert_int_equal(xs_aead_seal(&k, "token-value", 11, "tenant-a", 8, &sealed, &slen), XS_OK);

    uint8_t *pt = (uint8_t *)"sentinel";
    size_t ptlen = 1234;
    assert_int_equal(xs_aead_open(&other, sealed, slen, "tenant-a", 8, &pt, &ptlen), XS_ECRYPTO);
    assert_int_equal(xs_aead_open(&k, sealed, slen, "tenant-b", 8, &pt, &ptlen), XS_ECRYPTO);
    assert_int_equal(xs_aead_open(&k, sealed, slen, "tenant-a", 7, &pt, &ptlen), XS_ECRYPTO);
    assert_int_equal(xs_aead_open(&k, sealed, slen, NULL, 0, &pt, &ptlen), XS_ECRYPTO);
    assert_string_equal((char *)pt, "sentinel");
    assert_int_equal(ptlen, 1234);

    assert_int_equal(xs_aead_open(&k, sealed, slen, "tenant-a", 8, &pt, &ptlen), XS_OK);
    assert_int_equal(ptlen, 11);
    free(pt);
    free(sealed);
}

static void test_aead_tamper(void **state)
{
    (void)state;
    xs_aead_key k;
    key_seq(&k);
    uint8_t *sealed = NULL;
    size_t slen = 0;
    const char *msg = "a refresh token of some length";
    assert_int_equal(xs_aead_seal(&k, msg, strlen(msg), "row 17", 6, &sealed, &slen), XS_OK);

    /* Every bit flip of every byte (nonce, ciphertext and tag alike) is refused. */
    for (size_t i = 0; i < slen; i++) {
        for (int bit = 0; bit < 8; bit++) {
            sealed[i] ^= (uint8_t)(1u << bit);
            uint8_t *pt = NULL;
            size_t ptlen = 77;
            xs_err err = xs_aead_open(&k, sealed, slen, "row 17", 6, &pt, &ptlen);
            if (err != XS_ECRYPTO) {
                fail_msg("flip of bit %d in byte %zu gave %d", bit, i, err);
            }
            assert_null(pt);
            assert_int_equal(ptlen, 77);
            sealed[i] ^= (uint8_t)(1u << bit);
        }
    }

    /* Every truncation is refused, whether the tag or the nonce is cut. */
    for (size_t len = 0; len < slen; len++) {
        uint8_t *pt = NULL;
        size_t ptlen = 77;
        assert_int_equal(xs_aead_open(&k, sealed, len, "row 17", 6, &pt, &ptlen), XS_ECRYPTO);
        assert_int_equal(xs_aead_open(&k, sealed + (slen - len), len, "row 17", 6, &pt, &ptlen),
                         XS_ECRYPTO);
        assert_null(pt);
    }

    /* An extra byte is refused. */
    uint8_t *longer = malloc(slen + 1);
    assert_non_null(longer);
    memcpy(longer, sealed, slen);
    longer[slen] = 0;
    uint8_t *pt = NULL;
    size_t ptlen = 0;
    assert_int_equal(xs_aead_open(&k, longer, slen + 1, "row 17", 6, &pt, &ptlen), XS_ECRYPTO);
    free(longer);

    /* Untouched, it still opens. */
    assert_int_equal(xs_aead_open(&k, sealed, slen, "row 17", 6, &pt, &ptlen), XS_OK);
    assert_string_equal((char *)pt, msg);
    free(pt);
    free(sealed);
}

static void test_aead_argument_errors(void **state)
{
    (void)state;
    xs_aead_key k;
    key_seq(&k);
    uint8_t *out = NULL;
    size_t outlen = 0;
    assert_int_equal(xs_aead_seal(NULL, "x", 1, NULL, 0, &out, &outlen), XS_EINVAL);
    assert_int_equal(xs_aead_seal(&k, NULL, 1, NULL, 0, &out, &outlen), XS_EINVAL);
    assert_int_equal(xs_aead_seal(&k, "x", 1, NULL, 1, &out, &outlen), XS_EINVAL);
    assert_int_equal(xs_aead_seal(&k, "x", 1, NULL, 0, NULL, &outlen), XS_EINVAL);
    assert_int_equal(xs_aead_seal(&k, "x", 1, NULL, 0, &out, NULL), XS_EINVAL);
    assert_null(out);

    uint8_t in[40] = {0};
    assert_int_equal(xs_aead_open(NULL, in, sizeof(in), NULL, 0, &out, &outlen), XS_EINVAL);
    assert_int_equal(xs_aead_open(&k, NULL, sizeof(in), NULL, 0, &out, &outlen), XS_EINVAL);
    assert_int_equal(xs_aead_open(&k, in, sizeof(in), NULL, 3, &out, &outlen), XS_EINVAL);
    assert_int_equal(xs_aead_open(&k, in, sizeof(in), NULL, 0, NULL, &outlen), XS_EINVAL);
    assert_int_equal(xs_aead_open(&k, in, sizeof(in), NULL, 0, &out, NULL), XS_EINVAL);
    /* Nothing at all is a truncated message. */
    assert_int_equal(xs_aead_open(&k, NULL, 0, NULL, 0, &out, &outlen), XS_ECRYPTO);
    /* All zeros is not a message sealed under this key. */
    assert_int_equal(xs_aead_open(&k, in, sizeof(in), NULL, 0, &out, &outlen), XS_ECRYPTO);
    assert_null(out);
}

static void test_hex(void **state)
{
    (void)state;
    char out[9];
    xs_hex_encode("\x00\xab\x10\xff", 4, out);
    assert_string_equal(out, "00ab10ff");
    uint8_t *b = NULL;
    size_t n = 0;
    assert_int_equal(xs_hex_decode("00AB10ff", 8, &b, &n), XS_OK);
    assert_int_equal(n, 4);
    assert_memory_equal(b, "\x00\xab\x10\xff", 4);
    free(b);
    assert_int_equal(xs_hex_decode("", 0, &b, &n), XS_OK);
    assert_int_equal(n, 0);
    free(b);
    assert_int_equal(xs_hex_decode("abc", 3, &b, &n), XS_EPARSE);
    assert_int_equal(xs_hex_decode("zz", 2, &b, &n), XS_EPARSE);
    assert_int_equal(xs_hex_decode("0g", 2, &b, &n), XS_EPARSE);
    assert_int_equal(xs_hex_decode(NULL, 2, &b, &n), XS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_hmac_vectors),
        cmocka_unit_test(test_hmac_errors),
        cmocka_unit_test(test_base64_vectors),
        cmocka_unit_test(test_base64_alphabets),
        cmocka_unit_test(test_base64_decode_errors),
        cmocka_unit_test(test_base64_round_trip),
        cmocka_unit_test(test_pkce_rfc7636),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_random_token),
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_equal_str),
        cmocka_unit_test(test_wipe),
        cmocka_unit_test(test_aead_key_from_base64),
        cmocka_unit_test(test_aead_key_from_bytes),
        cmocka_unit_test(test_aead_open_known_answer),
        cmocka_unit_test(test_aead_round_trip),
        cmocka_unit_test(test_aead_wrong_key_and_aad),
        cmocka_unit_test(test_aead_tamper),
        cmocka_unit_test(test_aead_argument_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
