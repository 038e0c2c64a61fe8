/* fake_entities.c: see fake_entities.h. */
#include "engine/fake_entities.h"

const xs_entity_ops FAKE_CONTACTS = {.info = &xs_entity_table[XS_ENTITY_CONTACT],
                                     .xero_path = "/api.xro/2.0/Contacts",
                                     .xero_list = "Contacts",
                                     .pull_query = "includeArchived=true",
                                     .id_field = "ContactID",
                                     .ids_param = true};

const xs_entity_ops FAKE_INVOICES = {.info = &xs_entity_table[XS_ENTITY_INVOICE],
                                     .xero_path = "/api.xro/2.0/Invoices",
                                     .xero_list = "Invoices",
                                     .id_field = "InvoiceID",
                                     .ids_param = true,
                                     .type_field = "Type"};

const xs_entity_ops FAKE_PAYMENTS = {.info = &xs_entity_table[XS_ENTITY_PAYMENT],
                                     .xero_path = "/api.xro/2.0/Payments",
                                     .xero_list = "Payments",
                                     .id_field = "PaymentID"};

const xs_entity_ops FAKE_ACCOUNTS = {.info = &xs_entity_table[XS_ENTITY_ACCOUNT],
                                     .xero_path = "/api.xro/2.0/Accounts",
                                     .xero_list = "Accounts",
                                     .unpaged = true,
                                     .id_field = "AccountID",
                                     .type_field = "Type"};
