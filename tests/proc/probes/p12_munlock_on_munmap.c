/* munmap() of mlocked pages: unevictable_pgs_munlocked/rescued move only when the per-CPU
 * mlock batch drains (here forced by an mlock()/munlock() pair); a forked child does not
 * inherit VM_LOCKED (VmLck 0).
 *
 * Build and run (root, Linux 6.18 x86-64, from the repository root):
 *   gcc -O1 -o /tmp/p12 tests/proc/probes/p12_munlock_on_munmap.c && taskset -c 1 /tmp/p12
 */
#include "common.h"
#define V(n) long n##0 = vmstat(#n)
#define DV(n) printf(" %s%+ld", #n, vmstat(#n) - n##0)
int main() {
    char *l = mmap(0, 8*PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
    char *d = mmap(0, PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0);
    mlock(l, 8*PS);
    V(unevictable_pgs_mlocked); V(unevictable_pgs_munlocked); V(unevictable_pgs_rescued); V(unevictable_pgs_stranded); V(unevictable_pgs_cleared); V(unevictable_pgs_culled); V(pgfree);
    munmap(l, 8*PS);
    printf("munmap 8 mlocked pages, before drain:"); DV(unevictable_pgs_munlocked); DV(unevictable_pgs_rescued); DV(unevictable_pgs_stranded); DV(unevictable_pgs_cleared); printf("\n");
    mlock(d, PS); munlock(d, PS);
    printf("after drain:"); DV(unevictable_pgs_mlocked); DV(unevictable_pgs_munlocked); DV(unevictable_pgs_rescued); DV(unevictable_pgs_stranded); DV(unevictable_pgs_cleared); DV(unevictable_pgs_culled); printf("\n");
    // fork with mlocked pages: child does not inherit VM_LOCKED
    char *m = mmap(0, 8*PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED|MAP_POPULATE, -1, 0);
    pid_t c = fork(); if (!c) { sleep(1); _exit(0); }
    usleep(200000);
    printf("child VmLck %ld parent VmLck %ld\n", status_kb(c, "VmLck"), status_kb(getpid(), "VmLck"));
    waitpid(c, 0, 0);
    return 0;
}
