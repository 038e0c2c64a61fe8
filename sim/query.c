/*
 * query.c: list queries. `where` is parsed into a tree (Xero's C#-like filter language:
 * ==, !=, <, <=, >, >=, AND/&&, OR/||, NOT/!, parentheses, "strings", numbers, true, false,
 * null, Guid("..."), DateTime(y,m,d[,h,m,s]), .Contains/.StartsWith/.EndsWith and
 * .ToLower()/.ToUpper()). Equality tests on a kind's class fields (Status, Type,
 * ContactStatus, PaymentType) joined by AND become a class mask; the rest is evaluated per
 * record. A query with no residual filter, ordered by creation or by UpdatedDateUTC, pages
 * through the Fenwick trees without touching other records; anything else gathers and sorts.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"
#include "kinds.h"
#include "store.h"
#include "util.h"

/* ------------------------------------------------------------------ values */

typedef enum { V_NULL, V_STR, V_NUM, V_BOOL, V_TIME } vtype;

typedef struct val {
    vtype t;
    const char *s;
    xs_money m;
    bool b;
    xs_time tm;
} val;

/* ------------------------------------------------------------------ tree */

typedef enum { N_OR, N_AND, N_NOT, N_CMP, N_CALL, N_TRUTH } ntype;
typedef enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE } cmpop;
typedef enum { M_NONE, M_CONTAINS, M_STARTS, M_ENDS } method;

typedef struct operand {
    bool field;
    char *path; /* canonical, dot separated */
    int fold;   /* 0 none, 1 lower, 2 upper */
    val lit;
    char *lit_s; /* owned text of a string literal */
} operand;

typedef struct node {
    ntype t;
    struct node *a, *b;
    cmpop op;
    method m;
    operand l, r;
} node;

struct sim_where {
    node *residual;   /* NULL: nothing left to test per record */
    uint32_t mask;    /* classes allowed by the class tests */
    bool constrained; /* some class test was found */
};

static void node_free(node *n)
{
    if (n == NULL) {
        return;
    }
    node_free(n->a);
    node_free(n->b);
    free(n->l.path);
    free(n->r.path);
    free(n->l.lit_s);
    free(n->r.lit_s);
    free(n);
}

void sim__where_free(sim_where *w)
{
    if (w != NULL) {
        node_free(w->residual);
        free(w);
    }
}

/* ------------------------------------------------------------------ lexer */

typedef enum {
    T_END,
    T_IDENT,
    T_STR,
    T_NUM,
    T_LP,
    T_RP,
    T_COMMA,
    T_DOT,
    T_OP,
    T_AND,
    T_OR,
    T_NOT,
    T_BAD
} ttype;

typedef struct lexer {
    const char *p;
    ttype t;
    char text[512];
    cmpop op;
    const sim_kind_ops *ops;
    char *why;
    bool failed;
} lexer;

static void lex(lexer *L)
{
    const char *p = L->p;
    while (isspace((unsigned char)*p)) {
        p++;
    }
    L->text[0] = '\0';
    if (*p == '\0') {
        L->t = T_END;
        L->p = p;
        return;
    }
    char ch = *p;
    if (isalpha((unsigned char)ch) || ch == '_') {
        size_t n = 0;
        while ((isalnum((unsigned char)*p) || *p == '_') && n + 1 < sizeof(L->text)) {
            L->text[n++] = *p++;
        }
        L->text[n] = '\0';
        if (strcasecmp(L->text, "AND") == 0) {
            L->t = T_AND;
        } else if (strcasecmp(L->text, "OR") == 0) {
            L->t = T_OR;
        } else if (strcasecmp(L->text, "NOT") == 0) {
            L->t = T_NOT;
        } else {
            L->t = T_IDENT;
        }
    } else if (ch == '"') {
        size_t n = 0;
        p++;
        while (*p != '\0' && *p != '"' && n + 1 < sizeof(L->text)) {
            if (*p == '\\' && p[1] != '\0') {
                p++;
            }
            L->text[n++] = *p++;
        }
        L->text[n] = '\0';
        if (*p != '"') {
            L->t = T_BAD;
            L->p = p;
            return;
        }
        p++;
        L->t = T_STR;
    } else if (isdigit((unsigned char)ch) || (ch == '-' && isdigit((unsigned char)p[1]))) {
        size_t n = 0;
        L->text[n++] = *p++;
        while ((isdigit((unsigned char)*p) || *p == '.') && n + 1 < sizeof(L->text)) {
            L->text[n++] = *p++;
        }
        L->text[n] = '\0';
        L->t = T_NUM;
    } else if (ch == '(') {
        L->t = T_LP;
        p++;
    } else if (ch == ')') {
        L->t = T_RP;
        p++;
    } else if (ch == ',') {
        L->t = T_COMMA;
        p++;
    } else if (ch == '.') {
        L->t = T_DOT;
        p++;
    } else if (ch == '&' && p[1] == '&') {
        L->t = T_AND;
        p += 2;
    } else if (ch == '|' && p[1] == '|') {
        L->t = T_OR;
        p += 2;
    } else if (ch == '=' || ch == '!' || ch == '<' || ch == '>') {
        L->t = T_OP;
        if (ch == '=' && p[1] == '=') {
            L->op = OP_EQ;
            p += 2;
        } else if (ch == '=') {
            L->op = OP_EQ;
            p += 1;
        } else if (ch == '!' && p[1] == '=') {
            L->op = OP_NE;
            p += 2;
        } else if (ch == '!') {
            L->t = T_NOT;
            p += 1;
        } else if (ch == '<' && p[1] == '>') {
            L->op = OP_NE;
            p += 2;
        } else if (ch == '<' && p[1] == '=') {
            L->op = OP_LE;
            p += 2;
        } else if (ch == '<') {
            L->op = OP_LT;
            p += 1;
        } else if (ch == '>' && p[1] == '=') {
            L->op = OP_GE;
            p += 2;
        } else {
            L->op = OP_GT;
            p += 1;
        }
    } else {
        L->t = T_BAD;
    }
    L->p = p;
}

/* fail records the first error (fmt has one %s, given arg cut to 100 bytes). */
static void fail(lexer *L, const char *fmt, const char *arg)
{
    if (!L->failed) {
        char a[100];
        snprintf(a, sizeof(a), "%.99s", arg);
        snprintf(L->why, 200, fmt, a);
        L->failed = true;
    }
}

/* ------------------------------------------------------------------ parser */

static node *parse_or(lexer *L);

static const char *canonical_field(const sim_kind_ops *ops, const char *name)
{
    for (size_t i = 0; ops->fields[i] != NULL; i++) {
        if (strcasecmp(ops->fields[i], name) == 0) {
            return ops->fields[i];
        }
    }
    return NULL;
}

static bool parse_int(lexer *L, int *out)
{
    if (L->t != T_NUM) {
        fail(L, "Expected a number near '%s'", L->p);
        return false;
    }
    *out = atoi(L->text);
    lex(L);
    return true;
}

/* parse_literal reads a literal or returns false (leaving L) when the token is not one. */
static bool parse_literal(lexer *L, operand *o)
{
    memset(o, 0, sizeof(*o));
    if (L->t == T_STR) {
        o->lit_s = strdup(L->text);
        o->lit.t = V_STR;
        o->lit.s = o->lit_s;
        lex(L);
        return true;
    }
    if (L->t == T_NUM) {
        if (xs_money_parse(L->text, &o->lit.m) != XS_OK) {
            fail(L, "'%s' is not a valid number", L->text);
        }
        o->lit.t = V_NUM;
        lex(L);
        return true;
    }
    if (L->t != T_IDENT) {
        return false;
    }
    if (strcasecmp(L->text, "true") == 0 || strcasecmp(L->text, "false") == 0) {
        o->lit.t = V_BOOL;
        o->lit.b = strcasecmp(L->text, "true") == 0;
        lex(L);
        return true;
    }
    if (strcasecmp(L->text, "null") == 0) {
        o->lit.t = V_NULL;
        lex(L);
        return true;
    }
    if (strcasecmp(L->text, "Guid") == 0) {
        lex(L);
        if (L->t != T_LP) {
            fail(L, "Expected ( after Guid%s", "");
            return true;
        }
        lex(L);
        xs_uuid u;
        if (L->t != T_STR || !xs_uuid_parse(L->text, &u)) {
            fail(L, "'%s' is not a valid GUID", L->text);
            return true;
        }
        o->lit_s = strdup(L->text);
        o->lit.t = V_STR;
        o->lit.s = o->lit_s;
        lex(L);
        if (L->t != T_RP) {
            fail(L, "Expected ) after the GUID%s", "");
        }
        lex(L);
        return true;
    }
    if (strcasecmp(L->text, "DateTime") == 0) {
        lex(L);
        if (L->t != T_LP) {
            fail(L, "Expected ( after DateTime%s", "");
            return true;
        }
        lex(L);
        int parts[6] = {0, 1, 1, 0, 0, 0};
        int n = 0;
        while (n < 6) {
            if (!parse_int(L, &parts[n])) {
                return true;
            }
            n++;
            if (L->t == T_COMMA) {
                lex(L);
                continue;
            }
            break;
        }
        if (L->t != T_RP || n < 3) {
            fail(L, "DateTime takes (year, month, day[, hour, minute, second])%s", "");
            return true;
        }
        lex(L);
        char iso[40];
        snprintf(iso, sizeof(iso), "%04d-%02d-%02dT%02d:%02d:%02d", parts[0], parts[1], parts[2],
                 parts[3], parts[4], parts[5]);
        if (xs_time_parse_iso(iso, &o->lit.tm) != XS_OK) {
            fail(L, "'%s' is not a valid date", iso);
        }
        o->lit.t = V_TIME;
        return true;
    }
    return false;
}

/* parse_operand reads a literal or a field path with optional ToLower()/ToUpper() and a
 * final string method (returned through *m, with its argument in *arg). */
static bool parse_operand(lexer *L, operand *o, method *m, operand *arg)
{
    *m = M_NONE;
    if (parse_literal(L, o)) {
        return !L->failed;
    }
    if (L->t != T_IDENT) {
        fail(L, "Unexpected text near '%s'", L->p);
        return false;
    }
    memset(o, 0, sizeof(*o));
    o->field = true;
    const char *first = canonical_field(L->ops, L->text);
    if (first == NULL) {
        char msg[200];
        snprintf(msg, sizeof(msg), "No property or field '%.80s' exists in type '%s'", L->text,
                 L->ops->singular);
        fail(L, "%s", msg);
        return false;
    }
    char path[256];
    snprintf(path, sizeof(path), "%s", first);
    lex(L);
    while (L->t == T_DOT) {
        lex(L);
        if (L->t != T_IDENT) {
            fail(L, "Expected a name after '.'%s", "");
            return false;
        }
        char name[128];
        snprintf(name, sizeof(name), "%.100s", L->text);
        lex(L);
        if (L->t == T_LP) {
            lex(L);
            if (strcasecmp(name, "ToLower") == 0 || strcasecmp(name, "ToUpper") == 0) {
                if (L->t != T_RP) {
                    fail(L, "%s takes no arguments", name);
                    return false;
                }
                lex(L);
                o->fold = strcasecmp(name, "ToLower") == 0 ? 1 : 2;
                continue;
            }
            if (strcasecmp(name, "Contains") == 0) {
                *m = M_CONTAINS;
            } else if (strcasecmp(name, "StartsWith") == 0) {
                *m = M_STARTS;
            } else if (strcasecmp(name, "EndsWith") == 0) {
                *m = M_ENDS;
            } else {
                fail(L, "No applicable method '%s' exists", name);
                return false;
            }
            method dummy;
            operand none;
            if (!parse_operand(L, arg, &dummy, &none) || dummy != M_NONE) {
                fail(L, "Bad argument to %s", name);
                return false;
            }
            if (L->t != T_RP) {
                fail(L, "Expected ) after the argument of %s", name);
                return false;
            }
            lex(L);
            break;
        }
        size_t len = strlen(path);
        snprintf(path + len, sizeof(path) - len, ".%s", name);
    }
    o->path = strdup(path);
    return o->path != NULL;
}

static node *new_node(ntype t)
{
    node *n = calloc(1, sizeof(*n));
    if (n != NULL) {
        n->t = t;
    }
    return n;
}

static node *parse_primary(lexer *L)
{
    if (L->t == T_LP) {
        lex(L);
        node *n = parse_or(L);
        if (L->t != T_RP) {
            fail(L, "Expected ) near '%s'", L->p);
        } else {
            lex(L);
        }
        return n;
    }
    node *n = new_node(N_CMP);
    if (n == NULL) {
        fail(L, "out of memory%s", "");
        return NULL;
    }
    method m;
    if (!parse_operand(L, &n->l, &m, &n->r)) {
        return n;
    }
    if (m != M_NONE) {
        n->t = N_CALL;
        n->m = m;
        return n;
    }
    if (L->t != T_OP) {
        if (!n->l.field) {
            fail(L, "A literal alone is not a condition%s", "");
        }
        n->t = N_TRUTH;
        return n;
    }
    n->op = L->op;
    lex(L);
    method m2;
    operand none;
    if (parse_operand(L, &n->r, &m2, &none) && m2 != M_NONE) {
        fail(L, "A method call cannot be compared%s", "");
    }
    return n;
}

static node *parse_unary(lexer *L)
{
    if (L->t == T_NOT) {
        lex(L);
        node *n = new_node(N_NOT);
        if (n != NULL) {
            n->a = parse_unary(L);
        }
        return n;
    }
    return parse_primary(L);
}

static node *parse_and(lexer *L)
{
    node *left = parse_unary(L);
    while (L->t == T_AND && !L->failed) {
        lex(L);
        node *n = new_node(N_AND);
        if (n == NULL) {
            break;
        }
        n->a = left;
        n->b = parse_unary(L);
        left = n;
    }
    return left;
}

static node *parse_or(lexer *L)
{
    node *left = parse_and(L);
    while (L->t == T_OR && !L->failed) {
        lex(L);
        node *n = new_node(N_OR);
        if (n == NULL) {
            break;
        }
        n->a = left;
        n->b = parse_and(L);
        left = n;
    }
    return left;
}

/* ------------------------------------------------------------------ class extraction */

/* class_test tells whether n is Field == "value" on a class field, and its mask. */
static bool class_test(const sim_kind_ops *ops, const node *n, const char **field, uint32_t *mask)
{
    if (n->t != N_CMP || n->op != OP_EQ || n->l.fold != 0) {
        return false;
    }
    const operand *f = n->l.field ? &n->l : &n->r;
    const operand *v = n->l.field ? &n->r : &n->l;
    if (!f->field || v->field || v->lit.t != V_STR || strchr(f->path, '.') != NULL) {
        return false;
    }
    for (int k = 0; k < 3 && ops->class_fields[k] != NULL; k++) {
        if (strcmp(ops->class_fields[k], f->path) == 0) {
            *field = ops->class_fields[k];
            *mask = ops->class_mask(f->path, v->lit.s);
            return true;
        }
    }
    return false;
}

/* class_or tells whether n is an OR of class tests on one field, with the union mask. */
static bool class_or(const sim_kind_ops *ops, const node *n, const char **field, uint32_t *mask)
{
    if (n->t == N_OR) {
        const char *fa, *fb;
        uint32_t ma, mb;
        if (class_or(ops, n->a, &fa, &ma) && class_or(ops, n->b, &fb, &mb) && fa == fb) {
            *field = fa;
            *mask = ma | mb;
            return true;
        }
        return false;
    }
    return class_test(ops, n, field, mask);
}

/* extract walks the top-level AND chain, folding class tests into w->mask; it returns the
 * residual tree (taking over the others). */
static node *extract(const sim_kind_ops *ops, node *n, sim_where *w)
{
    if (n == NULL) {
        return NULL;
    }
    if (n->t == N_AND) {
        node *a = extract(ops, n->a, w);
        node *b = extract(ops, n->b, w);
        n->a = n->b = NULL;
        node_free(n);
        if (a == NULL) {
            return b;
        }
        if (b == NULL) {
            return a;
        }
        node *j = new_node(N_AND);
        if (j == NULL) {
            node_free(a);
            node_free(b);
            return NULL;
        }
        j->a = a;
        j->b = b;
        return j;
    }
    const char *field;
    uint32_t mask;
    if (class_or(ops, n, &field, &mask)) {
        w->mask &= mask;
        w->constrained = true;
        node_free(n);
        return NULL;
    }
    return n;
}

sim_where *sim__where_parse(const sim_kind_ops *ops, const char *text, char *why)
{
    lexer L = {.p = text, .ops = ops, .why = why};
    lex(&L);
    node *root = parse_or(&L);
    if (!L.failed && L.t != T_END) {
        fail(&L, "Unexpected text near '%s'", L.t == T_BAD ? L.p : L.text);
    }
    if (L.failed || root == NULL) {
        if (!L.failed) {
            snprintf(why, 200, "The where clause could not be parsed");
        }
        node_free(root);
        return NULL;
    }
    sim_where *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        node_free(root);
        snprintf(why, 200, "out of memory");
        return NULL;
    }
    w->mask = UINT32_MAX;
    w->residual = extract(ops, root, w);
    return w;
}

/* ------------------------------------------------------------------ evaluation */

static const json_t *json_path(const json_t *o, const char *path)
{
    char seg[128];
    const char *p = path;
    while (o != NULL && *p != '\0') {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof(seg)) {
            return NULL;
        }
        memcpy(seg, p, n);
        seg[n] = '\0';
        const json_t *next = json_object_get(o, seg);
        if (next == NULL && json_is_object(o)) {
            const char *k;
            json_t *v;
            json_object_foreach((json_t *)o, k, v)
            {
                if (strcasecmp(k, seg) == 0) {
                    next = v;
                    break;
                }
            }
        }
        o = next;
        p = dot ? dot + 1 : p + n;
    }
    return o;
}

static val value_of(const json_t *j)
{
    val v = {V_NULL, NULL, {0}, false, 0};
    if (j == NULL || json_is_null(j)) {
        return v;
    }
    if (xs_json_is_decimal(j) || json_is_integer(j)) {
        if (xs_json_to_money(j, &v.m) == XS_OK) {
            v.t = V_NUM;
        }
        return v;
    }
    if (json_is_boolean(j)) {
        v.t = V_BOOL;
        v.b = json_is_true(j);
        return v;
    }
    const char *s = xs_json_string_value(j, NULL);
    if (s != NULL) {
        if (strncmp(s, "/Date(", 6) == 0 && xs_time_parse_xero(s, &v.tm) == XS_OK) {
            v.t = V_TIME;
            return v;
        }
        if (s[0] == '\0') {
            return v; /* empty text is null to the filter */
        }
        v.t = V_STR;
        v.s = s;
    }
    return v;
}

typedef struct evalctx {
    sim_tenant *t;
    const sim_kind_ops *ops;
    const sim_rec *r;
    json_t *doc; /* rendered lazily */
    xs_time now;
} evalctx;

static val field_value(evalctx *e, const operand *o, char *buf, size_t cap)
{
    /* The record's id and UpdatedDateUTC are in its header: no need to render it (a keyset
     * page's tie-break, say, tests them on every record after the cursor). */
    if (strcasecmp(o->path, "UpdatedDateUTC") == 0) {
        return (val){V_TIME, NULL, {0}, false, e->r->updated};
    }
    if (o->fold == 0 && strcasecmp(o->path, e->ops->id_field) == 0 && cap >= XS_UUID_STR) {
        xs_uuid_format(&e->r->id, buf);
        return (val){V_STR, buf, {0}, false, 0};
    }
    if (e->doc == NULL) {
        sim_render_opts ro = {SIM_VIEW_FULL, true, e->now};
        e->doc = e->ops->render(e->t, e->r, &ro);
    }
    val v = value_of(json_path(e->doc, o->path));
    if (v.t == V_STR && o->fold != 0) {
        snprintf(buf, cap, "%s", v.s);
        for (char *p = buf; *p; p++) {
            *p = (char)(o->fold == 1 ? tolower((unsigned char)*p) : toupper((unsigned char)*p));
        }
        v.s = buf;
    }
    return v;
}

static int compare(val a, val b, bool *ok)
{
    *ok = true;
    if (a.t == V_STR && b.t == V_TIME) {
        if (xs_time_parse_any(a.s, &a.tm) == XS_OK) {
            a.t = V_TIME;
        }
    } else if (a.t == V_TIME && b.t == V_STR) {
        if (xs_time_parse_any(b.s, &b.tm) == XS_OK) {
            b.t = V_TIME;
        }
    } else if (a.t == V_STR && b.t == V_NUM) {
        if (xs_money_parse(a.s, &a.m) == XS_OK) {
            a.t = V_NUM;
        }
    } else if (a.t == V_NUM && b.t == V_STR) {
        if (xs_money_parse(b.s, &b.m) == XS_OK) {
            b.t = V_NUM;
        }
    }
    if (a.t != b.t) {
        *ok = false;
        return 0;
    }
    switch (a.t) {
    case V_STR:
        return strcasecmp(a.s, b.s);
    case V_NUM:
        return xs_money_cmp(a.m, b.m);
    case V_TIME:
        return a.tm < b.tm ? -1 : a.tm > b.tm;
    case V_BOOL:
        return (int)a.b - (int)b.b;
    case V_NULL:
        return 0;
    }
    return 0;
}

static bool eval(evalctx *e, const node *n)
{
    switch (n->t) {
    case N_OR:
        return eval(e, n->a) || eval(e, n->b);
    case N_AND:
        return eval(e, n->a) && eval(e, n->b);
    case N_NOT:
        return !eval(e, n->a);
    case N_TRUTH: {
        char buf[512];
        val v = field_value(e, &n->l, buf, sizeof(buf));
        return v.t == V_BOOL && v.b;
    }
    case N_CALL: {
        char buf[512];
        val v = field_value(e, &n->l, buf, sizeof(buf));
        if (v.t != V_STR || n->r.lit.t != V_STR) {
            return false;
        }
        size_t lv = strlen(v.s), la = strlen(n->r.lit.s);
        switch (n->m) {
        case M_CONTAINS:
            return sim__ci_contains(v.s, n->r.lit.s);
        case M_STARTS:
            return lv >= la && strncasecmp(v.s, n->r.lit.s, la) == 0;
        case M_ENDS:
            return lv >= la && strcasecmp(v.s + lv - la, n->r.lit.s) == 0;
        case M_NONE:
            break;
        }
        return false;
    }
    case N_CMP: {
        char b1[512], b2[512];
        val a = n->l.field ? field_value(e, &n->l, b1, sizeof(b1)) : n->l.lit;
        val b = n->r.field ? field_value(e, &n->r, b2, sizeof(b2)) : n->r.lit;
        if (a.t == V_NULL || b.t == V_NULL) {
            bool both = a.t == V_NULL && b.t == V_NULL;
            return n->op == OP_EQ ? both : (n->op == OP_NE ? !both : false);
        }
        bool ok;
        int c = compare(a, b, &ok);
        if (!ok) {
            return n->op == OP_NE;
        }
        switch (n->op) {
        case OP_EQ:
            return c == 0;
        case OP_NE:
            return c != 0;
        case OP_LT:
            return c < 0;
        case OP_LE:
            return c <= 0;
        case OP_GT:
            return c > 0;
        case OP_GE:
            return c >= 0;
        }
    }
    }
    return false;
}

/* ------------------------------------------------------------------ ordering */

typedef enum { ORD_CREATED, ORD_UPD, ORD_FIELDS } ordmode;

#define MAX_KEYS 4

typedef struct orderspec {
    ordmode mode;
    bool desc;
    int nkeys;
    char keys[MAX_KEYS][64];
    bool kdesc[MAX_KEYS];
} orderspec;

static xs_err parse_order(const sim_kind_ops *ops, const char *text, orderspec *o, char *why)
{
    memset(o, 0, sizeof(*o));
    if (text == NULL || text[0] == '\0') {
        o->mode = ORD_CREATED;
        return XS_OK;
    }
    const char *p = text;
    while (*p != '\0') {
        while (isspace((unsigned char)*p) || *p == ',') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        if (o->nkeys == MAX_KEYS) {
            snprintf(why, 200, "At most %d order keys are supported", MAX_KEYS);
            return XS_EINVAL;
        }
        char name[64];
        size_t n = 0;
        while ((isalnum((unsigned char)*p) || *p == '_' || *p == '.') && n + 1 < sizeof(name)) {
            name[n++] = *p++;
        }
        name[n] = '\0';
        const char *canon = NULL;
        for (size_t i = 0; ops->fields[i] != NULL && n > 0; i++) {
            char first[64];
            snprintf(first, sizeof(first), "%s", name);
            char *dot = strchr(first, '.');
            if (dot != NULL) {
                *dot = '\0';
            }
            if (strcasecmp(ops->fields[i], first) == 0) {
                canon = ops->fields[i];
            }
        }
        if (canon == NULL) {
            snprintf(why, 200, "No property or field '%.60s' exists in type '%s'", name,
                     ops->singular);
            return XS_EINVAL;
        }
        char *dot = strchr(name, '.');
        snprintf(o->keys[o->nkeys], sizeof(o->keys[0]), "%s%s", canon, dot ? dot : "");
        while (isspace((unsigned char)*p)) {
            p++;
        }
        if (strncasecmp(p, "DESC", 4) == 0 && !isalnum((unsigned char)p[4])) {
            o->kdesc[o->nkeys] = true;
            p += 4;
        } else if (strncasecmp(p, "ASC", 3) == 0 && !isalnum((unsigned char)p[3])) {
            p += 3;
        } else if (*p != '\0' && *p != ',') {
            snprintf(why, 200, "Bad order near '%.40s'", p);
            return XS_EINVAL;
        }
        o->nkeys++;
    }
    if (o->nkeys == 1 && strcmp(o->keys[0], "UpdatedDateUTC") == 0) {
        o->mode = ORD_UPD;
        o->desc = o->kdesc[0];
    } else if (o->nkeys == 0) {
        o->mode = ORD_CREATED;
    } else {
        o->mode = ORD_FIELDS;
    }
    return XS_OK;
}

typedef struct cand {
    uint32_t idx;
    xs_time t;
    uint32_t upos;
    val *keys;
    json_t *doc; /* keeps key strings alive */
} cand;

typedef struct sortctx {
    const orderspec *o;
} sortctx;

static int cand_cmp(const void *pa, const void *pb, void *arg)
{
    const cand *a = pa, *b = pb;
    const sortctx *sc = arg;
    const orderspec *o = sc->o;
    if (o->mode == ORD_UPD) {
        int c = a->t != b->t ? (a->t < b->t ? -1 : 1) : (a->upos < b->upos ? -1 : 1);
        return o->desc ? -c : c;
    }
    if (o->mode == ORD_FIELDS) {
        for (int k = 0; k < o->nkeys; k++) {
            val x = a->keys[k], y = b->keys[k];
            int c;
            if (x.t == V_NULL || y.t == V_NULL) {
                c = (x.t == V_NULL) - (y.t == V_NULL);
                c = -c; /* nulls first in ascending order */
            } else {
                bool ok;
                c = compare(x, y, &ok);
            }
            if (c != 0) {
                return o->kdesc[k] ? -c : c;
            }
        }
    }
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* ------------------------------------------------------------------ running */

static bool matches_search(sim_tenant *t, const sim_rec *r, const char *term)
{
    const sim_contact *c = (const sim_contact *)r;
    static const unsigned f[] = {C_NAME, C_FIRST, C_LAST, C_NUMBER, C_EMAIL};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        if (sim__ci_contains(sim__strs_get(&c->s, f[i]), term)) {
            return true;
        }
    }
    (void)t;
    return false;
}

static int idx_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* targeted gathers the candidates named by IDs, ContactIDs and InvoiceNumbers (sorted,
 * unique); *used is false when none of them was given. */
static xs_err targeted(sim_query *q, uint32_t **out, size_t *n, bool *used)
{
    sim_tenant *t = q->t;
    sim_table *tb = &t->t[q->ops->kind];
    *used = q->nids > 0 || q->ncontact_ids > 0 || q->nnumbers > 0;
    *out = NULL;
    *n = 0;
    if (!*used) {
        return XS_OK;
    }
    sim_idxlist l = {0};
    if (q->nids > 0) {
        for (size_t i = 0; i < q->nids; i++) {
            sim_rec *r = sim__table_find(tb, &q->ids[i]);
            if (r != NULL && sim__idxlist_add(&l, r->idx) != XS_OK) {
                free(l.v);
                return XS_ENOMEM;
            }
        }
    } else if (q->ncontact_ids > 0) {
        for (size_t i = 0; i < q->ncontact_ids; i++) {
            sim_rec *cr = sim__table_find(&t->t[SIM_CONTACT], &q->contact_ids[i]);
            if (cr == NULL) {
                continue;
            }
            const sim_contact *c = (const sim_contact *)cr;
            for (uint32_t k = 0; k < c->invoices.n; k++) {
                if (sim__idxlist_add(&l, c->invoices.v[k]) != XS_OK) {
                    free(l.v);
                    return XS_ENOMEM;
                }
            }
        }
    } else {
        for (size_t i = 0; i < q->nnumbers; i++) {
            uint32_t idx = sim__invoice_by_number(t, q->numbers[i]);
            if (idx != SIM_NONE && sim__idxlist_add(&l, idx) != XS_OK) {
                free(l.v);
                return XS_ENOMEM;
            }
        }
    }
    if (l.n > 1) {
        qsort(l.v, l.n, sizeof(*l.v), idx_cmp);
    }
    size_t o = 0;
    for (uint32_t i = 0; i < l.n; i++) {
        if (o == 0 || l.v[o - 1] != l.v[i]) {
            l.v[o++] = l.v[i];
        }
    }
    /* the other targeted filters narrow the set */
    size_t keep = 0;
    for (size_t i = 0; i < o; i++) {
        const sim_rec *r = tb->recs[l.v[i]];
        bool ok = true;
        if (q->ncontact_ids > 0 && q->nids > 0) {
            const sim_invoice *inv = (const sim_invoice *)r;
            ok = false;
            for (size_t k = 0; k < q->ncontact_ids && inv->contact != SIM_NONE; k++) {
                ok = ok || xs_uuid_eq(&sim__contact_at(t, inv->contact)->h.id, &q->contact_ids[k]);
            }
        }
        if (ok && q->nnumbers > 0 && (q->nids > 0 || q->ncontact_ids > 0)) {
            const sim_invoice *inv = (const sim_invoice *)r;
            bool any = false;
            for (size_t k = 0; k < q->nnumbers; k++) {
                any = any || sim__norm_eq(sim__strs_get(&inv->s, I_NUMBER), q->numbers[k]);
            }
            ok = any;
        }
        if (ok) {
            l.v[keep++] = l.v[i];
        }
    }
    *out = l.v;
    *n = keep;
    return XS_OK;
}

/* time_bound tells whether a where is "UpdatedDateUTC >= T OR ..." (or >): then every record
 * updated at or after *at passes it, whatever the rest says. */
static bool time_bound(const node *n, xs_time *at)
{
    if (n == NULL || n->t != N_OR || n->a == NULL || n->a->t != N_CMP) {
        return false;
    }
    const node *c = n->a;
    if (!c->l.field || c->l.fold != 0 || strcasecmp(c->l.path, "UpdatedDateUTC") != 0 ||
        c->r.field || c->r.lit.t != V_TIME || (c->op != OP_GE && c->op != OP_GT)) {
        return false;
    }
    *at = c->r.lit.tm + (c->op == OP_GT ? 1 : 0);
    return true;
}

/* admits tells whether record r passes q's class mask, If-Modified-Since, search and the
 * residual where (evaluated in ec, whose rendered doc the caller frees). */
static bool admits(const sim_query *q, uint32_t mask, const node *resid, evalctx *ec)
{
    const sim_rec *r = ec->r;
    return ((mask >> r->cls) & 1u) != 0 && !(q->has_ims && r->updated < q->ims) &&
           (q->search == NULL || matches_search(q->t, r, q->search)) &&
           (resid == NULL || eval(ec, resid));
}

xs_err sim__query_run(sim_query *q, sim_result *out, int64_t high_volume, char *why)
{
    const sim_kind_ops *ops = q->ops;
    sim_tenant *t = q->t;
    sim_table *tb = &t->t[ops->kind];
    orderspec o;
    xs_err e = parse_order(ops, q->order, &o, why);
    if (e != XS_OK) {
        return e;
    }
    uint32_t mask = q->mask;
    node *resid = NULL;
    if (q->where != NULL) {
        mask &= q->where->mask;
        resid = q->where->residual;
    }
    bool has_targets = q->nids > 0 || q->ncontact_ids > 0 || q->nnumbers > 0;
    bool efficient = resid == NULL && q->search == NULL && o.mode != ORD_FIELDS;
    if ((int64_t)tb->n > high_volume && (!efficient || (q->page == 0 && !has_targets))) {
        return XS_EUNSUPPORTED;
    }
    /* the first record of the page, saturating: a page far past the end is just empty */
    size_t off = 0, lim = SIZE_MAX;
    if (q->page > 0) {
        uint64_t before = (uint64_t)(q->page - 1);
        uint64_t size = q->page_size > 0 ? (uint64_t)q->page_size : SIM_PAGE_DEFAULT;
        off = before > (uint64_t)SIZE_MAX / size ? SIZE_MAX : (size_t)(before * size);
        lim = (size_t)size;
    }
    memset(out, 0, sizeof(*out));

    if (!has_targets && efficient && !(q->has_ims && o.mode == ORD_CREATED)) {
        uint32_t base, endc, total;
        const sim_fw *fw;
        if (o.mode == ORD_UPD) {
            fw = &tb->fu;
            uint32_t start = q->has_ims ? sim__log_lower(tb, q->ims) : 0;
            base = sim__fw_prefix(fw, mask, start);
            endc = sim__fw_prefix(fw, mask, tb->nlog);
        } else {
            fw = &tb->fc;
            base = 0;
            endc = sim__fw_prefix(fw, mask, tb->n);
        }
        total = endc - base;
        out->total = total;
        if (off >= total) {
            return XS_OK;
        }
        size_t cnt = total - off < lim ? total - off : lim;
        out->idx = malloc(cnt * sizeof(*out->idx));
        if (out->idx == NULL) {
            return XS_ENOMEM;
        }
        for (size_t i = 0; i < cnt; i++) {
            uint32_t k = o.mode == ORD_UPD && o.desc ? endc - 1 - (uint32_t)(off + i)
                                                     : base + (uint32_t)(off + i);
            uint32_t pos = sim__fw_select(fw, mask, k);
            out->idx[i] = o.mode == ORD_UPD ? tb->log[pos].idx : pos;
        }
        out->n = cnt;
        return XS_OK;
    }

    /* gather, filter, sort, slice */
    uint32_t *src = NULL;
    size_t nsrc = 0;
    bool used;
    if ((e = targeted(q, &src, &nsrc, &used)) != XS_OK) {
        return e;
    }
    if (!used && q->has_ims && o.mode == ORD_UPD && !o.desc) {
        /* The update log from If-Modified-Since on is in the order asked for (UpdatedDateUTC,
         * then position): count what passes and keep the page's, sorting nothing (a keyset
         * page with a tie-break where is this, on every page of a long pull). */
        uint32_t start = sim__log_lower(tb, q->ims);
        size_t live = (size_t)tb->nlog - start;
        out->idx = malloc(((lim < live ? lim : live) + 1) * sizeof(*out->idx));
        if (out->idx == NULL) {
            return XS_ENOMEM;
        }
        /* From split on every record of the classes passes (time_bound): counted and
         * picked out by the tree, as an unfiltered page is. */
        uint32_t split = tb->nlog;
        xs_time bound;
        if (q->search == NULL && time_bound(resid, &bound)) {
            split = sim__log_lower(tb, bound);
            split = split < start ? start : split;
        }
        size_t k = 0;
        for (uint32_t p = start; p < split; p++) {
            const sim_rec *r = tb->recs[tb->log[p].idx];
            if (r->upos != p) {
                continue;
            }
            evalctx ec = {t, ops, r, NULL, q->now};
            bool in = admits(q, mask, resid, &ec);
            json_decref(ec.doc);
            if (!in) {
                continue;
            }
            if (k >= off && out->n < lim) {
                out->idx[out->n++] = r->idx;
            }
            k++;
        }
        uint32_t b0 = sim__fw_prefix(&tb->fu, mask, split);
        uint32_t rest = sim__fw_prefix(&tb->fu, mask, tb->nlog) - b0;
        for (size_t i = k > off ? k : off; i < k + rest && out->n < lim; i++) {
            out->idx[out->n++] = tb->log[sim__fw_select(&tb->fu, mask, b0 + (uint32_t)(i - k))].idx;
        }
        out->total = (uint32_t)(k + rest);
        return XS_OK;
    }
    if (!used) {
        if (q->has_ims) {
            uint32_t start = sim__log_lower(tb, q->ims);
            src = malloc(((size_t)tb->nlog - start + 1) * sizeof(*src));
            if (src == NULL) {
                return XS_ENOMEM;
            }
            for (uint32_t p = start; p < tb->nlog; p++) {
                uint32_t idx = tb->log[p].idx;
                if (tb->recs[idx]->upos == p) {
                    src[nsrc++] = idx;
                }
            }
        } else {
            src = malloc(((size_t)tb->n + 1) * sizeof(*src));
            if (src == NULL) {
                return XS_ENOMEM;
            }
            for (uint32_t i = 0; i < tb->n; i++) {
                src[nsrc++] = i;
            }
        }
    }
    cand *cs = calloc(nsrc ? nsrc : 1, sizeof(*cs));
    val *keys =
        o.mode == ORD_FIELDS ? calloc((nsrc ? nsrc : 1) * (size_t)o.nkeys, sizeof(*keys)) : NULL;
    if (cs == NULL || (o.mode == ORD_FIELDS && keys == NULL)) {
        free(src);
        free(cs);
        free(keys);
        return XS_ENOMEM;
    }
    size_t nc = 0;
    for (size_t i = 0; i < nsrc; i++) {
        const sim_rec *r = tb->recs[src[i]];
        evalctx ec = {t, ops, r, NULL, q->now};
        if (!admits(q, mask, resid, &ec)) {
            json_decref(ec.doc);
            continue;
        }
        cand *c = &cs[nc++];
        c->idx = r->idx;
        c->t = r->updated;
        c->upos = r->upos;
        if (o.mode == ORD_FIELDS) {
            c->keys = keys + (nc - 1) * (size_t)o.nkeys;
            if (ec.doc == NULL) {
                sim_render_opts ro = {SIM_VIEW_FULL, true, q->now};
                ec.doc = ops->render(t, r, &ro);
            }
            for (int k = 0; k < o.nkeys; k++) {
                c->keys[k] = value_of(json_path(ec.doc, o.keys[k]));
            }
            c->doc = ec.doc;
        } else {
            json_decref(ec.doc);
        }
    }
    free(src);
    sortctx sc = {&o};
    if (o.mode != ORD_CREATED || used) {
        qsort_r(cs, nc, sizeof(*cs), cand_cmp, &sc);
    }
    out->total = (uint32_t)nc;
    if (off < nc) {
        size_t cnt = nc - off < lim ? nc - off : lim;
        out->idx = malloc(cnt * sizeof(*out->idx));
        if (out->idx == NULL) {
            e = XS_ENOMEM;
        } else {
            for (size_t i = 0; i < cnt; i++) {
                out->idx[i] = cs[off + i].idx;
            }
            out->n = cnt;
        }
    }
    for (size_t i = 0; i < nc; i++) {
        json_decref(cs[i].doc);
    }
    free(cs);
    free(keys);
    return e;
}

/* sim__where_class_constrained tells whether the where clause tests a class field. */
bool sim__where_class_constrained(const sim_where *w)
{
    return w != NULL && w->constrained;
}
