/*
 * prompt.h - ask the operator for a secret on the terminal, never anywhere else.
 */
#ifndef IOTCTL_PROMPT_H
#define IOTCTL_PROMPT_H

#include "ctl_commands.h"

#include <stddef.h>

/*
 * An iotctl_prompt_fn (see args.h); ctx is unused. When stdin is a terminal, asks for the
 * param's value twice on stderr with echo off and returns 0 with a malloc'ed copy in *out when
 * both answers match and are non-empty. When stdin is not a terminal, returns IOT_EINVAL with a
 * sentence naming the param's flag: scripts and cron must never hang on a prompt.
 */
int iotctl_prompt_secret(void *ctx, const struct ctl_param *param, char **out, char *err,
                         size_t errlen);

#endif
