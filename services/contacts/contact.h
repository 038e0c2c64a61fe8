/* contact.h: the contact entity of xs-contacts (contact.c). */
#ifndef CONTACT_H
#define CONTACT_H

#include "engine/domain.h"

extern const xs_entity_ops contact_ops;

#endif
