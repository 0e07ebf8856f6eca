/* Helpers shared by the probes behind docs/notes/procfs.md: print one smaps entry and
 * status lines, read vmstat/meminfo counters, and describe an address through pagemap,
 * kpagecount and kpageflags. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <signal.h>
#include <setjmp.h>
#include <sys/syscall.h>

#define PS 4096UL
static void print_smaps_entry(pid_t pid, void *addr) {
    char path[64]; sprintf(path, "/proc/%d/smaps", pid);
    FILE *f = fopen(path, "r"); char line[512]; int on = 0;
    unsigned long a = (unsigned long)addr;
    while (fgets(line, sizeof line, f)) {
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            on = (s <= a && a < e);
        }
        if (on) fputs(line, stdout);
    }
    fclose(f);
}
static void print_status(pid_t pid, const char *keys) {
    char path[64]; sprintf(path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r"); char line[512];
    while (fgets(line, sizeof line, f)) {
        char k[64]; sscanf(line, "%63[^:]", k);
        char kk[70]; sprintf(kk, ",%s,", k);
        if (strstr(keys, kk)) fputs(line, stdout);
    }
    fclose(f);
}
static long status_kb(pid_t pid, const char *key) {
    char path[64]; sprintf(path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r"); char line[512]; long v = -1;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':') { v = atol(line + strlen(key) + 1); }
    }
    fclose(f); return v;
}
static long vmstat(const char *key) {
    FILE *f = fopen("/proc/vmstat", "r"); char k[128]; long v, r = -1;
    while (fscanf(f, "%127s %ld", k, &v) == 2) if (!strcmp(k, key)) r = v;
    fclose(f); return r;
}
static long meminfo(const char *key) {
    FILE *f = fopen("/proc/meminfo", "r"); char line[256]; long r = -1;
    while (fgets(line, sizeof line, f)) if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':') r = atol(line + strlen(key) + 1);
    fclose(f); return r;
}
static uint64_t pagemap(pid_t pid, void *addr) {
    char path[64]; sprintf(path, "/proc/%d/pagemap", pid);
    int fd = open(path, O_RDONLY); uint64_t e = 0;
    pread(fd, &e, 8, ((unsigned long)addr / PS) * 8); close(fd); return e;
}
static uint64_t kpage(const char *file, uint64_t pfn) {
    int fd = open(file, O_RDONLY); uint64_t e = 0;
    if (pread(fd, &e, 8, pfn * 8) != 8) e = ~0ULL; close(fd); return e;
}
static void describe(const char *label, pid_t pid, void *addr) {
    uint64_t e = pagemap(pid, addr);
    uint64_t pfn = e & ((1ULL << 55) - 1);
    printf("%s pagemap=%016llx present=%d swap=%d file=%d excl=%d sd=%d uffdwp=%d guard=%d frame=%#llx",
        label, (unsigned long long)e, !!(e >> 63 & 1), !!(e >> 62 & 1), !!(e >> 61 & 1), !!(e >> 56 & 1),
        !!(e >> 55 & 1), !!(e >> 57 & 1), !!(e >> 58 & 1), (unsigned long long)pfn);
    if (e >> 63 & 1) {
        uint64_t fl = kpage("/proc/kpageflags", pfn);
        printf(" kpagecount=%llu kpageflags=%#llx [", (unsigned long long)kpage("/proc/kpagecount", pfn), (unsigned long long)fl);
        for (int b = 0; b < 64; b++) if (fl >> b & 1) printf("%d ", b);
        printf("]");
    } else if (e >> 62 & 1) {
        printf(" swaptype=%llu swapoffset=%llu", (unsigned long long)(pfn & 31), (unsigned long long)(pfn >> 5));
    }
    printf("\n");
}
static void kflags_of_pfn(const char *label, uint64_t pfn) {
    uint64_t fl = kpage("/proc/kpageflags", pfn);
    printf("%s pfn=%#llx kpagecount=%llu kpageflags=%#llx [", label, (unsigned long long)pfn, (unsigned long long)kpage("/proc/kpagecount", pfn), (unsigned long long)fl);
    for (int b = 0; b < 64; b++) if (fl >> b & 1) printf("%d ", b);
    printf("]\n");
}
