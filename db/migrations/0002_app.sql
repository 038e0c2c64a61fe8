-- 0002_app: the host application's business data.
--
-- Conventions: uuid ids made by the database; every row carries organisation_id; money is
-- NUMERIC (never float) at Xero's precision (amounts 2 places, quantities and unit prices 4,
-- currency rates 6); times are timestamptz (the session time zone is UTC); accounting dates
-- are plain dates; enumerated text is CHECKed against the values Xero documents. updated_at
-- is kept by sync.touch_updated_at. Rows that refer to another row of the same organisation
-- do so through (organisation_id, id), so no row can point into another organisation.
-- Xero's ids do not live here: sync.mappings links each row to its Xero record.

CREATE TABLE app.organisations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (btrim(name) <> ''),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE app.organisations IS
    'A customer organisation of the host application; it may connect several Xero tenants.';

CREATE TABLE app.contacts (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organisation_id   uuid NOT NULL REFERENCES app.organisations (id) ON DELETE CASCADE,
    name              text NOT NULL CHECK (btrim(name) <> ''),
    first_name        text,
    last_name         text,
    email             text,
    contact_number    text,
    account_number    text,
    tax_number        text,
    phones            jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(phones) = 'array'),
    addresses         jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(addresses) = 'array'),
    is_customer       boolean NOT NULL DEFAULT false,
    is_supplier       boolean NOT NULL DEFAULT false,
    status            text NOT NULL DEFAULT 'ACTIVE'
                      CHECK (status IN ('ACTIVE', 'ARCHIVED', 'GDPRREQUEST')),
    default_currency  text CHECK (default_currency ~ '^[A-Z]{3}$'),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    email_key         text GENERATED ALWAYS AS (lower(email)) STORED,
    name_key          text GENERATED ALWAYS AS (sync.normalise_name(name)) STORED,
    UNIQUE (organisation_id, id)
);
COMMENT ON TABLE app.contacts IS 'Customers and suppliers (Xero Contacts).';
COMMENT ON COLUMN app.contacts.email_key IS
    'Kept by the database: the e-mail as contacts are matched by (lower case).';
COMMENT ON COLUMN app.contacts.name_key IS
    'Kept by the database: the name as contacts are matched by (sync.normalise_name). Stored, '
    'so matching a page of Xero records reads keys instead of computing one per row and pair.';
COMMENT ON COLUMN app.contacts.contact_number IS
    'The host application''s own customer or supplier number (Xero ContactNumber); a match '
    'key on first link.';
COMMENT ON COLUMN app.contacts.account_number IS
    'Xero AccountNumber: a user-defined reference shown in Xero, unique per Xero organisation.';
COMMENT ON COLUMN app.contacts.phones IS
    'JSON array of {"type": DEFAULT|DDI|MOBILE|FAX, "number", "area_code", "country_code"}.';
COMMENT ON COLUMN app.contacts.addresses IS
    'JSON array of {"type": POBOX|STREET, "line1".."line4", "city", "region", "postal_code", '
    '"country", "attention_to"}.';
COMMENT ON COLUMN app.contacts.status IS
    'ACTIVE, ARCHIVED (hidden in Xero, kept for history) or GDPRREQUEST (personal data to be '
    'erased).';
COMMENT ON COLUMN app.contacts.default_currency IS 'ISO 4217 code, e.g. NZD.';
CREATE INDEX contacts_org_updated ON app.contacts (organisation_id, updated_at);
CREATE INDEX contacts_org_number ON app.contacts (organisation_id, contact_number)
    WHERE contact_number IS NOT NULL;
CREATE INDEX contacts_org_account_number ON app.contacts (organisation_id, account_number)
    WHERE account_number IS NOT NULL;
CREATE INDEX contacts_org_email ON app.contacts (organisation_id, email_key)
    WHERE email_key IS NOT NULL;
CREATE INDEX contacts_org_name ON app.contacts (organisation_id, name_key);

CREATE TABLE app.accounts (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organisation_id      uuid NOT NULL REFERENCES app.organisations (id) ON DELETE CASCADE,
    code                 text,
    name                 text NOT NULL,
    type                 text NOT NULL CHECK (type ~ '^[A-Z]+$'),
    bank_account_number  text,
    status               text NOT NULL DEFAULT 'ACTIVE'
                         CHECK (status IN ('ACTIVE', 'ARCHIVED', 'DELETED')),
    currency_code        text CHECK (currency_code ~ '^[A-Z]{3}$'),
    tax_type             text,
    class                text CHECK (class IN ('ASSET', 'EQUITY', 'EXPENSE', 'LIABILITY',
                                               'REVENUE')),
    description          text,
    enable_payments      boolean NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organisation_id, id)
);
COMMENT ON TABLE app.accounts IS
    'The chart of accounts, mirrored from Xero (bank and general ledger accounts).';
COMMENT ON COLUMN app.accounts.code IS
    'Xero account code (bank accounts may have none). Xero keeps codes unique; it is not '
    'enforced here so that a pull in which two accounts swap codes cannot fail half-way.';
COMMENT ON COLUMN app.accounts.type IS
    'Xero account type (BANK, CURRENT, EXPENSE, REVENUE, SALES, ...); only its form is '
    'checked, since Xero adds types.';
COMMENT ON COLUMN app.accounts.enable_payments IS
    'Whether payments may be recorded against this (non-bank) account.';
CREATE INDEX accounts_org_code ON app.accounts (organisation_id, code) WHERE code IS NOT NULL;
CREATE INDEX accounts_org_type ON app.accounts (organisation_id, type);

CREATE TABLE app.invoices (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organisation_id    uuid NOT NULL REFERENCES app.organisations (id) ON DELETE CASCADE,
    contact_id         uuid NOT NULL,
    type               text NOT NULL CHECK (type IN ('ACCREC', 'ACCPAY')),
    invoice_number     text,
    reference          text,
    status             text NOT NULL DEFAULT 'DRAFT'
                       CHECK (status IN ('DRAFT', 'SUBMITTED', 'AUTHORISED', 'PAID', 'VOIDED',
                                         'DELETED')),
    date               date,
    due_date           date,
    currency_code      text CHECK (currency_code ~ '^[A-Z]{3}$'),
    currency_rate      numeric(18, 6) CHECK (currency_rate > 0),
    line_amount_types  text NOT NULL DEFAULT 'Exclusive'
                       CHECK (line_amount_types IN ('Exclusive', 'Inclusive', 'NoTax')),
    sub_total          numeric(18, 2) NOT NULL DEFAULT 0,
    total_tax          numeric(18, 2) NOT NULL DEFAULT 0,
    total              numeric(18, 2) NOT NULL DEFAULT 0,
    amount_due         numeric(18, 2) NOT NULL DEFAULT 0,
    amount_paid        numeric(18, 2) NOT NULL DEFAULT 0,
    amount_credited    numeric(18, 2) NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organisation_id, id),
    -- NO ACTION rather than RESTRICT: deleting an organisation removes its contacts and
    -- invoices in one statement, and the check must run after both cascades.
    FOREIGN KEY (organisation_id, contact_id) REFERENCES app.contacts (organisation_id, id)
);
COMMENT ON TABLE app.invoices IS
    'Sales invoices (ACCREC) and bills (ACCPAY); their lines are in app.invoice_lines.';
COMMENT ON COLUMN app.invoices.currency_rate IS
    'Units of currency_code per unit of the organisation''s base currency; NULL means Xero''s '
    'rate for the date.';
COMMENT ON COLUMN app.invoices.line_amount_types IS
    'Whether line amounts exclude tax (Exclusive), include it (Inclusive), or carry none.';
COMMENT ON COLUMN app.invoices.amount_credited IS 'Sum of credit notes allocated.';
CREATE INDEX invoices_contact ON app.invoices (contact_id);
CREATE INDEX invoices_org_number ON app.invoices (organisation_id, invoice_number)
    WHERE invoice_number IS NOT NULL;
CREATE INDEX invoices_org_status_date ON app.invoices (organisation_id, status, date);
CREATE INDEX invoices_org_updated ON app.invoices (organisation_id, updated_at);

-- app.fill_organisation_from_invoice lets a writer of lines and payments omit
-- organisation_id: it is taken from the invoice. A value given must agree with the invoice
-- (the composite foreign key checks it).
CREATE FUNCTION app.fill_organisation_from_invoice() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF NEW.organisation_id IS NULL THEN
        SELECT i.organisation_id INTO NEW.organisation_id
          FROM app.invoices i
         WHERE i.id = NEW.invoice_id;
    END IF;
    RETURN NEW;
END
$$;

CREATE TABLE app.invoice_lines (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organisation_id  uuid NOT NULL REFERENCES app.organisations (id) ON DELETE CASCADE,
    invoice_id       uuid NOT NULL,
    position         integer NOT NULL DEFAULT 0 CHECK (position >= 0),
    description      text,
    quantity         numeric(18, 4),
    unit_amount      numeric(18, 4),
    account_code     text,
    tax_type         text,
    tax_amount       numeric(18, 2),
    line_amount      numeric(18, 2),
    item_code        text,
    discount_rate    numeric(9, 4) CHECK (discount_rate >= 0 AND discount_rate <= 100),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (organisation_id, invoice_id) REFERENCES app.invoices (organisation_id, id)
        ON DELETE CASCADE
);
COMMENT ON TABLE app.invoice_lines IS
    'Line items of an invoice, in position order. A change to a line is a change of its '
    'invoice for the sync engine.';
COMMENT ON COLUMN app.invoice_lines.organisation_id IS
    'Filled from the invoice when omitted on insert.';
COMMENT ON COLUMN app.invoice_lines.discount_rate IS 'Percentage, 0 to 100.';
CREATE INDEX invoice_lines_invoice ON app.invoice_lines (invoice_id, position);

CREATE TABLE app.payments (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organisation_id  uuid NOT NULL REFERENCES app.organisations (id) ON DELETE CASCADE,
    invoice_id       uuid NOT NULL,
    account_code     text,
    date             date NOT NULL,
    amount           numeric(18, 2) NOT NULL,
    currency_rate    numeric(18, 6) CHECK (currency_rate > 0),
    reference        text,
    status           text NOT NULL DEFAULT 'AUTHORISED'
                     CHECK (status IN ('AUTHORISED', 'DELETED')),
    payment_type     text CHECK (payment_type IN ('ACCRECPAYMENT', 'ACCPAYPAYMENT',
                                                  'ARCREDITPAYMENT', 'APCREDITPAYMENT',
                                                  'AROVERPAYMENTPAYMENT',
                                                  'ARPREPAYMENTPAYMENT',
                                                  'APPREPAYMENTPAYMENT',
                                                  'APOVERPAYMENTPAYMENT')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organisation_id, id),
    -- An invoice with payments cannot be deleted on its own (NO ACTION); deleting the whole
    -- organisation takes the payments along through organisation_id.
    FOREIGN KEY (organisation_id, invoice_id) REFERENCES app.invoices (organisation_id, id)
);
COMMENT ON TABLE app.payments IS
    'Payments against invoices. Xero never changes a payment: it can only be deleted, so a '
    'local edit other than status DELETED cannot be pushed as an update.';
COMMENT ON COLUMN app.payments.account_code IS
    'Code of the bank account (or payments-enabled account) the money went through.';
COMMENT ON COLUMN app.payments.organisation_id IS
    'Filled from the invoice when omitted on insert.';
CREATE INDEX payments_invoice ON app.payments (invoice_id);
CREATE INDEX payments_org_updated ON app.payments (organisation_id, updated_at);

CREATE TABLE app.bank_transactions (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organisation_id    uuid NOT NULL REFERENCES app.organisations (id) ON DELETE CASCADE,
    type               text NOT NULL
                       CHECK (type IN ('RECEIVE', 'SPEND', 'RECEIVE-OVERPAYMENT',
                                       'RECEIVE-PREPAYMENT', 'SPEND-OVERPAYMENT',
                                       'SPEND-PREPAYMENT', 'RECEIVE-TRANSFER',
                                       'SPEND-TRANSFER')),
    contact_id         uuid,
    bank_account_code  text,
    date               date,
    reference          text,
    status             text NOT NULL DEFAULT 'AUTHORISED'
                       CHECK (status IN ('AUTHORISED', 'DELETED')),
    currency_code      text CHECK (currency_code ~ '^[A-Z]{3}$'),
    line_amount_types  text CHECK (line_amount_types IN ('Exclusive', 'Inclusive', 'NoTax')),
    sub_total          numeric(18, 2),
    total_tax          numeric(18, 2),
    total              numeric(18, 2),
    line_items         jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(line_items) = 'array'),
    is_reconciled      boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (organisation_id, contact_id) REFERENCES app.contacts (organisation_id, id)
        ON DELETE SET NULL (contact_id)
);
COMMENT ON TABLE app.bank_transactions IS
    'Read-only mirror of Xero bank transactions: written by the sync engine only, never '
    'pushed.';
COMMENT ON COLUMN app.bank_transactions.line_items IS
    'JSON array of lines as Xero gives them (description, quantity, unit_amount, '
    'account_code, tax_type, tax_amount, line_amount), amounts as decimal strings.';
COMMENT ON COLUMN app.bank_transactions.bank_account_code IS
    'Code of the bank account in app.accounts.';
CREATE INDEX bank_transactions_org_date ON app.bank_transactions (organisation_id, date);
CREATE INDEX bank_transactions_contact ON app.bank_transactions (contact_id)
    WHERE contact_id IS NOT NULL;

CREATE TRIGGER fill_organisation BEFORE INSERT ON app.invoice_lines
    FOR EACH ROW EXECUTE FUNCTION app.fill_organisation_from_invoice();
CREATE TRIGGER fill_organisation BEFORE INSERT ON app.payments
    FOR EACH ROW EXECUTE FUNCTION app.fill_organisation_from_invoice();

CREATE TRIGGER touch_updated_at BEFORE INSERT OR UPDATE ON app.organisations
    FOR EACH ROW EXECUTE FUNCTION sync.touch_updated_at();
CREATE TRIGGER touch_updated_at BEFORE INSERT OR UPDATE ON app.contacts
    FOR EACH ROW EXECUTE FUNCTION sync.touch_updated_at('email_key', 'name_key');
CREATE TRIGGER touch_updated_at BEFORE INSERT OR UPDATE ON app.accounts
    FOR EACH ROW EXECUTE FUNCTION sync.touch_updated_at();
CREATE TRIGGER touch_updated_at BEFORE INSERT OR UPDATE ON app.invoices
    FOR EACH ROW EXECUTE FUNCTION sync.touch_updated_at();
CREATE TRIGGER touch_updated_at BEFORE INSERT OR UPDATE ON app.invoice_lines
    FOR EACH ROW EXECUTE FUNCTION sync.touch_updated_at();
CREATE TRIGGER touch_updated_at BEFORE INSERT OR UPDATE ON app.payments
    FOR EACH ROW EXECUTE FUNCTION sync.touch_updated_at();
CREATE TRIGGER touch_updated_at BEFORE INSERT OR UPDATE ON app.bank_transactions
    FOR EACH ROW EXECUTE FUNCTION sync.touch_updated_at();
