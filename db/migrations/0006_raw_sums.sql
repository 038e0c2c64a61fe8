-- 0006_raw_sums: a memo of what a Xero record's raw text reads as, so a pull recognises a
-- record Xero sends again byte for byte without parsing it (lib/xs/domain.c, fetch_page).
ALTER TABLE sync.mappings ADD COLUMN xero_raw_sum text, ADD COLUMN xero_raw_checksum text;
COMMENT ON COLUMN sync.mappings.xero_raw_sum IS
    'xs_sync_raw_sum of the Xero record''s text as last pulled (an HMAC keyed by the canonical '
    'form''s version and the entity), or NULL.';
COMMENT ON COLUMN sync.mappings.xero_raw_checksum IS
    'The checksum of the canonical form that text reads as. When a record arrives with '
    'xero_raw_sum and this equals base_checksum, it is unchanged: nothing is parsed.';
