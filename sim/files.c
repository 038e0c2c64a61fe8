/*
 * files.c: the Files API as sim/README.md ("Files API") describes it: folders, files (stored
 * whole in memory, with their SHA-256) and associations, per tenant under the tenant's lock.
 * Refusals use the Files API's own error form, a JSON array of {type, title, detail}, as the
 * spec's examples show. Where Xero documents no rule (folder names, deleting a folder that
 * holds files, a second association of a file and an object), the rule chosen is written in
 * sim/README.md.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "api.h"
#include "context.h"
#include "reply.h"
#include "store.h"
#include "util.h"
#include "xs/crypto.h"
#include "xs/http.h"

/* ------------------------------------------------------------------ state */

typedef struct sim_assoc {
    xs_uuid object;
    const char *group; /* static: one of object_groups */
    const char *type;  /* static: one of object_types */
    xs_time at;
} sim_assoc;

typedef struct sim_file {
    xs_uuid id;
    char *name;
    char mime[128];
    xs_uuid folder;
    char *data;
    size_t size;
    char sha[2 * XS_SHA256_LEN + 1];
    xs_time created, updated;
    sim_assoc *assocs;
    size_t nassocs, capassocs;
} sim_file;

typedef struct sim_folder {
    xs_uuid id;
    char *name;
    bool inbox;
    xs_time created;
    char email[96];
} sim_folder;

struct sim_files {
    sim_folder **folders; /* in creation order, the Inbox first */
    size_t nfolders, capfolders;
    sim_file **files; /* in creation order */
    size_t nfiles, capfiles;
    sim_rng rng;
};

/* The spec's ObjectGroup and ObjectType values. */
static const char *const object_groups[] = {
    "Account", "BankTransaction", "Contact",     "CreditNote", "Invoice",
    "Item",    "ManualJournal",   "Overpayment", "Payment",    "Prepayment",
    "Quote",   "Receipt",         NULL};
static const char *const object_types[] = {"Unknown",
                                           "Accpay",
                                           "AccPayCredit",
                                           "AccPayPayment",
                                           "AccRec",
                                           "AccRecCredit",
                                           "AccRecPayment",
                                           "Adjustment",
                                           "ApCreditPayment",
                                           "ApOverPayment",
                                           "ApOverPaymentPayment",
                                           "ApOverPaymentSourcePayment",
                                           "ApPrepayment",
                                           "ApPrepaymentPayment",
                                           "ApPrepaymentSourcePayment",
                                           "ArCreditPayment",
                                           "ArOverPayment",
                                           "ArOverpaymentPayment",
                                           "ArOverpaymentSourcePayment",
                                           "ArPrepayment",
                                           "ArPrepaymentPayment",
                                           "ArPrepaymentSourcePayment",
                                           "CashPaid",
                                           "CashRec",
                                           "ExpPayment",
                                           "ManJournal",
                                           "PurchaseOrder",
                                           "Receipt",
                                           "Transfer",
                                           "Account",
                                           "Contact",
                                           "Business",
                                           "Employee",
                                           "Person",
                                           "User",
                                           "Org",
                                           "FixedAsset",
                                           "PayRun",
                                           "PriceListItem",
                                           "Bank",
                                           "Current",
                                           "Equity",
                                           "Expense",
                                           "Fixed",
                                           "Liability",
                                           "Prepayment",
                                           "Revenue",
                                           "Sales",
                                           "Overheads",
                                           "Depreciatn",
                                           "OtherIncome",
                                           "DirectCosts",
                                           "Currliab",
                                           "Termliab",
                                           "NonCurrent",
                                           "SalesQuote",
                                           NULL};

/* The MIME type of each default extension, for an upload that names none. */
static const struct {
    const char *ext, *mime;
} mime_types[] = {
    {"7z", "application/x-7z-compressed"},
    {"bmp", "image/bmp"},
    {"csv", "text/csv"},
    {"doc", "application/msword"},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"eml", "message/rfc822"},
    {"gif", "image/gif"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"msg", "application/vnd.ms-outlook"},
    {"odf", "application/vnd.oasis.opendocument.formula"},
    {"ods", "application/vnd.oasis.opendocument.spreadsheet"},
    {"odt", "application/vnd.oasis.opendocument.text"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"ppt", "application/vnd.ms-powerpoint"},
    {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
    {"rar", "application/vnd.rar"},
    {"rtf", "application/rtf"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"txt", "text/plain"},
    {"xls", "application/vnd.ms-excel"},
    {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    {"zip", "application/zip"},
};

static void file_free(sim_file *f)
{
    if (f != NULL) {
        free(f->name);
        free(f->data);
        free(f->assocs);
        free(f);
    }
}

static void folder_free(sim_folder *f)
{
    if (f != NULL) {
        free(f->name);
        free(f);
    }
}

static void files_free(struct sim_files *fs)
{
    if (fs == NULL) {
        return;
    }
    for (size_t i = 0; i < fs->nfolders; i++) {
        folder_free(fs->folders[i]);
    }
    for (size_t i = 0; i < fs->nfiles; i++) {
        file_free(fs->files[i]);
    }
    free(fs->folders);
    free(fs->files);
    free(fs);
}

/* push appends v to a growing array of pointers; XS_ENOMEM leaves it unchanged. */
static xs_err push(void ***arr, size_t *n, size_t *cap, void *v)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        void **na = realloc(*arr, nc * sizeof(*na));
        if (na == NULL) {
            return XS_ENOMEM;
        }
        *arr = na;
        *cap = nc;
    }
    (*arr)[(*n)++] = v;
    return XS_OK;
}

/* remove_at removes element i of an array of pointers, keeping the order of the rest. */
static void remove_at(void **arr, size_t *n, size_t i)
{
    memmove(&arr[i], &arr[i + 1], (*n - i - 1) * sizeof(*arr));
    (*n)--;
}

xs_err sim__files_init(sim *s, sim_tenant *t)
{
    struct sim_files *fs = calloc(1, sizeof(*fs));
    sim_folder *in = calloc(1, sizeof(*in));
    if (fs == NULL || in == NULL || (in->name = strdup("Inbox")) == NULL) {
        free(fs);
        folder_free(in);
        return XS_ENOMEM;
    }
    fs->rng.s = sim__hash64(&t->id, sizeof(t->id), s->set.seed ^ UINT64_C(0x66696c6573));
    sim__rng_uuid(&fs->rng, &in->id);
    in->inbox = true;
    in->created = t->created;
    /* Xero's inbox address: xero.inbox.<short code>.<random>@xerofiles.com */
    char rnd[17];
    for (int i = 0; i < 16; i++) {
        rnd[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[sim__rng_below(&fs->rng, 36)];
    }
    rnd[16] = '\0';
    char code[sizeof(t->short_code)];
    for (size_t i = 0; i < sizeof(code); i++) {
        code[i] = (char)((t->short_code[i] >= 'A' && t->short_code[i] <= 'Z')
                             ? t->short_code[i] - 'A' + 'a'
                             : t->short_code[i]);
    }
    code[sizeof(code) - 1] = '\0';
    snprintf(in->email, sizeof(in->email), "xero.inbox.%s.%s@xerofiles.com", code, rnd);
    if (push((void ***)&fs->folders, &fs->nfolders, &fs->capfolders, in) != XS_OK) {
        folder_free(in);
        files_free(fs);
        return XS_ENOMEM;
    }
    t->files = fs;
    t->files_free = files_free;
    return XS_OK;
}

/* find_id returns the element of arr (n pointers to structs that begin with their xs_uuid
 * id: sim_folder, sim_file) whose id is id, its position in *pos (pos may be NULL); NULL. */
static void *find_id(void *const *arr, size_t n, const xs_uuid *id, size_t *pos)
{
    for (size_t i = 0; i < n; i++) {
        if (memcmp(arr[i], id, sizeof(*id)) == 0) {
            if (pos != NULL) {
                *pos = i;
            }
            return arr[i];
        }
    }
    return NULL;
}

static sim_folder *folder_find(struct sim_files *fs, const xs_uuid *id, size_t *pos)
{
    return find_id((void *const *)fs->folders, fs->nfolders, id, pos);
}

static sim_file *file_find(struct sim_files *fs, const xs_uuid *id, size_t *pos)
{
    return find_id((void *const *)fs->files, fs->nfiles, id, pos);
}

static size_t folder_count(const struct sim_files *fs, const sim_folder *d)
{
    size_t n = 0;
    for (size_t i = 0; i < fs->nfiles; i++) {
        n += memcmp(&fs->files[i]->folder, &d->id, sizeof(d->id)) == 0;
    }
    return n;
}

/* ------------------------------------------------------------------ replies */

/* refuse sets the Files API's error form: [{"type":..,"title":..,"detail":..}]. */
static void refuse(sim_call *c, int status, const char *type, const char *title, const char *fmt,
                   ...)
{
    char detail[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    json_t *d = json_string(detail);
    if (d == NULL) {
        /* a detail quoting bytes that are not UTF-8 */
        d = json_string("The request holds text that is not valid UTF-8.");
    }
    sim__reply_json(c, status,
                    json_pack("[{s:s,s:s,s:o}]", "type", type, "title", title, "detail", d));
}

#define invalid(c, ...) refuse((c), 400, "Validation", "Validation failure", __VA_ARGS__)
#define missing(c, ...) refuse((c), 404, "NotFound", "Not found", __VA_ARGS__)

static json_t *user_json(sim *s)
{
    char full[160];
    snprintf(full, sizeof(full), "%s %s", s->user.first, s->user.last);
    return json_pack("{s:s,s:s,s:s,s:s,s:s}", "Name", s->user.email, "FirstName", s->user.first,
                     "LastName", s->user.last, "FullName", full, "Id", s->user.ids);
}

static json_t *folder_json(const struct sim_files *fs, const sim_folder *d)
{
    char id[XS_UUID_STR];
    xs_uuid_format(&d->id, id);
    json_t *j =
        json_pack("{s:s,s:I}", "Name", d->name, "FileCount", (json_int_t)folder_count(fs, d));
    if (d->inbox) {
        json_object_set_new(j, "Email", json_string(d->email));
    }
    json_object_set_new(j, "IsInbox", json_boolean(d->inbox));
    json_object_set_new(j, "Id", json_string(id));
    return j;
}

static json_t *file_json(sim *s, const sim_file *f)
{
    char id[XS_UUID_STR], folder[XS_UUID_STR], cr[XS_TIME_ISO_MAX], up[XS_TIME_ISO_MAX];
    xs_uuid_format(&f->id, id);
    xs_uuid_format(&f->folder, folder);
    sim__time_format_7(f->created, cr);
    sim__time_format_7(f->updated, up);
    return json_pack("{s:s,s:s,s:I,s:s,s:s,s:o,s:s,s:s}", "Name", f->name, "MimeType", f->mime,
                     "Size", (json_int_t)f->size, "CreatedDateUtc", cr, "UpdatedDateUtc", up,
                     "User", user_json(s), "FolderId", folder, "Id", id);
}

static json_t *assoc_json(const sim_file *f, const sim_assoc *a, bool full)
{
    char fid[XS_UUID_STR], oid[XS_UUID_STR];
    xs_uuid_format(&f->id, fid);
    xs_uuid_format(&a->object, oid);
    json_t *j = json_object();
    if (full) {
        char cr[XS_TIME_ISO_MAX], at[XS_TIME_ISO_MAX];
        sim__time_format_7(f->created, cr);
        sim__time_format_7(a->at, at);
        json_object_set_new(j, "SendWithObject", json_false());
        json_object_set_new(j, "Name", json_string(f->name));
        json_object_set_new(j, "Size", json_integer((json_int_t)f->size));
        json_object_set_new(j, "CreatedDateUtc", json_string(cr));
        json_object_set_new(j, "AssociationDateUtc", json_string(at));
    }
    json_object_set_new(j, "FileId", json_string(fid));
    json_object_set_new(j, "ObjectId", json_string(oid));
    json_object_set_new(j, "ObjectType", json_string(a->type));
    json_object_set_new(j, "ObjectGroup", json_string(a->group));
    return j;
}

json_t *sim__files_json(sim_tenant *t)
{
    struct sim_files *fs = t->files;
    json_t *folders = json_array(), *files = json_array();
    for (size_t i = 0; fs != NULL && i < fs->nfolders; i++) {
        const sim_folder *d = fs->folders[i];
        char id[XS_UUID_STR];
        xs_uuid_format(&d->id, id);
        json_array_append_new(folders,
                              json_pack("{s:s,s:s,s:b,s:I}", "id", id, "name", d->name, "is_inbox",
                                        d->inbox, "file_count", (json_int_t)folder_count(fs, d)));
    }
    for (size_t i = 0; fs != NULL && i < fs->nfiles; i++) {
        const sim_file *f = fs->files[i];
        char id[XS_UUID_STR], folder[XS_UUID_STR];
        xs_uuid_format(&f->id, id);
        xs_uuid_format(&f->folder, folder);
        json_t *as = json_array();
        for (size_t k = 0; k < f->nassocs; k++) {
            char oid[XS_UUID_STR];
            xs_uuid_format(&f->assocs[k].object, oid);
            json_array_append_new(as,
                                  json_pack("{s:s,s:s,s:s}", "object_id", oid, "object_group",
                                            f->assocs[k].group, "object_type", f->assocs[k].type));
        }
        json_array_append_new(files, json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:o}", "id", id, "name",
                                               f->name, "folder_id", folder, "size",
                                               (json_int_t)f->size, "mime_type", f->mime, "sha256",
                                               f->sha, "associations", as));
    }
    return json_pack("{s:s,s:o,s:o}", "tenant", t->ids, "folders", folders, "files", files);
}

/* ------------------------------------------------------------------ names */

/* name_check tells why a folder or file name cannot be used (NULL: it can): empty, longer
 * than the limit, not UTF-8, or holding a control character or one of \ / : * ? " < > |. */
static const char *name_check(sim_call *c, const char *name, size_t len)
{
    json_t *utf8 = json_stringn(name, len);
    if (utf8 == NULL || memchr(name, '\0', len) != NULL) {
        json_decref(utf8);
        return "Name is not valid UTF-8 text";
    }
    json_decref(utf8);
    if (len == 0) {
        return "Name is required";
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch < 0x20 || ch == 0x7f || strchr("\\/:*?\"<>|", ch) != NULL) {
            return "Name contains one or more bad characters";
        }
    }
    char *copy = strndup(name, len);
    size_t chars = copy != NULL ? sim__utf8_len(copy) : len;
    free(copy);
    if ((int64_t)chars > c->set.files_name_max) {
        return "Name is too long";
    }
    return NULL;
}

/* extension writes the lowercase extension of name (after its last dot) into out, "" when
 * it has none. */
static void extension(const char *name, char out[16])
{
    const char *dot = strrchr(name, '.');
    size_t n = dot != NULL ? strlen(dot + 1) : 0;
    if (n == 0 || n >= 16) {
        out[0] = '\0';
        if (n >= 16) {
            snprintf(out, 16, "%.15s", dot + 1);
        }
        return;
    }
    for (size_t i = 0; i <= n; i++) {
        char ch = dot[1 + i];
        out[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    }
}

static bool extension_allowed(const sim_call *c, const char *ext)
{
    char key[20];
    snprintf(key, sizeof(key), ",%s,", ext);
    return ext[0] != '\0' && strchr(ext, ',') == NULL && strstr(c->set.files_types, key) != NULL;
}

/* file_name_ok checks a file's name (refusing the call when it is unusable): the name
 * rules, then an allowed extension. rename names the file being renamed (Xero's "Rename
 * failed" form), or is NULL for an upload. */
static bool file_name_ok(sim_call *c, const char *name, size_t len, const sim_file *rename)
{
    const char *why = name_check(c, name, len);
    char ext[16] = "";
    if (why == NULL) {
        extension(name, ext);
    }
    if (why == NULL && extension_allowed(c, ext)) {
        return true;
    }
    if (rename != NULL) {
        char id[XS_UUID_STR];
        xs_uuid_format(&rename->id, id);
        refuse(c, 400, "Rename", "Rename failed", "Unable to rename %s to %.*s", id,
               (int)(len > 300 ? 300 : len), name);
    } else if (why != NULL) {
        invalid(c,
                "%s (at most %lld characters, none of \\ / : * ? \" < > | or control "
                "characters)",
                why, (long long)c->set.files_name_max);
    } else {
        invalid(c, "Extension: %s is not a valid File extension.", ext);
    }
    return false;
}

/* folder_name_ok checks a folder's new name against the name rules and the other folders'
 * names (case-insensitive); self is the folder being renamed, or NULL. */
static bool folder_name_ok(sim_call *c, struct sim_files *fs, const char *name,
                           const sim_folder *self)
{
    const char *why = name_check(c, name, strlen(name));
    if (why != NULL) {
        invalid(c, "%s", why);
        return false;
    }
    for (size_t i = 0; i < fs->nfolders; i++) {
        if (fs->folders[i] != self && strcasecmp(fs->folders[i]->name, name) == 0) {
            invalid(c, "A folder with the name %s already exists", name);
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------------ reading */

typedef enum {
    SORT_NAME,
    SORT_SIZE,
    SORT_CREATED,
    SORT_ASSOCIATED,
} sort_key;

typedef struct sort_item {
    const sim_file *f;
    const sim_assoc *a; /* associations only */
    size_t pos;         /* creation order: the tie-break */
} sort_item;

static int item_cmp(const sort_item *x, const sort_item *y, sort_key k)
{
    int r = 0;
    switch (k) {
    case SORT_NAME:
        r = strcasecmp(x->f->name, y->f->name);
        break;
    case SORT_SIZE:
        r = x->f->size < y->f->size ? -1 : x->f->size > y->f->size;
        break;
    case SORT_CREATED:
        r = x->f->created < y->f->created ? -1 : x->f->created > y->f->created;
        break;
    case SORT_ASSOCIATED:
        r = x->a->at < y->a->at ? -1 : x->a->at > y->a->at;
        break;
    }
    return r != 0 ? r : (x->pos < y->pos ? -1 : x->pos > y->pos);
}

/* sort_items orders items by k (a merge sort: stable, n log n). tmp holds n items. */
static void sort_items(sort_item *items, sort_item *tmp, size_t n, sort_key k, bool desc)
{
    if (n < 2) {
        return;
    }
    size_t h = n / 2;
    sort_items(items, tmp, h, k, desc);
    sort_items(items + h, tmp, n - h, k, desc);
    size_t i = 0, j = h, o = 0;
    while (i < h && j < n) {
        int r = item_cmp(&items[i], &items[j], k);
        tmp[o++] = (desc ? r > 0 : r <= 0) ? items[i++] : items[j++];
    }
    while (i < h) {
        tmp[o++] = items[i++];
    }
    while (j < n) {
        tmp[o++] = items[j++];
    }
    memcpy(items, tmp, n * sizeof(*items));
}

typedef struct paging {
    int64_t page, size;
    sort_key sort;
    bool desc;
} paging;

/* query_int reads a whole-number query parameter in [min, max]; false after refusing. */
static bool query_int(sim_call *c, const char *name, int64_t min, int64_t max, int64_t *out)
{
    const char *v = xs_http_req_query(c->req, name);
    if (v == NULL) {
        return true;
    }
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || *end != '\0' || n < min || n > max) {
        invalid(c, "%s must be a whole number from %lld to %lld", name, (long long)min,
                (long long)max);
        return false;
    }
    *out = n;
    return true;
}

/* paging_read reads pagesize, page, sort and direction; sorts names the sort values allowed
 * (NULL-terminated, matched case-insensitively; keys[i] for sorts[i]). */
static bool paging_read(sim_call *c, paging *p, const char *const *sorts, const sort_key *keys)
{
    p->page = 1;
    p->size = 100;
    p->sort = keys[0];
    p->desc = false;
    if (!query_int(c, "pagesize", 1, 100, &p->size) ||
        !query_int(c, "page", 1, INT32_MAX, &p->page)) {
        return false;
    }
    const char *sort = xs_http_req_query(c->req, "sort");
    if (sort != NULL) {
        size_t i = 0;
        while (sorts[i] != NULL && strcasecmp(sorts[i], sort) != 0) {
            i++;
        }
        if (sorts[i] == NULL) {
            invalid(c, "sort must be one of %s, %s, %s%s%s", sorts[0], sorts[1], sorts[2],
                    sorts[3] ? ", " : "", sorts[3] ? sorts[3] : "");
            return false;
        }
        p->sort = keys[i];
    }
    const char *dir = xs_http_req_query(c->req, "direction");
    if (dir != NULL) {
        if (strcasecmp(dir, "ASC") != 0 && strcasecmp(dir, "DESC") != 0) {
            invalid(c, "direction must be ASC or DESC");
            return false;
        }
        p->desc = strcasecmp(dir, "DESC") == 0;
    }
    return true;
}

/* page_out sorts items and returns the requested page of them as an array (new), with the
 * total in *total. full: the association form of /Associations/{ObjectId}. */
static json_t *page_out(sim_call *c, sort_item *items, size_t n, const paging *p, bool assocs)
{
    sort_item *tmp = malloc((n ? n : 1) * sizeof(*tmp));
    json_t *arr = json_array();
    if (tmp == NULL || arr == NULL) {
        free(tmp);
        json_decref(arr);
        return NULL;
    }
    sort_items(items, tmp, n, p->sort, p->desc);
    free(tmp);
    uint64_t from = (uint64_t)(p->page - 1) * (uint64_t)p->size;
    for (uint64_t i = from; i < n && i < from + (uint64_t)p->size; i++) {
        json_array_append_new(arr, assocs ? assoc_json(items[i].f, items[i].a, true)
                                          : file_json(c->s, items[i].f));
    }
    return arr;
}

static void get_files(sim_call *c, struct sim_files *fs)
{
    static const char *const sorts[] = {"CreatedDateUTC", "Name", "Size", NULL, NULL};
    static const sort_key keys[] = {SORT_CREATED, SORT_NAME, SORT_SIZE};
    paging p;
    if (!paging_read(c, &p, sorts, keys)) {
        return;
    }
    sort_item *items = malloc((fs->nfiles ? fs->nfiles : 1) * sizeof(*items));
    if (items == NULL) {
        sim__reply_problem(c, 500, "Internal Server Error", "out of memory");
        return;
    }
    for (size_t i = 0; i < fs->nfiles; i++) {
        items[i] = (sort_item){fs->files[i], NULL, i};
    }
    json_t *arr = page_out(c, items, fs->nfiles, &p, false);
    free(items);
    sim__reply_json(c, 200,
                    json_pack("{s:I,s:I,s:I,s:o*}", "TotalCount", (json_int_t)fs->nfiles, "Page",
                              (json_int_t)p.page, "PerPage", (json_int_t)p.size, "Items", arr));
}

static void get_object_assocs(sim_call *c, struct sim_files *fs, const xs_uuid *object)
{
    static const char *const sorts[] = {"CreatedDateUtc", "Name", "Size", "AssociationDateUtc",
                                        NULL};
    static const sort_key keys[] = {SORT_CREATED, SORT_NAME, SORT_SIZE, SORT_ASSOCIATED};
    paging p;
    if (!paging_read(c, &p, sorts, keys)) {
        return;
    }
    size_t n = 0, cap = 0;
    sort_item *items = NULL;
    for (size_t i = 0; i < fs->nfiles; i++) {
        const sim_file *f = fs->files[i];
        for (size_t k = 0; k < f->nassocs; k++) {
            if (memcmp(&f->assocs[k].object, object, sizeof(*object)) != 0) {
                continue;
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                sort_item *ni = realloc(items, cap * sizeof(*ni));
                if (ni == NULL) {
                    free(items);
                    sim__reply_problem(c, 500, "Internal Server Error", "out of memory");
                    return;
                }
                items = ni;
            }
            items[n] = (sort_item){f, &f->assocs[k], n};
            n++;
        }
    }
    json_t *arr = page_out(c, items, n, &p, true);
    free(items);
    if (arr == NULL) {
        sim__reply_problem(c, 500, "Internal Server Error", "out of memory");
        return;
    }
    sim__reply_json(c, 200, arr);
}

static void get_assoc_count(sim_call *c, struct sim_files *fs)
{
    const char *ids = xs_http_req_query(c->req, "ObjectIds");
    if (ids == NULL || ids[0] == '\0') {
        invalid(c, "ObjectIds is required: a comma-separated list of object ids");
        return;
    }
    json_t *out = json_object();
    const char *p = ids;
    while (out != NULL) {
        size_t n = strcspn(p, ",");
        char text[XS_UUID_STR + 8];
        xs_uuid id;
        if (n >= sizeof(text)) {
            n = sizeof(text) - 1;
        }
        memcpy(text, p, n);
        text[n] = '\0';
        if (!xs_uuid_parse(text, &id)) {
            json_decref(out);
            invalid(c, "ObjectIds: %s is not a valid id", text);
            return;
        }
        json_int_t count = 0;
        for (size_t i = 0; i < fs->nfiles; i++) {
            for (size_t k = 0; k < fs->files[i]->nassocs; k++) {
                count += memcmp(&fs->files[i]->assocs[k].object, &id, sizeof(id)) == 0;
            }
        }
        char canon[XS_UUID_STR];
        xs_uuid_format(&id, canon);
        json_object_set_new(out, canon, json_integer(count));
        p += strcspn(p, ",");
        if (*p == '\0') {
            break;
        }
        p++;
    }
    sim__reply_json(c, 200, out);
}

static void get_folders(sim_call *c, struct sim_files *fs)
{
    /* sort: Name, Size (the file count) or CreatedDateUTC, optionally followed by ASC or DESC
     * (the spec's example: "CreatedDateUTC DESC"); default: creation order, the Inbox first */
    const char *sort = xs_http_req_query(c->req, "sort");
    sort_key k = SORT_CREATED;
    bool desc = false;
    if (sort != NULL) {
        size_t n = strcspn(sort, " ");
        const char *dir = sort[n] == ' ' ? sort + n + 1 : "ASC";
        if (n == 4 && strncasecmp(sort, "Name", 4) == 0) {
            k = SORT_NAME;
        } else if (n == 4 && strncasecmp(sort, "Size", 4) == 0) {
            k = SORT_SIZE;
        } else if (!(n == 14 && strncasecmp(sort, "CreatedDateUTC", 14) == 0)) {
            invalid(c, "sort must be Name, Size or CreatedDateUTC, then optionally ASC or DESC");
            return;
        }
        if (strcasecmp(dir, "ASC") != 0 && strcasecmp(dir, "DESC") != 0) {
            invalid(c, "sort must be Name, Size or CreatedDateUTC, then optionally ASC or DESC");
            return;
        }
        desc = strcasecmp(dir, "DESC") == 0;
    }
    size_t n = fs->nfolders;
    size_t *order = malloc(n * sizeof(*order));
    size_t *counts = malloc(n * sizeof(*counts));
    json_t *arr = json_array();
    if (order == NULL || counts == NULL || arr == NULL) {
        free(order);
        free(counts);
        json_decref(arr);
        sim__reply_problem(c, 500, "Internal Server Error", "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        order[i] = i;
        counts[i] = folder_count(fs, fs->folders[i]);
    }
    /* insertion sort: a tenant has few folders */
    for (size_t i = 1; i < n; i++) {
        size_t v = order[i], j = i;
        while (j > 0) {
            const sim_folder *a = fs->folders[order[j - 1]], *b = fs->folders[v];
            int r = k == SORT_NAME ? strcasecmp(a->name, b->name)
                    : k == SORT_SIZE
                        ? (counts[order[j - 1]] > counts[v]) - (counts[order[j - 1]] < counts[v])
                        : (a->created > b->created) - (a->created < b->created);
            if (desc ? r >= 0 : r <= 0) {
                break;
            }
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, folder_json(fs, fs->folders[order[i]]));
    }
    free(order);
    free(counts);
    sim__reply_json(c, 200, arr);
}

/* ------------------------------------------------------------------ writing */

/* body_object parses a JSON object body; NULL after refusing. */
static json_t *body_object(sim_call *c, const char *body, size_t blen)
{
    char err[XS_JSON_ERR_MAX] = "the body is empty";
    json_t *j = blen > 0 ? xs_json_parse(body, blen, err) : NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        invalid(c, "The request body must be a JSON object: %s",
                blen > 0 && j != NULL ? "not an object" : err);
        return NULL;
    }
    return j;
}

/* body_name reads the "Name" member of a JSON object body; NULL after refusing. */
static const char *body_name(sim_call *c, const json_t *j, bool required)
{
    json_t *v = json_object_get(j, "Name");
    if (v == NULL && !required) {
        return "";
    }
    if (!json_is_string(v)) {
        invalid(c, "Name is required and must be text");
        return NULL;
    }
    return json_string_value(v);
}

static void post_folder(sim_call *c, sim_tenant *t, const char *body, size_t blen)
{
    struct sim_files *fs = t->files;
    json_t *j = body_object(c, body, blen);
    const char *name = j != NULL ? body_name(c, j, true) : NULL;
    if (name == NULL || !folder_name_ok(c, fs, name, NULL)) {
        json_decref(j);
        return;
    }
    sim_folder *d = calloc(1, sizeof(*d));
    if (d == NULL || (d->name = strdup(name)) == NULL ||
        push((void ***)&fs->folders, &fs->nfolders, &fs->capfolders, d) != XS_OK) {
        folder_free(d);
        json_decref(j);
        sim__reply_problem(c, 500, "Internal Server Error", "out of memory");
        return;
    }
    json_decref(j);
    sim__rng_uuid(&fs->rng, &d->id);
    d->created = sim__now(c->s);
    sim__reply_json(c, 200, folder_json(fs, d));
}

static void put_folder(sim_call *c, sim_tenant *t, sim_folder *d, const char *body, size_t blen)
{
    struct sim_files *fs = t->files;
    json_t *j = body_object(c, body, blen);
    const char *name = j != NULL ? body_name(c, j, true) : NULL;
    if (name != NULL && d->inbox && strcmp(name, d->name) != 0) {
        invalid(c, "The Inbox cannot be renamed");
        name = NULL;
    }
    if (name == NULL || !folder_name_ok(c, fs, name, d)) {
        json_decref(j);
        return;
    }
    char *copy = strdup(name);
    json_decref(j);
    if (copy == NULL) {
        sim__reply_problem(c, 500, "Internal Server Error", "out of memory");
        return;
    }
    free(d->name);
    d->name = copy;
    sim__reply_json(c, 200, folder_json(fs, d));
}

static void delete_folder(sim_call *c, sim_tenant *t, sim_folder *d, size_t pos)
{
    struct sim_files *fs = t->files;
    size_t n = folder_count(fs, d);
    if (d->inbox) {
        invalid(c, "The Inbox cannot be deleted");
    } else if (n > 0) {
        invalid(c, "Folder %s holds %zu file(s): move or delete them first", d->name, n);
    } else {
        remove_at((void **)fs->folders, &fs->nfolders, pos);
        folder_free(d);
        sim__reply_text(c, 204, "");
    }
}

/* part_text copies a text part (a form field) into out (cap bytes); false when it does not
 * fit or holds a NUL byte. */
static bool part_text(const xs_http_part *p, char *out, size_t cap)
{
    if (p->len >= cap || memchr(p->data, '\0', p->len) != NULL) {
        return false;
    }
    memcpy(out, p->data, p->len);
    out[p->len] = '\0';
    return true;
}

/* upload_mime decides a new file's MIME type: the "mimeType" field, else the file part's own
 * Content-Type unless it is the generic application/octet-stream, else the extension's. */
static void upload_mime(const xs_http_part *mime, const xs_http_part *file, const char *ext,
                        char out[128])
{
    out[0] = '\0';
    if (mime != NULL && part_text(mime, out, 128) && out[0] != '\0') {
        return;
    }
    const char *ct = file->ctype != NULL ? file->ctype : "";
    size_t n = strcspn(ct, "; ");
    if (n > 0 && strncasecmp(ct, "application/octet-stream", n) != 0) {
        snprintf(out, 128, "%.*s", (int)n, ct);
        return;
    }
    snprintf(out, 128, "application/octet-stream");
    for (size_t i = 0; i < sizeof(mime_types) / sizeof(mime_types[0]); i++) {
        if (strcmp(mime_types[i].ext, ext) == 0) {
            snprintf(out, 128, "%s", mime_types[i].mime);
        }
    }
}

/* part_find returns the first of the n parts called name (borrowed), or NULL. */
static const xs_http_part *part_find(const xs_http_part *parts, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(parts[i].name, name) == 0) {
            return &parts[i];
        }
    }
    return NULL;
}

static void upload_parts(sim_call *c, sim_tenant *t, const sim_folder *d, const xs_http_part *parts,
                         size_t np);

/* upload reads a multipart/form-data upload (xs_http_multipart, the one parser of them) and
 * stores its file into folder d. */
static void upload(sim_call *c, sim_tenant *t, const sim_folder *d, const char *body, size_t blen)
{
    xs_http_part parts[XS_HTTP_PARTS_MAX];
    size_t n = 0;
    char why[256];
    const char *ct = xs_http_req_header(c->req, "Content-Type");
    if (ct == NULL || strncasecmp(ct, "multipart/form-data", 19) != 0) {
        invalid(c,
                "The request is not a valid multipart/form-data upload: the Content-Type is "
                "%.80s, not multipart/form-data",
                ct != NULL ? ct : "missing");
        return;
    }
    if (xs_http_multipart(ct, body, blen, parts, &n, why) != XS_OK) {
        invalid(c, "The request is not a valid multipart/form-data upload: %s", why);
        return;
    }
    upload_parts(c, t, d, parts, n);
    xs_http_multipart_free(parts, n);
}

static void upload_parts(sim_call *c, sim_tenant *t, const sim_folder *d, const xs_http_part *parts,
                         size_t np)
{
    struct sim_files *fs = t->files;
    /* the file: the part with a filename (the SDKs name it "body"), else the part "body" */
    const xs_http_part *file = NULL;
    for (size_t i = 0; i < np && file == NULL; i++) {
        file = parts[i].filename != NULL ? &parts[i] : NULL;
    }
    file = file != NULL ? file : part_find(parts, np, "body");
    if (file == NULL) {
        invalid(c, "The upload has no file: send it as a part with a filename");
        return;
    }
    /* its name: the "name" field, else the "filename" field, else the part's filename */
    char name[1024];
    const xs_http_part *given = part_find(parts, np, "name");
    given = given != NULL ? given : part_find(parts, np, "filename");
    const char *fname = file->filename != NULL ? file->filename : "";
    if (given != NULL ? !part_text(given, name, sizeof(name))
                      : snprintf(name, sizeof(name), "%s", fname) >= (int)sizeof(name)) {
        invalid(c, "The file's name is too long or holds a NUL byte");
        return;
    }
    if (!file_name_ok(c, name, strlen(name), NULL)) {
        return;
    }
    if (file->len == 0) {
        invalid(c, "The file %s is empty", name);
        return;
    }
    if ((int64_t)file->len > c->set.files_max_size) {
        invalid(c, "The file %s is %zu bytes, over the largest file size of %lld bytes", name,
                file->len, (long long)c->set.files_max_size);
        return;
    }
    char ext[16];
    extension(name, ext);
    sim_file *f = calloc(1, sizeof(*f));
    if (f == NULL || (f->name = strdup(name)) == NULL || (f->data = malloc(file->len)) == NULL ||
        push((void ***)&fs->files, &fs->nfiles, &fs->capfiles, f) != XS_OK) {
        file_free(f);
        sim__reply_problem(c, 500, "Internal Server Error", "out of memory");
        return;
    }
    memcpy(f->data, file->data, file->len);
    f->size = file->len;
    xs_sha256_hex(f->data, f->size, f->sha);
    upload_mime(part_find(parts, np, "mimeType"), file, ext, f->mime);
    sim__rng_uuid(&fs->rng, &f->id);
    f->folder = d->id;
    f->created = f->updated = sim__now(c->s);
    sim__reply_json(c, 201, file_json(c->s, f));
}

static void put_file(sim_call *c, sim_tenant *t, sim_file *f, const char *body, size_t blen)
{
    struct sim_files *fs = t->files;
    json_t *j = body_object(c, body, blen);
    if (j == NULL) {
        return;
    }
    const char *name = body_name(c, j, false);
    json_t *fv = json_object_get(j, "FolderId");
    xs_uuid folder = f->folder;
    if (name == NULL) {
        json_decref(j);
        return;
    }
    if (fv != NULL && (!json_is_string(fv) || !xs_uuid_parse(json_string_value(fv), &folder) ||
                       folder_find(fs, &folder, NULL) == NULL)) {
        invalid(c, "FolderId is not the id of a folder");
        json_decref(j);
        return;
    }
    if (name[0] != '\0' && !file_name_ok(c, name, strlen(name), f)) {
        json_decref(j);
        return;
    }
    char *copy = name[0] != '\0' ? strdup(name) : NULL;
    if (name[0] != '\0' && copy == NULL) {
        json_decref(j);
        sim__reply_problem(c, 500, "Internal Server Error", "out of memory");
        return;
    }
    json_decref(j);
    if (copy != NULL) {
        free(f->name);
        f->name = copy;
    }
    f->folder = folder;
    f->updated = sim__now(c->s);
    sim__reply_json(c, 200, file_json(c->s, f));
}

/* object_type finds the object of group with id in t's accounting data and names its
 * ObjectType; NULL when t holds no such object of that group. */
static const char *object_type(sim_tenant *t, const char *group, const xs_uuid *id)
{
    if (strcmp(group, "Contact") == 0) {
        return sim__table_find(&t->t[SIM_CONTACT], id) != NULL ? "Business" : NULL;
    }
    if (strcmp(group, "Invoice") == 0) {
        const sim_invoice *inv = (const sim_invoice *)sim__table_find(&t->t[SIM_INVOICE], id);
        return inv == NULL ? NULL : inv->type == SIM_ACCREC ? "AccRec" : "Accpay";
    }
    if (strcmp(group, "Payment") == 0) {
        const sim_payment *p = (const sim_payment *)sim__table_find(&t->t[SIM_PAYMENT], id);
        return p == NULL ? NULL : p->ptype == 0 ? "AccRecPayment" : "AccPayPayment";
    }
    if (strcmp(group, "Account") == 0) {
        return sim__table_find(&t->t[SIM_ACCOUNT], id) != NULL ? "Account" : NULL;
    }
    if (strcmp(group, "BankTransaction") == 0) {
        const sim_banktx *b = (const sim_banktx *)sim__table_find(&t->t[SIM_BANKTX], id);
        if (b == NULL) {
            return NULL;
        }
        const char *bt = sim__bt_types[b->type];
        return strstr(bt, "TRANSFER") != NULL   ? "Transfer"
               : strncmp(bt, "RECEIVE", 7) == 0 ? "CashRec"
                                                : "CashPaid";
    }
    return NULL; /* groups the simulator keeps no records of */
}

/* enum_find returns the entry of list equal to v, ASCII case-insensitively (static), or NULL. */
static const char *enum_find(const char *const *list, const char *v)
{
    for (size_t i = 0; v != NULL && list[i] != NULL; i++) {
        if (strcasecmp(list[i], v) == 0) {
            return list[i];
        }
    }
    return NULL;
}

static void post_assoc(sim_call *c, sim_tenant *t, sim_file *f, const char *body, size_t blen)
{
    json_t *j = body_object(c, body, blen);
    if (j == NULL) {
        return;
    }
    const char *oid = xs_json_str_or(j, "ObjectId", NULL);
    const char *gv = xs_json_str_or(j, "ObjectGroup", NULL);
    json_t *tv = json_object_get(j, "ObjectType");
    const char *group = enum_find(object_groups, gv);
    const char *type = enum_find(object_types, json_string_value(tv));
    xs_uuid id;
    const char *actual = NULL;
    if (oid == NULL || !xs_uuid_parse(oid, &id)) {
        invalid(c, "ObjectId is required and must be an id");
    } else if (group == NULL) {
        invalid(c, "ObjectGroup is required and must be one of Account, BankTransaction, "
                   "Contact, CreditNote, Invoice, Item, ManualJournal, Overpayment, Payment, "
                   "Prepayment, Quote, Receipt");
    } else if (tv != NULL && type == NULL) {
        invalid(c, "ObjectType is not one of the Files API's object types");
    } else if ((actual = object_type(t, group, &id)) == NULL) {
        invalid(c, "Object is not a %s", group);
    } else if (type != NULL && strcmp(group, "Invoice") == 0 && strcmp(type, actual) != 0) {
        invalid(c, "ObjectType %s does not match the invoice, which is %s", type, actual);
    } else {
        for (size_t k = 0; k < f->nassocs; k++) {
            if (memcmp(&f->assocs[k].object, &id, sizeof(id)) == 0) {
                invalid(c, "The file is already associated with object %s", oid);
                json_decref(j);
                return;
            }
        }
        if (f->nassocs == f->capassocs) {
            size_t cap = f->capassocs ? f->capassocs * 2 : 4;
            sim_assoc *na = realloc(f->assocs, cap * sizeof(*na));
            if (na == NULL) {
                json_decref(j);
                sim__reply_problem(c, 500, "Internal Server Error", "out of memory");
                return;
            }
            f->assocs = na;
            f->capassocs = cap;
        }
        sim_assoc *a = &f->assocs[f->nassocs++];
        a->object = id;
        a->group = group;
        a->type = type != NULL ? type : actual;
        a->at = sim__now(c->s);
        sim__reply_json(c, 201, assoc_json(f, a, false));
    }
    json_decref(j);
}

/* ------------------------------------------------------------------ routing */

typedef enum {
    R_FOLDERS,       /* /Folders */
    R_FOLDER,        /* /Folders/{FolderId} */
    R_FILES,         /* /Files */
    R_FILE,          /* /Files/{FileId} (POST: /Files/{FolderId}) */
    R_CONTENT,       /* /Files/{FileId}/Content */
    R_FILE_ASSOCS,   /* /Files/{FileId}/Associations */
    R_FILE_ASSOC,    /* /Files/{FileId}/Associations/{ObjectId} */
    R_ASSOC_COUNT,   /* /Associations/Count */
    R_OBJECT_ASSOCS, /* /Associations/{ObjectId} */
    R_INBOX,         /* /Inbox */
} route_kind;

typedef struct route {
    route_kind kind;
    const char *name;    /* for counters: "/Files/{FileId}" */
    const char *methods; /* " GET POST " */
    char id[64], id2[64];
} route;

/* route_parse reads rest ("/Files/{id}/Associations") into r; false: no such path. */
static bool route_parse(const char *rest, route *r)
{
    char seg[4][64];
    int n = 0;
    const char *p = rest;
    while (*p == '/' && n < 4) {
        p++;
        size_t len = strcspn(p, "/");
        if (len == 0 || len >= sizeof(seg[0])) {
            return false;
        }
        memcpy(seg[n], p, len);
        seg[n++][len] = '\0';
        p += len;
    }
    if (*p != '\0' || n == 0) {
        return false;
    }
    memset(r, 0, sizeof(*r));
#define SEG(i, s) (strcasecmp(seg[i], s) == 0)
    if (SEG(0, "Folders") && n <= 2) {
        *r = n == 1 ? (route){R_FOLDERS, "/Folders", " GET POST ", "", ""}
                    : (route){R_FOLDER, "/Folders/{FolderId}", " GET PUT DELETE ", "", ""};
    } else if (SEG(0, "Inbox") && n == 1) {
        *r = (route){R_INBOX, "/Inbox", " GET ", "", ""};
    } else if (SEG(0, "Associations") && n == 2) {
        *r = SEG(1, "Count")
                 ? (route){R_ASSOC_COUNT, "/Associations/Count", " GET ", "", ""}
                 : (route){R_OBJECT_ASSOCS, "/Associations/{ObjectId}", " GET ", "", ""};
    } else if (SEG(0, "Files") && n == 1) {
        *r = (route){R_FILES, "/Files", " GET POST ", "", ""};
    } else if (SEG(0, "Files") && n == 2) {
        *r = (route){R_FILE, "/Files/{FileId}", " GET PUT DELETE POST ", "", ""};
    } else if (SEG(0, "Files") && n == 3 && SEG(2, "Content")) {
        *r = (route){R_CONTENT, "/Files/{FileId}/Content", " GET ", "", ""};
    } else if (SEG(0, "Files") && n >= 3 && SEG(2, "Associations")) {
        *r = n == 3 ? (route){R_FILE_ASSOCS, "/Files/{FileId}/Associations", " GET POST ", "", ""}
                    : (route){R_FILE_ASSOC, "/Files/{FileId}/Associations/{ObjectId}", " DELETE ",
                              "", ""};
    } else {
        return false;
    }
#undef SEG
    if (n >= 2) {
        snprintf(r->id, sizeof(r->id), "%s", seg[1]);
    }
    if (n == 4) {
        snprintf(r->id2, sizeof(r->id2), "%s", seg[3]);
    }
    return true;
}

static const char *const scopes_r[] = {"files", "files.read", NULL};
static const char *const scopes_w[] = {"files", NULL};

/* read_call serves a GET (t's lock held for reading). */
static void read_call(sim_call *c, sim_tenant *t, const route *r)
{
    struct sim_files *fs = t->files;
    xs_uuid id;
    bool has_id = xs_uuid_parse(r->id, &id);
    sim_file *f = has_id ? file_find(fs, &id, NULL) : NULL;
    sim_folder *d = has_id ? folder_find(fs, &id, NULL) : NULL;
    switch (r->kind) {
    case R_FOLDERS:
        get_folders(c, fs);
        break;
    case R_INBOX:
        sim__reply_json(c, 200, folder_json(fs, fs->folders[0]));
        break;
    case R_FOLDER:
        if (d == NULL) {
            missing(c, "Folder %s was not found", r->id);
        } else {
            sim__reply_json(c, 200, folder_json(fs, d));
        }
        break;
    case R_FILES:
        get_files(c, fs);
        break;
    case R_ASSOC_COUNT:
        get_assoc_count(c, fs);
        break;
    case R_OBJECT_ASSOCS:
        if (!has_id) {
            invalid(c, "ObjectId %s is not a valid id", r->id);
        } else {
            get_object_assocs(c, fs, &id);
        }
        break;
    default:
        if (f == NULL) {
            missing(c, "File %s was not found", r->id);
        } else if (r->kind == R_CONTENT) {
            sim__reply_bytes(c, 200, "application/octet-stream", f->data, f->size);
        } else if (r->kind == R_FILE_ASSOCS) {
            json_t *arr = json_array();
            for (size_t k = 0; k < f->nassocs; k++) {
                json_array_append_new(arr, assoc_json(f, &f->assocs[k], false));
            }
            sim__reply_json(c, 200, arr);
        } else {
            sim__reply_json(c, 200, file_json(c->s, f));
        }
        break;
    }
}

/* write_call serves a write (t's lock held for writing). */
static void write_call(sim_call *c, sim_tenant *t, const route *r, const char *body, size_t blen)
{
    struct sim_files *fs = t->files;
    bool post = strcmp(c->method, "POST") == 0, put = strcmp(c->method, "PUT") == 0;
    xs_uuid id;
    size_t pos = 0;
    bool has_id = xs_uuid_parse(r->id, &id);
    sim_folder *d = has_id ? folder_find(fs, &id, &pos) : NULL;
    sim_file *f = has_id && r->kind != R_FOLDER ? file_find(fs, &id, &pos) : NULL;
    if (r->kind == R_FOLDERS) {
        post_folder(c, t, body, blen);
    } else if (r->kind == R_FILES) {
        upload(c, t, fs->folders[0], body, blen);
    } else if (r->kind == R_FOLDER && d == NULL) {
        missing(c, "Folder %s was not found", r->id);
    } else if (r->kind == R_FOLDER) {
        if (put) {
            put_folder(c, t, d, body, blen);
        } else {
            delete_folder(c, t, d, pos);
        }
    } else if (r->kind == R_FILE && post) {
        if (d == NULL) {
            missing(c, "Folder %s was not found", r->id);
        } else {
            upload(c, t, d, body, blen);
        }
    } else if (f == NULL) {
        missing(c, "File %s was not found", r->id);
    } else if (r->kind == R_FILE && put) {
        put_file(c, t, f, body, blen);
    } else if (r->kind == R_FILE) {
        remove_at((void **)fs->files, &fs->nfiles, pos);
        file_free(f);
        sim__reply_text(c, 204, "");
    } else if (r->kind == R_FILE_ASSOCS) {
        post_assoc(c, t, f, body, blen);
    } else {
        xs_uuid oid;
        size_t k = 0;
        bool ok = xs_uuid_parse(r->id2, &oid);
        while (ok && k < f->nassocs && memcmp(&f->assocs[k].object, &oid, sizeof(oid)) != 0) {
            k++;
        }
        if (!ok || k == f->nassocs) {
            missing(c, "File %s has no association with object %s", r->id, r->id2);
            return;
        }
        memmove(&f->assocs[k], &f->assocs[k + 1], (f->nassocs - k - 1) * sizeof(*f->assocs));
        f->nassocs--;
        sim__reply_text(c, 204, "");
    }
}

/* files serves one Files API call (see sim__h_files), without the rate-limit headers. */
static void files(sim_call *c, const char *rest)
{
    route r;
    if (!route_parse(rest, &r)) {
        sim__reply_text(c, 404, "The resource you're looking for cannot be found");
        return;
    }
    snprintf(c->endpoint, sizeof(c->endpoint), "%.8s %s", c->method,
             r.kind == R_FILE && strcmp(c->method, "POST") == 0 ? "/Files/{FolderId}" : r.name);
    char m[16];
    snprintf(m, sizeof(m), " %.12s ", c->method);
    bool allowed = strstr(r.methods, m) != NULL;
    bool is_get = strcmp(c->method, "GET") == 0;
    /* the caller (server.c) holds world_lock for reading */
    if (!sim__api_admit(c, is_get ? scopes_r : scopes_w)) {
        return;
    }
    sim_tenant *t = c->tenant;
    size_t blen = 0;
    const char *body = xs_http_req_body(c->req, &blen);
    bool nil_id = false; /* no items to answer for: a nil_id fault changes nothing here */
    if (!sim__api_faults(c, is_get, body, blen, NULL, &nil_id)) {
        return;
    }
    if (!allowed) {
        char msg[160];
        snprintf(msg, sizeof(msg), "The requested resource does not support http method '%s'.",
                 c->method);
        sim__reply_json(c, 405, json_pack("{s:s}", "Message", msg));
        return;
    }
    if (c->fault == SIM_FAULT_SLOW && is_get) {
        sim__hang(c->s, c->set.hang_ms);
    }
    if (is_get) {
        pthread_rwlock_rdlock(&t->lock);
        read_call(c, t, &r);
        pthread_rwlock_unlock(&t->lock);
        return;
    }
    bool idem_on = false;
    if (!sim__idem_open(c, t, body, blen, &idem_on)) {
        return;
    }
    pthread_rwlock_wrlock(&t->lock);
    write_call(c, t, &r, body, blen);
    pthread_rwlock_unlock(&t->lock);
    if (idem_on) {
        sim__idem_close(c, t, true);
    }
}

void sim__h_files(sim_call *c, const char *rest)
{
    files(c, rest);
    sim__api_finish(c);
}
