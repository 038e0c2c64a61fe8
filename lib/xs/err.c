/* err.c: texts and names of xs_err codes. */
#include "xs/err.h"

#include <errno.h>
#include <stddef.h>

static const struct {
    const char *name;
    const char *text;
} errs[] = {
    [XS_OK] = {"XS_OK", "no error"},
    [XS_ENOMEM] = {"XS_ENOMEM", "out of memory"},
    [XS_EINVAL] = {"XS_EINVAL", "invalid argument"},
    [XS_ERANGE] = {"XS_ERANGE", "value out of range"},
    [XS_EPARSE] = {"XS_EPARSE", "malformed input"},
    [XS_ENOTFOUND] = {"XS_ENOTFOUND", "not found"},
    [XS_EEXIST] = {"XS_EEXIST", "already exists"},
    [XS_ETIMEDOUT] = {"XS_ETIMEDOUT", "timed out"},
    [XS_ECLOSED] = {"XS_ECLOSED", "closed"},
    [XS_EIO] = {"XS_EIO", "input/output error"},
    [XS_EDB] = {"XS_EDB", "database error"},
    [XS_EBUS] = {"XS_EBUS", "message bus error"},
    [XS_EHTTP] = {"XS_EHTTP", "HTTP transport error"},
    [XS_ECRYPTO] = {"XS_ECRYPTO", "cryptographic failure"},
    [XS_ECONFIG] = {"XS_ECONFIG", "invalid configuration"},
    [XS_ETOOBIG] = {"XS_ETOOBIG", "too large"},
    [XS_EPROTO] = {"XS_EPROTO", "protocol error"},
    [XS_EUNSUPPORTED] = {"XS_EUNSUPPORTED", "not supported"},
    [XS_EBUSY] = {"XS_EBUSY", "busy"},
    [XS_ESTATE] = {"XS_ESTATE", "invalid state for this operation"},
    [XS_EAUTH] = {"XS_EAUTH", "not authorised"},
    [XS_ECONFLICT] = {"XS_ECONFLICT", "conflicting concurrent change"},
    [XS_ERATELIMIT] = {"XS_ERATELIMIT", "rate limit reached"},
    [XS_EUNAVAILABLE] = {"XS_EUNAVAILABLE", "service unavailable"},
    [XS_ECANCELED] = {"XS_ECANCELED", "cancelled"},
    [XS_ESCHEMA] = {"XS_ESCHEMA", "database schema version mismatch"},
};

#define NERRS ((int)(sizeof(errs) / sizeof(errs[0])))

const char *xs_strerror(int err)
{
    if (err < 0 || err >= NERRS || errs[err].text == NULL) {
        return "unknown error";
    }
    return errs[err].text;
}

const char *xs_err_name(int err)
{
    if (err < 0 || err >= NERRS || errs[err].name == NULL) {
        return "XS_EUNKNOWN";
    }
    return errs[err].name;
}

xs_err xs_err_from_errno(int e)
{
    switch (e) {
    case 0:
        return XS_OK;
    case ENOMEM:
        return XS_ENOMEM;
    case EINVAL:
        return XS_EINVAL;
    case ERANGE:
    case EOVERFLOW:
        return XS_ERANGE;
    case ENOENT:
        return XS_ENOTFOUND;
    case EEXIST:
        return XS_EEXIST;
    case ETIMEDOUT:
        return XS_ETIMEDOUT;
    case EPIPE:
    case ECONNRESET:
        return XS_ECLOSED;
    case EBUSY:
    case EAGAIN:
        return XS_EBUSY;
    case ECANCELED:
    case EINTR:
        return XS_ECANCELED;
    case EACCES:
    case EPERM:
        return XS_EAUTH;
    case E2BIG:
    case EFBIG:
    case EMSGSIZE:
        return XS_ETOOBIG;
    default:
        return XS_EIO;
    }
}
