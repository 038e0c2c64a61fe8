-- 0011_webhook_events_tenant: a tenant's webhook events by time.
--
-- The webhook safety net asks, for every due incremental run, when the connection's tenant
-- last received an event (services/orchestrator/hookwatch.c), and the statistics count the
-- tenant's events of the last day; without this index both read every event the tenant ever
-- received.
CREATE INDEX webhook_events_tenant_received ON sync.webhook_events (tenant_id, received_at);
