/*
 * fuzz_driver.c - runs a libFuzzer target without libFuzzer (gcc builds): every file named on
 * the command line, or found in a directory named there, is passed once to
 * LLVMFuzzerTestOneInput. The seed corpus thus runs in every build; only clang builds explore.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Run one file; returns 0 or -1 if it cannot be read. */
static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data = NULL;
    long size;
    int rc = -1;

    if (!f)
        goto out;
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    data = malloc((size_t)size + 1);
    if (!data || fread(data, 1, (size_t)size, f) != (size_t)size)
        goto out;
    LLVMFuzzerTestOneInput(data, (size_t)size);
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "cannot read %s\n", path);
    free(data);
    if (f)
        fclose(f);
    return rc;
}

int main(int argc, char **argv)
{
    int i, files = 0, failed = 0;

    for (i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *e;
            char path[4096];
            if (!d) {
                failed++;
                continue;
            }
            while ((e = readdir(d)) != NULL) {
                if (e->d_name[0] == '.')
                    continue;
                snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
                failed += run_file(path) != 0;
                files++;
            }
            closedir(d);
        } else {
            failed += run_file(argv[i]) != 0;
            files++;
        }
    }
    printf("%d inputs run, %d unreadable\n", files, failed);
    return failed || files == 0 ? 1 : 0;
}
