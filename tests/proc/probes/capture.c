/* Writes the fixtures of tests/proc/data/<kernel>/: sets up fixed mappings, forks twice,
 * and copies /proc/self/{maps,smaps,smaps_rollup,status}, a child's smaps, /proc/meminfo and
 * /proc/vmstat into the directory given as argument (static, so the process has few mappings).
 * Run it as /tmp/capture DIR instead of the plain run below.
 *
 * Build and run (root, Linux 6.18 x86-64, from the repository root):
 *   gcc -O1 -static -o /tmp/capture tests/proc/probes/capture.c && taskset -c 1 /tmp/capture
 */
#include "common.h"
#include <sys/stat.h>
#include <sys/utsname.h>
#define F MAP_FIXED_NOREPLACE
static void copy(const char *src, const char *dir, const char *name) {
    char buf[1 << 16], path[512]; snprintf(path, sizeof path, "%s/%s", dir, name);
    int in = open(src, O_RDONLY), out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644); ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0) write(out, buf, n);
    close(in); close(out);
}
int main(int argc, char **argv) {
    const char *dir = argv[1];
    char *a = mmap((void *)0x600000000000UL, 8 * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | F, -1, 0);
    for (int i = 0; i < 4; i++) a[i * PS] = 1;
    volatile char c = a[5 * PS]; (void)c;                       /* zero page */
    char *s = mmap((void *)0x610000000000UL, 4 * PS, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | F, -1, 0);
    s[0] = 1; s[PS] = 1; c = s[2 * PS];
    char *l = mmap((void *)0x620000000000UL, 4 * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | F, -1, 0);
    mlock(l, 4 * PS);
    char *fr = mmap((void *)0x630000000000UL, 40 * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | F, -1, 0);
    for (int i = 0; i < 40; i++) fr[i * PS] = 1;
    madvise(fr, 40 * PS, MADV_FREE);
    mlock(l, PS); munlock(l, PS); mlock(l, 4 * PS);             /* drains the per-CPU lazyfree batch */
    fr[0] = 2;
    char *g = mmap((void *)0x640000000000UL, 4 * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | F, -1, 0);
    g[0] = 1; madvise(g + PS, PS, 102 /* MADV_GUARD_INSTALL */);
    char *d = mmap((void *)0x650000000000UL, PS, PROT_READ | PROT_WRITE, 0x08 /* MAP_DROPPABLE */ | MAP_ANONYMOUS | F, -1, 0);
    d[0] = 1; syscall(462 /* mseal */, d, PS, 0);
    char *h = mmap((void *)0x660000000000UL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | F, -1, 0);
    madvise(h, 4 << 20, MADV_HUGEPAGE);
    int fd = open("/tmp/vmlab-capture.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
    ftruncate(fd, 4 * PS);
    char *fs = mmap((void *)0x670000000000UL, 4 * PS, PROT_READ | PROT_WRITE, MAP_SHARED | F, fd, 0);
    fs[0] = 1; c = fs[PS];
    char *fp = mmap((void *)0x680000000000UL, 2 * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | F, fd, 2 * PS);
    c = fp[0]; fp[PS] = 1;                                       /* one file page, one COW copy */
    unlink("/tmp/vmlab-capture.dat");
    mmap((void *)0x690000000000UL, 2 * PS, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | F, -1, 0);
    char *gd = mmap((void *)0x6a0000000000UL, 2 * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | F, -1, 0);
    gd[PS] = 1;
    int p[2]; pipe(p);
    pid_t k1 = fork(); if (!k1) { char b; read(p[0], &b, 1); _exit(0); }
    pid_t k2 = fork(); if (!k2) { char b; read(p[0], &b, 1); _exit(0); }
    usleep(200000);
    copy("/proc/self/maps", dir, "maps");
    copy("/proc/self/smaps", dir, "smaps");
    copy("/proc/self/smaps_rollup", dir, "smaps_rollup");
    copy("/proc/self/status", dir, "status");
    char src[64]; snprintf(src, sizeof src, "/proc/%d/smaps", k1); copy(src, dir, "smaps_child");
    copy("/proc/meminfo", dir, "meminfo");
    copy("/proc/vmstat", dir, "vmstat");
    write(p[1], "xx", 2); waitpid(k1, 0, 0); waitpid(k2, 0, 0);
    struct utsname u; uname(&u);
    char path[512]; snprintf(path, sizeof path, "%s/KERNEL", dir);
    FILE *kf = fopen(path, "w"); fprintf(kf, "%s %s %s\n", u.sysname, u.release, u.machine); fclose(kf);
    return 0;
}
