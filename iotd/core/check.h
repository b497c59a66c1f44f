/*
 * check.h - the configuration check of iotd -t beyond what the parser refuses.
 */
#ifndef IOTD_CORE_CHECK_H
#define IOTD_CORE_CHECK_H

#include "base/config.h"

#include <stddef.h>

/* Check what start-up needs of cfg (parsed and finished) without starting anything: listen
 * hosts resolve, the TLS certificate and key load and match, the database URL parses and its
 * password file reads, the web root is a directory. IOT_OK, or IOT_EINVAL with a sentence in
 * err that names the key. */
int iotd_check_config(const struct iotd_config *cfg, char *err, size_t errlen);

#endif
