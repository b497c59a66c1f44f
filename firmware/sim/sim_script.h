/*
 * sim_script.h - answers for message types iotsim has no handler for, so that a new device type
 * can be demonstrated end to end without changing the simulator: scripted answers read from a
 * file (iotsim --answers FILE) and the generic answer (iotsim --generic). See iotsim(1),
 * ANSWERS FILE, for the format; in short, one line per message type:
 *
 *   TYPE WORD...                      OK with these args
 *   TYPE !error CODE [MESSAGE...]     ERROR code=CODE msg=MESSAGE
 *
 * where a word may hold $1..$9 (the request's args), $device (the device's id), $type (the
 * request's type) and $$ (a dollar), and the word $* stands for all of the request's args.
 * The script is read once, at start, and only read after that (one per fleet, shared by every
 * device).
 */
#ifndef SIM_SCRIPT_H
#define SIM_SCRIPT_H

#include <stddef.h>

#include "iotp/iotp.h"
#include "sim_handlers.h"

struct sim_script;

/* Read the answers file at path. Returns 0 with *out (free with sim_script_free), or -1 with a
 * sentence naming the file and line in err. */
int sim_script_load(const char *path, struct sim_script **out, char *err, size_t errlen);

void sim_script_free(struct sim_script *script);

/* Fill answer for request (sent to device_id) when the script names request->type: returns 1.
 * Returns 0, answer untouched, for a type the script does not name (or script NULL). */
int sim_script_answer(const struct sim_script *script, const char *device_id,
                      const struct iotp_frame *request, struct sim_answer *answer);

#endif
