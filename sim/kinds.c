/* kinds.c: the table of kinds, and recording a change to a record (its class, its place in
 * the update log, its webhook). */

#include "kinds.h"
#include "store.h"
#include "webhooks.h"

const sim_kind_ops *sim__ops(sim_kind k)
{
    switch (k) {
    case SIM_CONTACT:
        return &sim__contact_ops;
    case SIM_INVOICE:
        return &sim__invoice_ops;
    case SIM_PAYMENT:
        return &sim__payment_ops;
    case SIM_ACCOUNT:
        return &sim__account_ops;
    case SIM_BANKTX:
    case SIM_NKINDS:
        break;
    }
    return &sim__banktx_ops;
}

static uint8_t cls_of(sim_kind k, const sim_rec *r)
{
    switch (k) {
    case SIM_CONTACT:
        return sim__contact_cls((const sim_contact *)r);
    case SIM_INVOICE:
        return sim__invoice_cls((const sim_invoice *)r);
    case SIM_PAYMENT:
        return sim__payment_cls((const sim_payment *)r);
    case SIM_ACCOUNT:
        return ((const sim_account *)r)->status;
    case SIM_BANKTX:
        return sim__banktx_cls((const sim_banktx *)r);
    case SIM_NKINDS:
        break;
    }
    return 0;
}

xs_err sim__touch(sim_batch *b, sim_kind k, sim_rec *r, bool create)
{
    sim_table *tb = &b->t->t[k];
    xs_err e;
    if (create) {
        r->updated = b->now > tb->last_t ? b->now : tb->last_t;
        r->created = r->updated;
        r->cls = cls_of(k, r);
        e = sim__table_add(tb, r);
    } else {
        e = sim__table_touch(tb, r, b->now, cls_of(k, r));
    }
    if (e == XS_OK && (k == SIM_CONTACT || k == SIM_INVOICE)) {
        sim__webhook_event(b->c->s, b->t, k, &r->id, create, r->updated);
    }
    return e;
}
