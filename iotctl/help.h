/*
 * help.h - usage text and command lookup for iotctl, generated from the command table.
 *
 * A "prefix" is a run of leading argv words that begins at least one command's words: "device"
 * (a noun) or "group member". Help is printed for the whole table, for a prefix (its verbs) or
 * for one command (its parameters), so adding a command to ctl_commands documents it here too.
 */
#ifndef IOTCTL_HELP_H
#define IOTCTL_HELP_H

#include "ctl_commands.h"

#include <stddef.h>
#include <stdio.h>

/* How many leading words of argv are, word for word, the beginning of some command's words. */
int iotctl_command_prefix(int argc, char *const argv[]);

/* "usage: iotctl [options] NOUN VERB ...", every command with its summary, the global options. */
void iotctl_help_all(FILE *out);

/* The commands under a prefix (e.g. "device"): their remaining words and summaries. */
void iotctl_help_prefix(FILE *out, int nwords, char *const words[]);

/* One command: a usage line built from its params, its summary, its arguments and options. */
void iotctl_help_command(FILE *out, const struct ctl_command *cmd);

/*
 * A one-sentence usage error for a word that continues no command after prefix words[0..nwords)
 * (word NULL: the prefix stops short of a command), with "did you mean" when a candidate is
 * close and the list of candidates.
 */
void iotctl_unknown_command(char *buf, size_t len, int nwords, char *const words[],
                            const char *word);

#endif
