-- 0015_record_label: a record's name for people, so that a run's item errors and a conflict
-- say which record they are about ("Harbour Physio", "INV-0042") and not only its ids: the
-- dashboard (docs/UI.md) and GET /v1/runs/{id}, GET /v1/conflicts show it as `record`.
--
-- sync.record_label(entity, local_id): the local record's name: a contact's name; an invoice's
-- number, else its reference, else its type and date; a payment's reference, else its date and
-- amount; an account's code and name; a bank transaction's reference, else its type and date.
-- NULL when there is no such local record (a record that failed before it was written here).
CREATE FUNCTION sync.record_label(p_entity text, p_local_id uuid) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN CASE p_entity
        WHEN 'contact' THEN (SELECT c.name FROM app.contacts c WHERE c.id = p_local_id)
        WHEN 'invoice' THEN (SELECT coalesce(i.invoice_number, i.reference,
                                             i.type || ' of ' || coalesce(i.date::text, '?'))
                             FROM app.invoices i WHERE i.id = p_local_id)
        WHEN 'payment' THEN (SELECT coalesce(p.reference, p.amount::text || ' on ' || p.date::text)
                             FROM app.payments p WHERE p.id = p_local_id)
        WHEN 'account' THEN (SELECT coalesce(a.code || ' ', '') || a.name
                             FROM app.accounts a WHERE a.id = p_local_id)
        WHEN 'bank_transaction' THEN (SELECT coalesce(b.reference,
                                                      b.type || ' of ' || coalesce(b.date::text, '?'))
                                      FROM app.bank_transactions b WHERE b.id = p_local_id)
    END;
COMMENT ON FUNCTION sync.record_label(text, uuid) IS
    'A local record''s name for people (a contact''s name, an invoice''s number ...), or NULL.';
