/* meminfo gauges with 20000-page sets, after waiting for the per-CPU counters to fold: shared
 * anonymous pages raise Shmem, Mapped and Cached; private anonymous pages raise AnonPages once
 * even though a forked child maps them too; both sit on the anon LRU. Unmapping the shared
 * mapping in the parent leaves Shmem up (the child's inherited VMA keeps the object) but drops
 * Mapped (the child never faulted the pages in).
 *
 * Build and run (root, Linux 6.18 x86-64, from the repository root):
 *   gcc -O1 -o /tmp/p13 tests/proc/probes/p13_meminfo_gauges.c && taskset -c 1 /tmp/p13
 */
#include "common.h"
#define N 20000
int main() {
    sleep(2);
    long sh0 = meminfo("Shmem"), mp0 = meminfo("Mapped"), an0 = meminfo("AnonPages"), ca0 = meminfo("Cached"), ia0 = meminfo("Inactive(anon)") + meminfo("Active(anon)");
    char *s = mmap(0, N*PS, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < N; i++) s[i*PS] = 1;
    char *a = mmap(0, N*PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < N; i++) a[i*PS] = 1;
    pid_t c = fork(); if (!c) { sleep(10); _exit(0); }
    sleep(3);
    printf("%d shared-anon pages + %d private anon pages (forked child maps both VMAs' pages? private yes, shared no):\n", N, N);
    printf(" Shmem %+ld kB, Mapped %+ld kB, AnonPages %+ld kB, Cached %+ld kB, anon LRU %+ld kB (expect %d kB per set)\n",
        meminfo("Shmem")-sh0, meminfo("Mapped")-mp0, meminfo("AnonPages")-an0, meminfo("Cached")-ca0, meminfo("Inactive(anon)") + meminfo("Active(anon)") - ia0, N*4);
    munmap(s, N*PS);
    sleep(3);
    printf("after munmap of the shared mapping (object gone): Shmem %+ld kB Mapped %+ld kB\n", meminfo("Shmem")-sh0, meminfo("Mapped")-mp0);
    kill(c, 9); waitpid(c, 0, 0);
    return 0;
}
