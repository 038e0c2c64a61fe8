/*
 * err.h: the one error enum of xero-sync.
 *
 * Every fallible function returns an xs_err; XS_OK is zero. Codes are only ever appended,
 * never renumbered, because they cross process boundaries inside error replies. Errors from
 * the libraries we use (errno, CURLcode, libpq, nng, OpenSSL) are translated into these codes
 * where they enter our code.
 */
#ifndef XS_ERR_H
#define XS_ERR_H

typedef enum xs_err {
    XS_OK = 0,
    XS_ENOMEM = 1,        /* out of memory */
    XS_EINVAL = 2,        /* invalid argument or input value */
    XS_ERANGE = 3,        /* value out of range, or arithmetic overflow */
    XS_EPARSE = 4,        /* malformed text (JSON, number, date, ...) */
    XS_ENOTFOUND = 5,     /* no such record, key, route or field */
    XS_EEXIST = 6,        /* already exists (unique violation) */
    XS_ETIMEDOUT = 7,     /* a deadline passed */
    XS_ECLOSED = 8,       /* the object or peer was closed */
    XS_EIO = 9,           /* an operating-system I/O error */
    XS_EDB = 10,          /* PostgreSQL reported an error */
    XS_EBUS = 11,         /* the message bus (nng) reported an error */
    XS_EHTTP = 12,        /* HTTP transport error */
    XS_ECRYPTO = 13,      /* a cryptographic operation failed (bad key, tampered data) */
    XS_ECONFIG = 14,      /* invalid configuration */
    XS_ETOOBIG = 15,      /* input larger than the allowed size */
    XS_EPROTO = 16,       /* a peer broke the message protocol */
    XS_EUNSUPPORTED = 17, /* unknown message type, version or operation */
    XS_EBUSY = 18,        /* the resource is held by someone else; try later */
    XS_ESTATE = 19,       /* the operation is not valid in the current state */
    XS_EAUTH = 20,        /* authentication or authorisation refused */
    XS_ECONFLICT = 21,    /* a concurrent change got there first */
    XS_ERATELIMIT = 22,   /* a rate limit was reached */
    XS_EUNAVAILABLE = 23, /* a required peer is not available */
    XS_ECANCELED = 24,    /* the operation was cancelled (shutdown) */
    XS_ESCHEMA = 25,      /* the database schema is not the one this build expects */
} xs_err;

/* xs_strerror returns a short, static, human-readable text for err; never NULL. */
const char *xs_strerror(int err);

/* xs_err_name returns the stable symbolic name of err ("XS_EINVAL"), used in JSON error
 * replies and logs; "XS_EUNKNOWN" for a value that is not an xs_err. Static, never NULL. */
const char *xs_err_name(int err);

/* xs_err_from_errno translates an errno value into the closest xs_err. */
xs_err xs_err_from_errno(int e);

#endif
