/*
 * multipart.h: reading a multipart/form-data request body (RFC 7578) as the Files API's
 * uploads send it: the boundary from the Content-Type, then each part's name, filename,
 * content type and bytes. Owns nothing: the parts point into the body.
 */
#ifndef XS_SIM_MULTIPART_H
#define XS_SIM_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>

#include "xs/err.h"

/* Most parts read from one body; more is refused as malformed. */
#define SIM_MP_PARTS_MAX 16
/* Longest name or filename kept (bytes); longer ones are refused as malformed. */
#define SIM_MP_NAME_MAX 1024

typedef struct sim_mp_part {
    char name[SIM_MP_NAME_MAX];
    char filename[SIM_MP_NAME_MAX];
    bool has_filename;
    char ctype[128];  /* the part's Content-Type, "" when it has none */
    const char *data; /* borrowed: inside the body */
    size_t len;
} sim_mp_part;

typedef struct sim_mp {
    sim_mp_part parts[SIM_MP_PARTS_MAX];
    size_t n;
} sim_mp;

/* sim__mp_parse reads body (len bytes) sent with Content-Type ctype into out. XS_EINVAL with
 * the reason in why (200 bytes) when ctype is not multipart/form-data with a boundary, or the
 * body is not a well-formed multipart body for it. The parts borrow from body. */
xs_err sim__mp_parse(const char *ctype, const char *body, size_t len, sim_mp *out, char *why);

/* sim__mp_find returns the first part called name (borrowed), or NULL. */
const sim_mp_part *sim__mp_find(const sim_mp *mp, const char *name);

#endif
