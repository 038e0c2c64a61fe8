-- 0005_bank_transaction_status: a bank transaction may be VOIDED in Xero (the Accounting
-- API's BankTransaction.Status is AUTHORISED, DELETED or VOIDED), and the read-only mirror
-- must hold every status Xero sends.
ALTER TABLE app.bank_transactions DROP CONSTRAINT bank_transactions_status_check;
ALTER TABLE app.bank_transactions ADD CONSTRAINT bank_transactions_status_check
    CHECK (status IN ('AUTHORISED', 'DELETED', 'VOIDED'));
COMMENT ON COLUMN app.bank_transactions.status IS
    'AUTHORISED, DELETED or VOIDED, as in Xero.';
