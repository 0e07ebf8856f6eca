/* MADV_FREE with a drain, exactness of RssAnon, and what pgfault/pgalloc_normal/pgfree/pgreuse
 * count for write faults, zero-page read faults, writes over the zero page, SIGSEGV (ACCERR and
 * MAPERR) and writes after mprotect(RO->RW).
 *
 * Build and run (root, Linux 6.18 x86-64, from the repository root):
 *   gcc -O1 -o /tmp/p3 tests/proc/probes/p3_counters.c && taskset -c 1 /tmp/p3
 */
#include "common.h"
#define F (MAP_FIXED_NOREPLACE)
static sigjmp_buf jb;
static void segv(int s) { siglongjmp(jb, 1); }
int main() {
    pid_t me = getpid();
    printf("== MADV_FREE with drain\n");
    char *fr = mmap((void*)0x630000000000UL, 4*PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|F, -1, 0);
    for (int i = 0; i < 4; i++) fr[i*PS] = 1;
    char *dummy = mmap((void*)0x640000000000UL, PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE|F, -1, 0);
    long lz0 = vmstat("pglazyfree");
    madvise(fr, 4*PS, MADV_FREE);
    printf("pglazyfree +%ld (before drain)\n", vmstat("pglazyfree")-lz0);
    mlock(dummy, PS); munlock(dummy, PS);
    printf("pglazyfree +%ld (after mlock/munlock drain)\n", vmstat("pglazyfree")-lz0);
    fr[0] = 2;
    print_smaps_entry(me, fr);
    describe("lazyfree page", me, fr+PS);
    describe("redirtied page", me, fr);

    printf("== RSS counters exactness\n");
    long r0 = status_kb(me, "RssAnon");
    char *a = mmap((void*)0x650000000000UL, 10*PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|F, -1, 0);
    for (int i = 0; i < 10; i++) a[i*PS] = 1;
    printf("RssAnon delta after 10 write faults: %ld kB\n", status_kb(me, "RssAnon") - r0);
    for (int i = 0; i < 10; i++) { volatile char x = a[i*PS + 0x100]; (void)x; }

    printf("== pgfault / pgalloc / pgfree counting (N=20000)\n");
    int N = 20000;
    char *b = mmap((void*)0x660000000000UL, N*PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|F, -1, 0);
    long f0 = vmstat("pgfault"), al0 = vmstat("pgalloc_normal"), al32 = vmstat("pgalloc_dma32"), fre0 = vmstat("pgfree"), mj0 = vmstat("pgmajfault");
    for (int i = 0; i < N; i++) b[i*PS] = 1;
    long f1 = vmstat("pgfault"), al1 = vmstat("pgalloc_normal"), al132 = vmstat("pgalloc_dma32"), fre1 = vmstat("pgfree");
    printf("write faults: pgfault +%ld pgalloc_normal +%ld pgalloc_dma32 +%ld pgfree +%ld pgmajfault +%ld\n", f1-f0, al1-al0, al132-al32, fre1-fre0, vmstat("pgmajfault")-mj0);
    char *z = mmap((void*)0x670000000000UL, N*PS, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|F, -1, 0);
    f0 = vmstat("pgfault"); al0 = vmstat("pgalloc_normal");
    for (int i = 0; i < N; i++) { volatile char x = z[i*PS]; (void)x; }
    printf("read faults (zero page): pgfault +%ld pgalloc_normal +%ld\n", vmstat("pgfault")-f0, vmstat("pgalloc_normal")-al0);
    mprotect(z, N*PS, PROT_READ|PROT_WRITE);
    f0 = vmstat("pgfault"); al0 = vmstat("pgalloc_normal"); long ru0 = vmstat("pgreuse");
    for (int i = 0; i < N; i++) z[i*PS] = 1;
    printf("write over zero page: pgfault +%ld pgalloc_normal +%ld pgreuse +%ld\n", vmstat("pgfault")-f0, vmstat("pgalloc_normal")-al0, vmstat("pgreuse")-ru0);
    signal(SIGSEGV, segv);
    mprotect(b, N*PS, PROT_READ);
    f0 = vmstat("pgfault");
    for (int i = 0; i < N; i++) { if (!sigsetjmp(jb, 1)) b[i*PS] = 2; }
    printf("SEGV_ACCERR writes to PROT_READ: pgfault +%ld\n", vmstat("pgfault")-f0);
    f0 = vmstat("pgfault");
    for (int i = 0; i < N; i++) { if (!sigsetjmp(jb, 1)) *(volatile char*)(0x680000000000UL + i*PS) = 2; }
    printf("SEGV_MAPERR writes to unmapped: pgfault +%ld\n", vmstat("pgfault")-f0);
    mprotect(b, N*PS, PROT_READ|PROT_WRITE);
    f0 = vmstat("pgfault"); ru0 = vmstat("pgreuse");
    for (int i = 0; i < N; i++) b[i*PS] = 3;
    printf("writes after mprotect RO->RW of exclusive anon: pgfault +%ld pgreuse +%ld\n", vmstat("pgfault")-f0, vmstat("pgreuse")-ru0);
    fre0 = vmstat("pgfree");
    munmap(b, N*PS);
    printf("munmap N written pages: pgfree +%ld\n", vmstat("pgfree")-fre0);
    fre0 = vmstat("pgfree");
    munmap(z, N*PS);
    printf("munmap N written pages (z): pgfree +%ld\n", vmstat("pgfree")-fre0);
    return 0;
}
