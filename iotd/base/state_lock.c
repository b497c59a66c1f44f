/* state_lock.c - the state directory's lock file (see state_lock.h). */
#include "base/state_lock.h"

#include "iot_error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int state_lock_take(const char *state_dir, int *fd, char *err, size_t errlen)
{
    char path[4200], pid[32] = "";
    int rc = IOT_OK, lock_fd = -1;

    *fd = -1;
    if (mkdir(state_dir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "state_dir %s: %s", state_dir, strerror(errno));
        rc = IOT_EIO;
        goto out;
    }
    snprintf(path, sizeof(path), "%s/iotd.lock", state_dir);
    lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (lock_fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        rc = IOT_EIO;
        goto out;
    }
    if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int saved = errno;
        if (saved != EWOULDBLOCK) {
            snprintf(err, errlen, "cannot lock %s: %s", path, strerror(saved));
            rc = IOT_EIO;
            goto out;
        }
        /* The holder writes its pid right after locking; an empty file means "just started". */
        ssize_t n = pread(lock_fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        snprintf(err, errlen, "state_dir %s is in use by another iotd (pid %s; lock %s)", state_dir,
                 pid[0] ? pid : "unknown", path);
        rc = IOT_EBUSY;
        goto out;
    }
    *fd = lock_fd;
    lock_fd = -1;
    state_lock_write_pid(*fd);
out:
    if (lock_fd >= 0)
        close(lock_fd);
    return rc;
}

void state_lock_write_pid(int fd)
{
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    /* Best effort: the pid only makes the refusal friendlier, the lock is what protects. */
    if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) != n)
        return;
}
