/*
 * seed.c: realistic records, deterministically. The same seed and tenant give the same
 * records (ids, names, amounts, dates) in every run. Records are built straight into the
 * store (no webhooks: they are the organisation's history), spread over the last span_days
 * days, and the update logs are re-sorted once at the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seed.h"
#include "kinds.h"
#include "store.h"
#include "util.h"

static const char *const firsts[] = {
    "James",     "Olivia",    "Liam",     "Emma",    "Noah",      "Ava",    "Oliver",    "Sophia",
    "Elijah",    "Isabella",  "William",  "Mia",     "Henry",     "Amelia", "Lucas",     "Harper",
    "Benjamin",  "Evelyn",    "Theodore", "Abigail", "Jack",      "Emily",  "Levi",      "Ella",
    "Alexander", "Charlotte", "Mason",    "Grace",   "Ethan",     "Chloe",  "Daniel",    "Zoe",
    "Matthew",   "Lily",      "Aiden",    "Hannah",  "Samuel",    "Nora",   "Sebastian", "Riley",
    "Aroha",     "Tama",      "Mere",     "Wiremu",  "Priya",     "Arjun",  "Mei",       "Hiro",
    "Fatima",    "Omar",      "Sione",    "Losa",    "Katherine", "Peter",  "Lisa",      "Simon",
    "Rachel",    "Tom",       "Helen",    "Mark",    "Sarah",     "Paul",   "Anna",      "David",
    "Laura",     "Chris",     "Julia",    "Andrew"};
static const char *const lasts[] = {
    "Smith",   "Williams", "Brown",     "Wilson", "Taylor",   "Jones",  "Thompson", "Anderson",
    "Walker",  "White",    "Harris",    "Martin", "King",     "Lee",    "Clarke",   "Robinson",
    "Wright",  "Campbell", "Scott",     "Young",  "Mitchell", "Kelly",  "Hall",     "Allen",
    "Stewart", "Ngata",    "Parata",    "Tane",   "Patel",    "Singh",  "Chen",     "Wang",
    "Nguyen",  "Kim",      "Tanaka",    "Fonoti", "Tupou",    "Murphy", "O'Brien",  "McDonald",
    "Fraser",  "Reid",     "Gray",      "Bell",   "Morgan",   "Cooper", "Ward",     "Hughes",
    "Warren",  "Parker",   "Gallagher", "Rubble", "Banner",   "Hart"};
static const char *const adjs[] = {
    "Harbour", "Summit",     "Pacific",  "Southern",   "Kiwi",      "Golden",  "Silver",
    "Red",     "Blue",       "Green",    "Coastal",    "Alpine",    "Central", "Northern",
    "United",  "Precision",  "Bright",   "Clearwater", "Ironbark",  "Kauri",   "Totara",
    "Rimu",    "Pohutukawa", "Tasman",   "Canterbury", "Waitemata", "Otago",   "Rangitoto",
    "Ruapehu", "Taupo",      "Heritage", "Modern",     "Urban",     "Rural",   "Capital",
    "First",   "Prime",      "Smart",    "Rapid",      "Trusty"};
static const char *const nouns[] = {
    "Logistics",  "Plumbing",    "Electrical", "Builders", "Bakery",      "Coffee",  "Design",
    "Consulting", "Accounting",  "Motors",     "Freight",  "Print",       "Media",   "Software",
    "Cleaning",   "Landscaping", "Catering",   "Florists", "Engineering", "Joinery", "Roofing",
    "Security",   "Couriers",    "Fitness",    "Dental",   "Legal",       "Realty",  "Traders",
    "Imports",    "Exports",     "Timber",     "Steel",    "Glass",       "Paints",  "Tyres",
    "Pharmacy",   "Optics",      "Brewing",    "Wines",    "Dairy"};
static const char *const industries[] = {
    "Services", "Solutions",  "Supplies", "Group",       "Partners", "Works",  "Systems",
    "Studio",   "Collective", "Company",  "Enterprises", "Holdings", "Trust",  "Co-op",
    "Agency",   "Associates", "Network",  "Industries",  "Labs",     "Centre", "Depot",
    "Outlet",   "Hub",        "Factory",  "Exchange"};
static const char *const suffixes[] = {"Ltd", "Limited", "& Co", "Pty Ltd", "NZ Ltd", "Inc",
                                       "LLC", "Trust",   "Ltd.", "Co",      "Group",  "PLC"};
static const char *const streets[] = {
    "Queen",      "High",        "Victoria",    "Albert",      "George", "King",    "Princes",
    "Ponsonby",   "Karangahape", "Lambton",     "Willis",      "Cuba",   "Colombo", "Riccarton",
    "Manchester", "Dominion",    "Great North", "Great South", "Tamaki", "Hobson",  "Nelson",
    "Symonds",    "Parnell",     "Remuera",     "Beach"};
static const char *const street_types[] = {"Street",  "Road",  "Avenue",   "Lane", "Place",
                                           "Terrace", "Drive", "Crescent", "Quay", "Parade"};
static const struct {
    const char *city, *region, *country, *area;
    int post;
} cities[] = {
    {"Auckland", "Auckland", "New Zealand", "09", 1010},
    {"Wellington", "Wellington", "New Zealand", "04", 6011},
    {"Christchurch", "Canterbury", "New Zealand", "03", 8011},
    {"Hamilton", "Waikato", "New Zealand", "07", 3204},
    {"Tauranga", "Bay of Plenty", "New Zealand", "07", 3110},
    {"Dunedin", "Otago", "New Zealand", "03", 9016},
    {"Napier", "Hawke's Bay", "New Zealand", "06", 4110},
    {"Nelson", "Nelson", "New Zealand", "03", 7010},
    {"Palmerston North", "Manawatu", "New Zealand", "06", 4410},
    {"Queenstown", "Otago", "New Zealand", "03", 9300},
    {"Sydney", "NSW", "Australia", "02", 2000},
    {"Melbourne", "VIC", "Australia", "03", 3000},
    {"Brisbane", "QLD", "Australia", "07", 4000},
    {"Palo Alto", "CA", "United States", "650", 94301},
    {"London", "", "United Kingdom", "020", 0},
};
static const char *const domains[] = {"gmail.com",  "xtra.co.nz", "outlook.com",
                                      "icloud.com", "yahoo.com",  "hotmail.com"};
static const struct {
    const char *desc;
    int cents_lo, cents_hi;
} products[] = {
    {"Consulting services", 9000, 25000},
    {"Website design", 50000, 500000},
    {"Monthly support retainer", 20000, 200000},
    {"Hardware: laptop", 120000, 350000},
    {"Office chairs", 15000, 60000},
    {"Printer toner cartridge", 4000, 15000},
    {"Catering for event", 30000, 300000},
    {"Freight - Auckland to Wellington", 8000, 90000},
    {"Plumbing call-out", 9500, 30000},
    {"Electrical inspection", 12000, 45000},
    {"Software licence (annual)", 25000, 240000},
    {"Cleaning services", 6000, 40000},
    {"Landscaping - labour", 5000, 9000},
    {"Timber framing 90x45 (per metre)", 450, 1200},
    {"Coffee beans 1kg", 2500, 4500},
    {"Training workshop", 40000, 150000},
    {"Travel expenses", 2000, 80000},
    {"Marketing campaign", 100000, 900000},
    {"Legal advice", 30000, 120000},
    {"Paint (10L)", 9000, 18000},
};
static const char *const sales_accts[] = {"200", "200", "200", "260"};
static const char *const buy_accts[] = {"310", "400", "408", "412", "429",
                                        "445", "461", "469", "489", "493"};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *pick(sim_rng *r, const char *const *list, size_t n)
{
    return list[sim__rng_below(r, n)];
}

static xs_money cents(int64_t c)
{
    xs_money m = {c * 10000};
    return m;
}

static void lowercase_alnum(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (; *in != '\0' && o + 1 < cap; in++) {
        char ch = *in;
        if (ch >= 'A' && ch <= 'Z') {
            out[o++] = (char)(ch + 32);
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) {
            out[o++] = ch;
        }
    }
    out[o] = '\0';
}

static xs_err seed_contact(sim_tenant *t, sim_rng *r, xs_time now, int64_t span, uint32_t serial)
{
    char name[300], first[64] = "", last[64] = "", email[320] = "", acct[32] = "", tax[32] = "";
    bool person = sim__rng_below(r, 100) < 40;
    if (person) {
        snprintf(first, sizeof(first), "%s", pick(r, firsts, N(firsts)));
        snprintf(last, sizeof(last), "%s", pick(r, lasts, N(lasts)));
        snprintf(name, sizeof(name), "%s %s", first, last);
        if (sim__contact_by_name(t, name, false) != SIM_NONE) {
            snprintf(name, sizeof(name), "%s %c. %s", first, (char)('A' + sim__rng_below(r, 26)),
                     last);
        }
        char lf[64], ll[64];
        lowercase_alnum(first, lf, sizeof(lf));
        lowercase_alnum(last, ll, sizeof(ll));
        snprintf(email, sizeof(email), "%s.%s%u@%s", lf, ll, (unsigned)(serial % 1000),
                 pick(r, domains, N(domains)));
    } else {
        const char *a = pick(r, adjs, N(adjs)), *n = pick(r, nouns, N(nouns));
        snprintf(name, sizeof(name), "%s %s %s", a, n, pick(r, suffixes, N(suffixes)));
        if (sim__contact_by_name(t, name, false) != SIM_NONE) {
            snprintf(name, sizeof(name), "%s %s %s %s", a, n, pick(r, industries, N(industries)),
                     pick(r, suffixes, N(suffixes)));
        }
        char dom[96];
        char an[64];
        lowercase_alnum(a, an, sizeof(an));
        lowercase_alnum(n, dom, sizeof(dom));
        snprintf(email, sizeof(email), "%s@%s%s.co.nz", sim__rng_below(r, 2) ? "accounts" : "info",
                 an, dom);
        if (sim__rng_below(r, 100) < 70) {
            snprintf(first, sizeof(first), "%s", pick(r, firsts, N(firsts)));
            snprintf(last, sizeof(last), "%s", pick(r, lasts, N(lasts)));
        }
    }
    if (sim__contact_by_name(t, name, false) != SIM_NONE) {
        size_t len = strlen(name);
        uint32_t k = serial;
        do {
            snprintf(name + len, sizeof(name) - len, " %u", (unsigned)++k);
        } while (sim__contact_by_name(t, name, false) != SIM_NONE);
    }
    if (sim__rng_below(r, 100) < 30) {
        snprintf(acct, sizeof(acct), "%c%c%05u", (char)('A' + sim__rng_below(r, 26)),
                 (char)('A' + sim__rng_below(r, 26)), (unsigned)sim__rng_below(r, 100000));
    }
    if (sim__rng_below(r, 100) < 25) {
        snprintf(tax, sizeof(tax), "%03u-%03u-%03u", (unsigned)sim__rng_below(r, 1000),
                 (unsigned)sim__rng_below(r, 1000), (unsigned)sim__rng_below(r, 1000));
    }
    size_t ci = sim__rng_below(r, N(cities));
    char street[128], pobox[32] = "", postcode[16], phone[32], mobile[32] = "";
    snprintf(street, sizeof(street), "%u %s %s", (unsigned)(1 + sim__rng_below(r, 400)),
             pick(r, streets, N(streets)), pick(r, street_types, N(street_types)));
    if (cities[ci].post > 0) {
        snprintf(postcode, sizeof(postcode), "%04d", cities[ci].post + (int)sim__rng_below(r, 40));
    } else {
        snprintf(postcode, sizeof(postcode), "EC%uA %u%c%c", (unsigned)(1 + sim__rng_below(r, 4)),
                 (unsigned)sim__rng_below(r, 10), (char)('A' + sim__rng_below(r, 26)),
                 (char)('A' + sim__rng_below(r, 26)));
    }
    snprintf(phone, sizeof(phone), "%03u-%04u", (unsigned)(200 + sim__rng_below(r, 800)),
             (unsigned)sim__rng_below(r, 10000));
    if (sim__rng_below(r, 100) < 50) {
        snprintf(mobile, sizeof(mobile), "021 %03u %04u", (unsigned)sim__rng_below(r, 1000),
                 (unsigned)sim__rng_below(r, 10000));
    }
    if (sim__rng_below(r, 100) < 35) {
        snprintf(pobox, sizeof(pobox), "PO Box %u", (unsigned)(1 + sim__rng_below(r, 99999)));
    }
    const char *vals[C_NSTR];
    for (int i = 0; i < C_NSTR; i++) {
        vals[i] = "";
    }
    vals[C_NAME] = name;
    vals[C_FIRST] = first;
    vals[C_LAST] = last;
    vals[C_EMAIL] = email;
    vals[C_ACCOUNTNUMBER] = acct;
    vals[C_TAXNUMBER] = tax;
    vals[C_ADDR1 + 0] = street;
    vals[C_ADDR1 + 4] = cities[ci].city;
    vals[C_ADDR1 + 5] = cities[ci].region;
    vals[C_ADDR1 + 6] = postcode;
    vals[C_ADDR1 + 7] = cities[ci].country;
    if (pobox[0] != '\0') {
        vals[C_ADDR0 + 0] = pobox;
        vals[C_ADDR0 + 4] = cities[ci].city;
        vals[C_ADDR0 + 5] = cities[ci].region;
        vals[C_ADDR0 + 6] = postcode;
        vals[C_ADDR0 + 7] = cities[ci].country;
    }
    vals[C_PHONE0 + 0] = phone;
    vals[C_PHONE0 + 1] = cities[ci].area;
    vals[C_PHONE0 + 2] = strcmp(cities[ci].country, "New Zealand") == 0 ? "64" : "";
    vals[C_PHONE0 + 2 * SIM_PHONE_FIELDS + 0] = mobile;
    sim_contact *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return XS_ENOMEM;
    }
    c->tax_number_type = c->sales_lat = c->purch_lat = -1;
    c->status = sim__rng_below(r, 100) < 3 ? SIM_CS_ARCHIVED : SIM_CS_ACTIVE;
    sim__rng_uuid(r, &c->h.id);
    c->h.created = now - (int64_t)sim__rng_below(r, (uint64_t)span);
    c->h.updated = c->h.created + (int64_t)sim__rng_below(r, (uint64_t)(now - c->h.created) + 1);
    c->h.cls = sim__contact_cls(c);
    xs_err e = sim__strs_build(&c->s, vals, C_NSTR);
    if (e == XS_OK) {
        e = sim__table_add(&t->t[SIM_CONTACT], &c->h);
    }
    if (e != XS_OK) {
        sim__contact_free(c);
        return e;
    }
    return sim__contact_index(t, c);
}

static xs_err seed_lines(sim_tenant *t, sim_rng *r, bool sales, bool discounts, sim_line **out,
                         uint32_t *nout)
{
    uint32_t n = 1 + (uint32_t)sim__rng_below(r, 5); /* 1..5, three on average */
    sim_line *lines = calloc(n, sizeof(*lines));
    if (lines == NULL) {
        return XS_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        sim_line *l = &lines[i];
        size_t pi = sim__rng_below(r, N(products));
        sim__rng_uuid(r, &l->id);
        uint64_t q = sim__rng_below(r, 100);
        if (q < 60) {
            l->quantity = cents(100 * (int64_t)(1 + sim__rng_below(r, 5)));
        } else if (q < 85) {
            l->quantity = cents(100 * (int64_t)(1 + sim__rng_below(r, 40)));
        } else {
            /* fractional quantities, up to four places (hours, metres) */
            l->quantity.units = (int64_t)(1 + sim__rng_below(r, 200000)) * 100;
        }
        int64_t lo = products[pi].cents_lo, hi = products[pi].cents_hi;
        int64_t c = lo + (int64_t)sim__rng_below(r, (uint64_t)(hi - lo + 1));
        l->unit = cents(c);
        if (sim__rng_below(r, 100) < 10) {
            /* a four-place unit amount */
            l->unit.units += (int64_t)sim__rng_below(r, 100) * 100;
        }
        if (discounts && sim__rng_below(r, 100) < 10) {
            static const int64_t rates[] = {500, 1000, 1250, 1500, 2000};
            l->discount_rate = cents(rates[sim__rng_below(r, N(rates))]);
            l->has_discount_rate = true;
        }
        const char *code =
            sales ? pick(r, sales_accts, N(sales_accts)) : pick(r, buy_accts, N(buy_accts));
        uint32_t a = sim__account_by_code(t, code);
        const char *tax = a != SIM_NONE ? sim__strs_get(&sim__account_at(t, a)->s, A_TAXTYPE)
                                        : (sales ? "OUTPUT2" : "INPUT2");
        const char *vals[L_NSTR] = {products[pi].desc, "", code, tax};
        xs_err e =
            sim__money_line(l->quantity, l->unit,
                            l->has_discount_rate ? l->discount_rate : xs_money_zero(), &l->amount);
        if (e == XS_OK) {
            e = sim__strs_build(&l->s, vals, L_NSTR);
        }
        if (e != XS_OK) {
            sim__lines_free(lines, i + 1);
            return e;
        }
        if (a != SIM_NONE) {
            sim__account_at(t, a)->uses++;
        }
    }
    *out = lines;
    *nout = n;
    return XS_OK;
}

/* active_contact picks a random active contact (SIM_NONE when there is none). */
static uint32_t active_contact(sim_tenant *t, sim_rng *r)
{
    sim_table *tb = &t->t[SIM_CONTACT];
    uint32_t n = sim__table_count(tb, 1u << SIM_CS_ACTIVE);
    if (n == 0) {
        return SIM_NONE;
    }
    return sim__fw_select(&tb->fc, 1u << SIM_CS_ACTIVE, (uint32_t)sim__rng_below(r, n));
}

static xs_err seed_invoice(sim_tenant *t, sim_rng *r, xs_time now, int64_t span)
{
    uint32_t contact = active_contact(t, r);
    if (contact == SIM_NONE) {
        return XS_OK;
    }
    sim_invoice *inv = calloc(1, sizeof(*inv));
    if (inv == NULL) {
        return XS_ENOMEM;
    }
    inv->type = sim__rng_below(r, 100) < 70 ? SIM_ACCREC : SIM_ACCPAY;
    bool sales = inv->type == SIM_ACCREC;
    uint64_t lt = sim__rng_below(r, 100);
    inv->lat = lt < 60 ? SIM_LAT_EXCLUSIVE : lt < 90 ? SIM_LAT_INCLUSIVE : SIM_LAT_NOTAX;
    inv->contact = contact;
    inv->rate.units = XS_MONEY_ONE;
    xs_time created = now - (int64_t)sim__rng_below(r, (uint64_t)span);
    inv->date = sim__day_start(created);
    inv->due = inv->date + (int64_t)(7 + sim__rng_below(r, 38)) * SIM_DAY_MS;
    inv->expected = inv->planned = inv->fully_paid = SIM_NO_TIME;
    inv->sent_to_contact = sales && sim__rng_below(r, 2);
    uint64_t st = sim__rng_below(r, 100);
    inv->status = st < 10   ? SIM_IS_DRAFT
                  : st < 15 ? SIM_IS_SUBMITTED
                  : st < 90 ? SIM_IS_AUTHORISED
                  : st < 95 ? SIM_IS_VOIDED
                            : SIM_IS_DELETED;
    xs_err e = seed_lines(t, r, sales, sales, &inv->lines, &inv->nlines);
    if (e != XS_OK) {
        free(inv);
        return e;
    }
    sim__lines_total(inv->lines, inv->nlines, inv->lat, &inv->subtotal, &inv->total_tax,
                     &inv->total, &inv->total_discount);
    char number[32], ref[32] = "";
    if (sales) {
        snprintf(number, sizeof(number), "INV-%05u", t->next_inv_number++);
        while (sim__invoice_by_number(t, number) != SIM_NONE) {
            snprintf(number, sizeof(number), "INV-%05u", t->next_inv_number++);
        }
        if (sim__rng_below(r, 100) < 40) {
            snprintf(ref, sizeof(ref), "PO-%05u", (unsigned)sim__rng_below(r, 100000));
        }
    } else {
        snprintf(number, sizeof(number), "%s-%06u", sim__rng_below(r, 2) ? "SI" : "BILL",
                 (unsigned)sim__rng_below(r, 1000000));
    }
    const char *vals[I_NSTR] = {number, ref, "", t->currency, ""};
    if ((e = sim__strs_build(&inv->s, vals, I_NSTR)) != XS_OK) {
        sim__invoice_free(inv);
        return e;
    }
    sim__rng_uuid(r, &inv->h.id);
    inv->h.created = created;
    inv->h.updated = created + (int64_t)sim__rng_below(r, 3600000);
    if (inv->h.updated > now) {
        inv->h.updated = now;
    }
    sim__invoice_recalc(t, inv);
    inv->h.cls = sim__invoice_cls(inv);
    if ((e = sim__table_add(&t->t[SIM_INVOICE], &inv->h)) != XS_OK) {
        sim__invoice_free(inv);
        return e;
    }
    sim_contact *c = sim__contact_at(t, contact);
    if ((e = sim__idxlist_add(&c->invoices, inv->h.idx)) != XS_OK) {
        return e;
    }
    if (inv->status != SIM_IS_VOIDED && inv->status != SIM_IS_DELETED) {
        sim__contact_count(t, contact, inv->type, 1);
    }
    return sim__invoice_index(t, inv);
}

/* seed_payment pays an authorised invoice in full or in part; false when none is left. */
static xs_err seed_payment(sim_tenant *t, sim_rng *r, xs_time now, uint32_t *cursor, bool *made)
{
    sim_table *tb = &t->t[SIM_INVOICE];
    *made = false;
    uint32_t mask = (1u << SIM_IS_AUTHORISED) | (1u << (6 + SIM_IS_AUTHORISED));
    uint32_t n = sim__table_count(tb, mask);
    if (n == 0) {
        return XS_OK;
    }
    /* walk the authorised invoices from a moving cursor so every one can be reached */
    uint32_t k = (*cursor + (uint32_t)sim__rng_below(r, 7)) % n;
    *cursor = k + 1;
    uint32_t idx = sim__fw_select(&tb->fc, mask, k);
    sim_invoice *inv = sim__invoice_at(t, idx);
    if (!xs_money_is_negative(inv->amount_due) && xs_money_is_zero(inv->amount_due)) {
        return XS_OK;
    }
    xs_money amount = inv->amount_due;
    if (sim__rng_below(r, 100) < 30) {
        xs_money half;
        xs_money_div(amount, (xs_money){2 * XS_MONEY_ONE}, 2, XS_ROUND_DOWN, &half);
        if (!xs_money_is_zero(half)) {
            amount = half;
        }
    }
    uint32_t bank = sim__account_by_code(t, sim__rng_below(r, 10) < 8 ? "090" : "091");
    sim_payment *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return XS_ENOMEM;
    }
    p->invoice = idx;
    p->account = bank;
    p->date = inv->date + (int64_t)sim__rng_below(r, 45) * SIM_DAY_MS;
    if (p->date > now) {
        p->date = sim__day_start(now);
    }
    p->amount = p->bank_amount = amount;
    p->rate.units = XS_MONEY_ONE;
    p->status = SIM_PS_AUTHORISED;
    p->ptype = inv->type == SIM_ACCREC ? 0 : 1;
    p->reconciled = sim__rng_below(r, 100) < 60;
    char ref[32] = "";
    if (sim__rng_below(r, 100) < 50) {
        snprintf(ref, sizeof(ref), "%s", sim__strs_get(&inv->s, I_NUMBER));
    }
    const char *vals[P_NSTR] = {ref};
    xs_err e = sim__strs_build(&p->s, vals, P_NSTR);
    if (e != XS_OK) {
        free(p);
        return e;
    }
    sim__rng_uuid(r, &p->h.id);
    p->h.created = p->date + (int64_t)sim__rng_below(r, SIM_DAY_MS);
    if (p->h.created > now) {
        p->h.created = now;
    }
    p->h.updated = p->h.created;
    p->h.cls = sim__payment_cls(p);
    if ((e = sim__table_add(&t->t[SIM_PAYMENT], &p->h)) != XS_OK) {
        sim__payment_free(p);
        return e;
    }
    if ((e = sim__idxlist_add(&inv->payments, p->h.idx)) != XS_OK) {
        return e;
    }
    if (bank != SIM_NONE) {
        sim__account_at(t, bank)->uses++;
    }
    sim__invoice_recalc(t, inv);
    if (p->h.updated > inv->h.updated) {
        inv->h.updated = p->h.updated;
    }
    sim__table_reclass(tb, &inv->h, sim__invoice_cls(inv));
    *made = true;
    return XS_OK;
}

static xs_err seed_banktx(sim_tenant *t, sim_rng *r, xs_time now, int64_t span)
{
    uint32_t contact = active_contact(t, r);
    sim_banktx *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return XS_ENOMEM;
    }
    b->type = sim__rng_below(r, 100) < 40 ? 0 : 3; /* RECEIVE or SPEND */
    b->status = SIM_BS_AUTHORISED;
    b->lat = sim__rng_below(r, 100) < 70 ? SIM_LAT_INCLUSIVE : SIM_LAT_EXCLUSIVE;
    b->reconciled = sim__rng_below(r, 100) < 30;
    b->contact = contact;
    b->bank = sim__account_by_code(t, "090");
    b->rate.units = XS_MONEY_ONE;
    xs_time created = now - (int64_t)sim__rng_below(r, (uint64_t)span);
    b->date = sim__day_start(created);
    xs_err e = seed_lines(t, r, b->type == 0, false, &b->lines, &b->nlines);
    if (e != XS_OK) {
        free(b);
        return e;
    }
    sim__lines_total(b->lines, b->nlines, b->lat, &b->subtotal, &b->total_tax, &b->total,
                     &(xs_money){0});
    char ref[32] = "";
    if (sim__rng_below(r, 100) < 60) {
        snprintf(ref, sizeof(ref), "%s %05u", b->type == 0 ? "DEP" : "EFTPOS",
                 (unsigned)sim__rng_below(r, 100000));
    }
    const char *vals[B_NSTR] = {ref, "", t->currency};
    if ((e = sim__strs_build(&b->s, vals, B_NSTR)) != XS_OK) {
        sim__banktx_free(b);
        return e;
    }
    sim__rng_uuid(r, &b->h.id);
    b->h.created = b->h.updated = created;
    b->h.cls = sim__banktx_cls(b);
    if ((e = sim__table_add(&t->t[SIM_BANKTX], &b->h)) != XS_OK) {
        sim__banktx_free(b);
        return e;
    }
    if (contact != SIM_NONE) {
        return sim__idxlist_add(&sim__contact_at(t, contact)->banktx, b->h.idx);
    }
    return XS_OK;
}

xs_err sim__seed(sim *s, sim_tenant *t, const sim_seed_spec *spec, json_t **report)
{
    (void)s;
    sim_rng r = {spec->seed ^ sim__hash64(t->id.b, 16, 0x73656564) ^
                 ((uint64_t)t->t[SIM_CONTACT].n << 32) ^ t->t[SIM_INVOICE].n};
    int64_t span = (spec->span_days > 0 ? spec->span_days : 730) * SIM_DAY_MS;
    xs_time now = spec->now;
    xs_err e = XS_OK;
    uint32_t made[4] = {0};
    uint32_t base = t->t[SIM_CONTACT].n;
    for (uint32_t i = 0; i < spec->contacts && e == XS_OK; i++) {
        e = seed_contact(t, &r, now, span, base + i);
        made[0] += e == XS_OK;
    }
    uint32_t inv_before = t->t[SIM_INVOICE].n;
    for (uint32_t i = 0; i < spec->invoices && e == XS_OK; i++) {
        e = seed_invoice(t, &r, now, span);
    }
    made[1] = t->t[SIM_INVOICE].n - inv_before;
    uint32_t cursor = 0, misses = 0;
    while (made[2] < spec->payments && e == XS_OK && misses < 64) {
        bool ok = false;
        e = seed_payment(t, &r, now, &cursor, &ok);
        if (ok) {
            made[2]++;
            misses = 0;
        } else {
            misses++;
        }
    }
    for (uint32_t i = 0; i < spec->banktx && e == XS_OK; i++) {
        e = seed_banktx(t, &r, now, span);
        made[3] += e == XS_OK;
    }
    for (int k = 0; k < SIM_NKINDS && e == XS_OK; k++) {
        e = sim__table_resort(&t->t[k]);
    }
    if (e == XS_OK && report != NULL) {
        *report = json_pack("{s:s,s:{s:i,s:i,s:i,s:i}}", "tenantId", t->ids, "created", "Contacts",
                            (int)made[0], "Invoices", (int)made[1], "Payments", (int)made[2],
                            "BankTransactions", (int)made[3]);
    }
    return e;
}
