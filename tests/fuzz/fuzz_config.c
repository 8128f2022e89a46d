/* tests/fuzz/fuzz_config.c — the YAML configuration: any file is loaded or refused with errors,
 * never crashes or leaks. The input is the file's bytes (through a memfd). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("rankd-fuzz-config", 0);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) == (ssize_t)size) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        FILE *devnull = fopen("/dev/null", "w");
        rankd_config_t *cfg = config_load(path, devnull);
        if (cfg) {
            (void)config_key_role(cfg, "fuzz-key-0123456789", NULL);
            (void)config_cors_allowed(cfg, "https://a.example");
            (void)config_retention_windows(cfg, "daily");
            for (size_t i = 0; i < cfg->n_issuers; i++)
                (void)config_issuer_skew(cfg, i);
            (void)config_issuers_equal(cfg, cfg);
            config_free(cfg);
        }
        if (devnull)
            fclose(devnull);
    }
    close(fd);
    return 0;
}
