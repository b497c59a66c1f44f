/*
 * state_lock.h - one iotd per state directory.
 *
 * Two daemons on one state_dir would share its MariaDB (the second one's start-up stops the
 * first one's server), its event spool and its control socket. The first thing iotd does after
 * reading its configuration is take an exclusive flock(2) on _state_dir_/iotd.lock and keep the
 * descriptor open for the rest of its life; a second daemon finds the lock held and refuses to
 * start, naming the holder's pid (written into the file by the holder). The kernel drops the
 * lock when the holder exits, however it exits, so a crash never leaves a stale lock behind: the
 * file itself may stay.
 */
#ifndef IOTD_STATE_LOCK_H
#define IOTD_STATE_LOCK_H

#include <stddef.h>

/*
 * Create state_dir if needed (mode 0750) and lock it. Returns IOT_OK with *fd the open, locked
 * file (close-on-exec, so no child such as mariadbd inherits it; a fork without exec does, which
 * is how the lock survives daemonizing). Returns IOT_EBUSY with a sentence in err naming the
 * holder's pid when another process holds the lock, IOT_EIO when the file cannot be opened.
 */
int state_lock_take(const char *state_dir, int *fd, char *err, size_t errlen);

/* Write the calling process's pid into the lock file (after daemonizing: the pid that stays). */
void state_lock_write_pid(int fd);

#endif
