/*
 * store.c: the in-memory store.
 *
 * Each tenant holds one table per kind. A table keeps its records in creation order (an
 * array: a record's index never changes; records are never removed, as Xero keeps deleted
 * invoices and archived contacts), an open-addressing hash from id to index, and an update
 * log: one entry per change, in UpdatedDateUTC order, of which only each record's latest is
 * live. Per class (status, type), a Fenwick tree over creation order and another over the
 * update log count the members, so that a page of a filtered list (`Statuses`, `where
 * Status==...`, includeArchived) in either order is found in O(C log n) without a scan, and
 * `If-Modified-Since` is a binary search in the log. The log is compacted when dead entries
 * outnumber live ones.
 */
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "util.h"

/* ------------------------------------------------------------------ Fenwick trees */

static void fw_free(sim_fw *fw)
{
    for (int c = 0; c < SIM_MAX_CLASSES; c++) {
        free(fw->t[c]);
        fw->t[c] = NULL;
    }
    fw->cap = 0;
}

/* fw_add moves the count of class cls at pos by delta; the class's tree exists (see
 * reserve) unless delta removes from an empty class, which is then a no-op. */
static void fw_add(sim_fw *fw, unsigned cls, uint32_t pos, int32_t delta)
{
    int32_t *t = fw->t[cls];
    if (t == NULL) {
        return;
    }
    for (uint64_t i = (uint64_t)pos + 1; i <= fw->cap; i += i & (~i + 1)) {
        t[i] += delta;
    }
}

/* fw_rebuild makes fw cover cap positions (a power of two), with membership given by
 * cls_of(pos) (0xFF: none) for pos < n. */
static xs_err fw_rebuild(sim_fw *fw, uint32_t cap, uint32_t n,
                         uint8_t (*cls_of)(const sim_table *, uint32_t), const sim_table *tb)
{
    uint8_t used[SIM_MAX_CLASSES] = {0};
    for (uint32_t i = 0; i < n; i++) {
        uint8_t c = cls_of(tb, i);
        if (c < SIM_MAX_CLASSES) {
            used[c] = 1;
        }
    }
    int32_t *nt[SIM_MAX_CLASSES] = {0};
    for (int c = 0; c < SIM_MAX_CLASSES; c++) {
        if (used[c] || fw->t[c] != NULL) {
            nt[c] = calloc((size_t)cap + 1, sizeof(int32_t));
            if (nt[c] == NULL) {
                for (int k = 0; k < c; k++) {
                    free(nt[k]);
                }
                return XS_ENOMEM;
            }
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        uint8_t c = cls_of(tb, i);
        if (c < SIM_MAX_CLASSES) {
            nt[c][i + 1] += 1;
        }
    }
    for (int c = 0; c < SIM_MAX_CLASSES; c++) {
        if (nt[c] == NULL) {
            continue;
        }
        for (uint64_t i = 1; i <= cap; i++) {
            uint64_t j = i + (i & (~i + 1));
            if (j <= cap) {
                nt[c][j] += nt[c][i];
            }
        }
    }
    fw_free(fw);
    memcpy(fw->t, nt, sizeof(nt));
    fw->cap = cap;
    return XS_OK;
}

uint32_t sim__fw_prefix(const sim_fw *fw, uint32_t mask, uint32_t pos)
{
    uint64_t s = 0;
    if (pos > fw->cap) {
        pos = fw->cap;
    }
    for (uint32_t i = pos; i > 0; i -= i & (~i + 1)) {
        for (uint32_t m = mask; m != 0; m &= m - 1) {
            int c = __builtin_ctz(m);
            if (fw->t[c] != NULL) {
                s += (uint32_t)fw->t[c][i];
            }
        }
    }
    return (uint32_t)s;
}

uint32_t sim__fw_select(const sim_fw *fw, uint32_t mask, uint32_t k)
{
    uint32_t pos = 0;
    for (uint32_t step = fw->cap; step != 0; step >>= 1) {
        uint32_t next = pos + step;
        if (next > fw->cap) {
            continue;
        }
        uint32_t s = 0;
        for (uint32_t m = mask; m != 0; m &= m - 1) {
            int c = __builtin_ctz(m);
            if (fw->t[c] != NULL) {
                s += (uint32_t)fw->t[c][next];
            }
        }
        if (s <= k) {
            pos = next;
            k -= s;
        }
    }
    return pos;
}

/* ------------------------------------------------------------------ tables */

static uint8_t cls_created(const sim_table *t, uint32_t i)
{
    return t->recs[i]->cls;
}

static uint8_t cls_logged(const sim_table *t, uint32_t i)
{
    const sim_rec *r = t->recs[t->log[i].idx];
    return r->upos == i ? r->cls : 0xFF;
}

static uint64_t id_hash(const xs_uuid *id)
{
    uint64_t a, b;
    memcpy(&a, id->b, 8);
    memcpy(&b, id->b + 8, 8);
    return sim__mix64(a ^ (b * 31));
}

static xs_err idh_insert(uint32_t *h, uint32_t cap, const sim_rec *r)
{
    uint32_t k = (uint32_t)(id_hash(&r->id) & (cap - 1));
    while (h[k] != 0) {
        k = (k + 1) & (cap - 1);
    }
    h[k] = r->idx + 1;
    return XS_OK;
}

static xs_err idh_grow(sim_table *t)
{
    uint32_t cap = t->idh_cap ? t->idh_cap * 2 : 1024;
    uint32_t *h = calloc(cap, sizeof(*h));
    if (h == NULL) {
        return XS_ENOMEM;
    }
    for (uint32_t i = 0; i < t->n; i++) {
        idh_insert(h, cap, t->recs[i]);
    }
    free(t->idh);
    t->idh = h;
    t->idh_cap = cap;
    return XS_OK;
}

sim_rec *sim__table_find(const sim_table *t, const xs_uuid *id)
{
    if (t->idh_cap == 0) {
        return NULL;
    }
    uint32_t k = (uint32_t)(id_hash(id) & (t->idh_cap - 1));
    while (t->idh[k] != 0) {
        sim_rec *r = t->recs[t->idh[k] - 1];
        if (xs_uuid_eq(&r->id, id)) {
            return r;
        }
        k = (k + 1) & (t->idh_cap - 1);
    }
    return NULL;
}

static uint32_t pow2_at_least(uint32_t n)
{
    uint32_t c = 1024;
    while (c < n) {
        c *= 2;
    }
    return c;
}

/* reserve makes room for one more record and one more log entry of class cls, so that what
 * follows cannot fail half-way. */
static xs_err reserve(sim_table *t, uint8_t cls, bool new_record)
{
    if (new_record && t->n == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 256;
        sim_rec **nr = realloc(t->recs, (size_t)cap * sizeof(*nr));
        if (nr == NULL) {
            return XS_ENOMEM;
        }
        t->recs = nr;
        t->cap = cap;
    }
    if (new_record && (uint64_t)(t->n + 1) * 2 > t->idh_cap) {
        xs_err e = idh_grow(t);
        if (e != XS_OK) {
            return e;
        }
    }
    if (new_record && t->n + 1 > t->fc.cap) {
        xs_err e = fw_rebuild(&t->fc, pow2_at_least(t->n + 1), t->n, cls_created, t);
        if (e != XS_OK) {
            return e;
        }
    }
    if (t->nlog == t->caplog) {
        uint32_t cap = t->caplog ? t->caplog * 2 : 1024;
        sim_logent *nl = realloc(t->log, (size_t)cap * sizeof(*nl));
        if (nl == NULL) {
            return XS_ENOMEM;
        }
        t->log = nl;
        t->caplog = cap;
    }
    if (t->nlog + 1 > t->fu.cap) {
        xs_err e = fw_rebuild(&t->fu, pow2_at_least(t->nlog + 1), t->nlog, cls_logged, t);
        if (e != XS_OK) {
            return e;
        }
    }
    sim_fw *fws[2] = {&t->fc, &t->fu};
    for (int k = 0; k < 2; k++) {
        if (fws[k]->t[cls] == NULL) {
            fws[k]->t[cls] = calloc((size_t)fws[k]->cap + 1, sizeof(int32_t));
            if (fws[k]->t[cls] == NULL) {
                return XS_ENOMEM;
            }
        }
    }
    return XS_OK;
}

/* log_append adds r's new live entry (room reserved). */
static void log_append(sim_table *t, sim_rec *r)
{
    t->log[t->nlog].t = r->updated;
    t->log[t->nlog].idx = r->idx;
    r->upos = t->nlog++;
    fw_add(&t->fu, r->cls, r->upos, 1);
}

/* log_compact drops dead entries, keeping the order of live ones. */
static xs_err log_compact(sim_table *t)
{
    uint32_t o = 0;
    for (uint32_t i = 0; i < t->nlog; i++) {
        sim_rec *r = t->recs[t->log[i].idx];
        if (r->upos == i) {
            t->log[o] = t->log[i];
            r->upos = o++;
        }
    }
    t->nlog = o;
    return fw_rebuild(&t->fu, pow2_at_least(t->nlog + 1), t->nlog, cls_logged, t);
}

xs_err sim__table_add(sim_table *t, sim_rec *r)
{
    xs_err e = reserve(t, r->cls, true);
    if (e != XS_OK) {
        return e;
    }
    r->idx = t->n;
    t->recs[t->n++] = r;
    idh_insert(t->idh, t->idh_cap, r);
    fw_add(&t->fc, r->cls, r->idx, 1);
    log_append(t, r);
    if (r->updated > t->last_t) {
        t->last_t = r->updated;
    }
    t->cls_count[r->cls]++;
    return XS_OK;
}

void sim__table_reclass(sim_table *t, sim_rec *r, uint8_t cls)
{
    if (cls == r->cls || reserve(t, cls, false) != XS_OK) {
        return;
    }
    fw_add(&t->fc, r->cls, r->idx, -1);
    fw_add(&t->fu, r->cls, r->upos, -1);
    t->cls_count[r->cls]--;
    r->cls = cls;
    fw_add(&t->fc, cls, r->idx, 1);
    fw_add(&t->fu, cls, r->upos, 1);
    t->cls_count[cls]++;
}

xs_err sim__table_touch(sim_table *t, sim_rec *r, xs_time at, uint8_t cls)
{
    xs_err e = reserve(t, cls, false);
    if (e != XS_OK) {
        return e;
    }
    if (at < t->last_t) {
        at = t->last_t;
    }
    t->last_t = at;
    r->updated = at;
    fw_add(&t->fu, r->cls, r->upos, -1);
    if (cls != r->cls) {
        fw_add(&t->fc, r->cls, r->idx, -1);
        t->cls_count[r->cls]--;
        r->cls = cls;
        t->cls_count[cls]++;
        fw_add(&t->fc, cls, r->idx, 1);
    }
    log_append(t, r);
    if (t->nlog > 2 * t->n + 1024) {
        /* a failed compaction leaves a valid, longer log */
        log_compact(t);
    }
    return XS_OK;
}

static int logent_cmp(const void *a, const void *b)
{
    const sim_logent *x = a, *y = b;
    if (x->t != y->t) {
        return x->t < y->t ? -1 : 1;
    }
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

xs_err sim__table_resort(sim_table *t)
{
    uint32_t o = 0;
    for (uint32_t i = 0; i < t->nlog; i++) {
        sim_rec *r = t->recs[t->log[i].idx];
        if (r->upos == i) {
            t->log[o] = t->log[i];
            t->log[o].t = r->updated;
            o++;
        }
    }
    t->nlog = o;
    if (t->nlog > 1) {
        qsort(t->log, t->nlog, sizeof(*t->log), logent_cmp);
    }
    t->last_t = 0;
    for (uint32_t i = 0; i < t->nlog; i++) {
        t->recs[t->log[i].idx]->upos = i;
        if (t->log[i].t > t->last_t) {
            t->last_t = t->log[i].t;
        }
    }
    return fw_rebuild(&t->fu, pow2_at_least(t->nlog + 1), t->nlog, cls_logged, t);
}

uint32_t sim__table_count(const sim_table *t, uint32_t mask)
{
    uint64_t s = 0;
    for (uint32_t m = mask; m != 0; m &= m - 1) {
        s += t->cls_count[__builtin_ctz(m)];
    }
    return (uint32_t)s;
}

uint32_t sim__log_lower(const sim_table *t, xs_time at)
{
    uint32_t lo = 0, hi = t->nlog;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (t->log[mid].t < at) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* ------------------------------------------------------------------ classes */

uint8_t sim__contact_cls(const sim_contact *c)
{
    return c->status;
}

uint8_t sim__invoice_cls(const sim_invoice *i)
{
    return (uint8_t)(i->type * 6 + i->status);
}

uint8_t sim__payment_cls(const sim_payment *p)
{
    return (uint8_t)(p->ptype * 2 + p->status);
}

uint8_t sim__banktx_cls(const sim_banktx *b)
{
    return (uint8_t)(b->type * 3 + b->status);
}

const char *const sim__bt_types[8] = {
    "RECEIVE",           "RECEIVE-OVERPAYMENT", "RECEIVE-PREPAYMENT", "SPEND",
    "SPEND-OVERPAYMENT", "SPEND-PREPAYMENT",    "RECEIVE-TRANSFER",   "SPEND-TRANSFER"};

/* ------------------------------------------------------------------ tax rates */

static const sim_taxrate taxrates[] = {
    {"OUTPUT2", "15% GST on Income", {15 * XS_MONEY_ONE}},
    {"INPUT2", "15% GST on Expenses", {15 * XS_MONEY_ONE}},
    {"NONE", "No GST", {0}},
    {"ZERORATED", "Zero Rated", {0}},
    {"EXEMPTOUTPUT", "Exempt Income", {0}},
    {"EXEMPTINPUT", "Exempt Expenses", {0}},
    {"GSTONIMPORTS", "GST on Imports", {0}},
};

const sim_taxrate *sim__taxrate(const char *type)
{
    for (size_t i = 0; i < sizeof(taxrates) / sizeof(taxrates[0]); i++) {
        if (strcmp(type, taxrates[i].type) == 0) {
            return &taxrates[i];
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ natural keys */

uint32_t sim__contact_by_name(sim_tenant *t, const char *name, bool active_only)
{
    uint64_t h = sim__norm_hash(name);
    uint32_t found = SIM_NONE;
    for (sim_imap_node *n = sim__imap_first(&t->contact_names, h); n != NULL;
         n = sim__imap_next(n, h)) {
        sim_contact *c = sim__contact_at(t, n->idx);
        if (!sim__norm_eq(sim__strs_get(&c->s, C_NAME), name)) {
            continue;
        }
        if (c->status == SIM_CS_ACTIVE) {
            return n->idx;
        }
        if (!active_only && (found == SIM_NONE || n->idx < found)) {
            found = n->idx;
        }
    }
    return found;
}

uint32_t sim__contact_by_number(sim_tenant *t, const char *number)
{
    uint64_t h = sim__norm_hash(number);
    uint32_t found = SIM_NONE;
    for (sim_imap_node *n = sim__imap_first(&t->contact_numbers, h); n != NULL;
         n = sim__imap_next(n, h)) {
        sim_contact *c = sim__contact_at(t, n->idx);
        if (sim__norm_eq(sim__strs_get(&c->s, C_NUMBER), number) &&
            (found == SIM_NONE || n->idx < found)) {
            found = n->idx;
        }
    }
    return found;
}

uint32_t sim__invoice_by_number(sim_tenant *t, const char *number)
{
    uint64_t h = sim__norm_hash(number);
    for (sim_imap_node *n = sim__imap_first(&t->inv_numbers, h); n != NULL;
         n = sim__imap_next(n, h)) {
        sim_invoice *i = sim__invoice_at(t, n->idx);
        if (i->status != SIM_IS_DELETED && sim__norm_eq(sim__strs_get(&i->s, I_NUMBER), number)) {
            return n->idx;
        }
    }
    return SIM_NONE;
}

static uint32_t acct_lookup(sim_tenant *t, const sim_imap *m, unsigned field, const char *key)
{
    uint64_t h = sim__norm_hash(key);
    for (sim_imap_node *n = sim__imap_first(m, h); n != NULL; n = sim__imap_next(n, h)) {
        sim_account *a = sim__account_at(t, n->idx);
        if (a->status != SIM_AS_DELETED && sim__norm_eq(sim__strs_get(&a->s, field), key)) {
            return n->idx;
        }
    }
    return SIM_NONE;
}

uint32_t sim__account_by_code(sim_tenant *t, const char *code)
{
    return acct_lookup(t, &t->acct_codes, A_CODE, code);
}

uint32_t sim__account_by_name(sim_tenant *t, const char *name)
{
    return acct_lookup(t, &t->acct_names, A_NAME, name);
}

xs_err sim__contact_index(sim_tenant *t, sim_contact *c)
{
    const char *name = sim__strs_get(&c->s, C_NAME);
    const char *num = sim__strs_get(&c->s, C_NUMBER);
    xs_err e = XS_OK;
    if (name[0] != '\0') {
        e = sim__imap_add(&t->contact_names, sim__norm_hash(name), c->h.idx);
    }
    if (e == XS_OK && num[0] != '\0') {
        e = sim__imap_add(&t->contact_numbers, sim__norm_hash(num), c->h.idx);
    }
    return e;
}

void sim__contact_unindex(sim_tenant *t, sim_contact *c)
{
    const char *name = sim__strs_get(&c->s, C_NAME);
    const char *num = sim__strs_get(&c->s, C_NUMBER);
    if (name[0] != '\0') {
        sim__imap_del(&t->contact_names, sim__norm_hash(name), c->h.idx);
    }
    if (num[0] != '\0') {
        sim__imap_del(&t->contact_numbers, sim__norm_hash(num), c->h.idx);
    }
}

xs_err sim__invoice_index(sim_tenant *t, sim_invoice *i)
{
    const char *num = sim__strs_get(&i->s, I_NUMBER);
    if (i->type == SIM_ACCREC && num[0] != '\0') {
        return sim__imap_add(&t->inv_numbers, sim__norm_hash(num), i->h.idx);
    }
    return XS_OK;
}

void sim__invoice_unindex(sim_tenant *t, sim_invoice *i)
{
    const char *num = sim__strs_get(&i->s, I_NUMBER);
    if (i->type == SIM_ACCREC && num[0] != '\0') {
        sim__imap_del(&t->inv_numbers, sim__norm_hash(num), i->h.idx);
    }
}

xs_err sim__account_index(sim_tenant *t, sim_account *a)
{
    const char *code = sim__strs_get(&a->s, A_CODE);
    const char *name = sim__strs_get(&a->s, A_NAME);
    xs_err e = XS_OK;
    if (code[0] != '\0') {
        e = sim__imap_add(&t->acct_codes, sim__norm_hash(code), a->h.idx);
    }
    if (e == XS_OK && name[0] != '\0') {
        e = sim__imap_add(&t->acct_names, sim__norm_hash(name), a->h.idx);
    }
    return e;
}

void sim__account_unindex(sim_tenant *t, sim_account *a)
{
    const char *code = sim__strs_get(&a->s, A_CODE);
    const char *name = sim__strs_get(&a->s, A_NAME);
    if (code[0] != '\0') {
        sim__imap_del(&t->acct_codes, sim__norm_hash(code), a->h.idx);
    }
    if (name[0] != '\0') {
        sim__imap_del(&t->acct_names, sim__norm_hash(name), a->h.idx);
    }
}

/* ------------------------------------------------------------------ record frees */

void sim__lines_free(sim_line *lines, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        sim__strs_free(&lines[i].s);
    }
    free(lines);
}

void sim__contact_free(sim_contact *c)
{
    if (c == NULL) {
        return;
    }
    sim__strs_free(&c->s);
    for (uint8_t i = 0; i < c->npersons; i++) {
        free(c->persons[i].first);
        free(c->persons[i].last);
        free(c->persons[i].email);
    }
    free(c->persons);
    free(c->invoices.v);
    free(c->banktx.v);
    free(c);
}

void sim__invoice_free(sim_invoice *i)
{
    if (i == NULL) {
        return;
    }
    sim__strs_free(&i->s);
    sim__lines_free(i->lines, i->nlines);
    free(i->payments.v);
    free(i);
}

void sim__payment_free(sim_payment *p)
{
    if (p == NULL) {
        return;
    }
    sim__strs_free(&p->s);
    free(p);
}

void sim__account_free(sim_account *a)
{
    if (a == NULL) {
        return;
    }
    sim__strs_free(&a->s);
    free(a);
}

void sim__banktx_free(sim_banktx *b)
{
    if (b == NULL) {
        return;
    }
    sim__strs_free(&b->s);
    sim__lines_free(b->lines, b->nlines);
    free(b);
}

/* ------------------------------------------------------------------ tenants */

xs_err sim__tenant_create(sim_tenant **out, const xs_uuid *id, const char *name,
                          const char *currency, uint64_t seed)
{
    sim_tenant *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return XS_ENOMEM;
    }
    t->name = strdup(name);
    if (t->name == NULL || pthread_rwlock_init(&t->lock, NULL) != 0) {
        free(t->name);
        free(t);
        return XS_ENOMEM;
    }
    t->id = *id;
    xs_uuid_format(id, t->ids);
    snprintf(t->currency, sizeof(t->currency), "%s", currency);
    snprintf(t->short_code, sizeof(t->short_code), "!%c%c%c%c%c", 'A' + t->ids[0] % 26,
             'A' + t->ids[1] % 26, 'A' + t->ids[2] % 26, 'A' + t->ids[3] % 26,
             'A' + t->ids[4] % 26);
    for (int k = 0; k < SIM_NKINDS; k++) {
        t->t[k].kind = (sim_kind)k;
    }
    t->rng.s = seed ^ sim__hash64(id->b, 16, 3);
    t->next_inv_number = 1;
    *out = t;
    return XS_OK;
}

void sim__tenant_destroy(sim_tenant *t)
{
    if (t == NULL) {
        return;
    }
    if (t->xpm_free != NULL) {
        t->xpm_free(t->xpm);
    }
    for (int k = 0; k < SIM_NKINDS; k++) {
        sim_table *tb = &t->t[k];
        for (uint32_t i = 0; i < tb->n; i++) {
            switch ((sim_kind)k) {
            case SIM_CONTACT:
                sim__contact_free((sim_contact *)tb->recs[i]);
                break;
            case SIM_INVOICE:
                sim__invoice_free((sim_invoice *)tb->recs[i]);
                break;
            case SIM_PAYMENT:
                sim__payment_free((sim_payment *)tb->recs[i]);
                break;
            case SIM_ACCOUNT:
                sim__account_free((sim_account *)tb->recs[i]);
                break;
            case SIM_BANKTX:
                sim__banktx_free((sim_banktx *)tb->recs[i]);
                break;
            case SIM_NKINDS:
                break;
            }
        }
        free(tb->recs);
        free(tb->idh);
        free(tb->log);
        fw_free(&tb->fc);
        fw_free(&tb->fu);
    }
    sim__imap_free(&t->contact_names);
    sim__imap_free(&t->contact_numbers);
    sim__imap_free(&t->inv_numbers);
    sim__imap_free(&t->acct_codes);
    sim__imap_free(&t->acct_names);
    sim__smap_free(&t->fingerprints, free);
    sim__smap_free(&t->idem, t->idem_free);
    if (t->files_free != NULL) {
        t->files_free(t->files);
    }
    pthread_rwlock_destroy(&t->lock);
    free(t->name);
    free(t);
}
