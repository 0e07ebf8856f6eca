/* Shared anonymous memory (maps name, pagemap PM_FILE, RssShmem, no PTEs in a forked child),
 * mlock/munlock/mlock2(ONFAULT)/munmap and the unevictable_pgs_* counters, MADV_FREE without a
 * drain (LazyFree and pglazyfree stay 0 until the per-CPU batch drains).
 *
 * Build and run (root, Linux 6.18 x86-64, from the repository root):
 *   gcc -O1 -o /tmp/p2 tests/proc/probes/p2_shmem_mlock_free.c && taskset -c 1 /tmp/p2
 */
#include "common.h"
#define F (MAP_FIXED_NOREPLACE)
static const char *K = ",VmPeak,VmSize,VmLck,VmPin,VmHWM,VmRSS,RssAnon,RssFile,RssShmem,VmData,VmStk,VmExe,VmLib,VmPTE,VmSwap,";
int main() {
    pid_t me = getpid();
    printf("== shared anon\n");
    char *s = mmap((void*)0x610000000000UL, 4*PS, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|F, -1, 0);
    long shm0 = meminfo("Shmem"), an0 = meminfo("AnonPages"), mp0 = meminfo("Mapped");
    volatile char c = s[0]; (void)c; s[PS] = 1;
    printf("Shmem delta %ld kB, AnonPages delta %ld, Mapped delta %ld\n", meminfo("Shmem")-shm0, meminfo("AnonPages")-an0, meminfo("Mapped")-mp0);
    print_smaps_entry(me, s);
    describe("shared read", me, s);
    describe("shared written", me, s+PS);
    print_status(me, ",RssAnon,RssFile,RssShmem,VmRSS,");
    pid_t ch = fork();
    if (!ch) { usleep(300000); _exit(0); }
    usleep(100000);
    printf("-- child view of shared anon after fork (no PTEs copied)\n");
    describe("child s0", ch, s);
    print_status(ch, ",RssShmem,");
    waitpid(ch,0,0);

    printf("== mlock\n");
    char *l = mmap((void*)0x620000000000UL, 8*PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|F, -1, 0);
    for (int i = 0; i < 4; i++) l[i*PS] = 1;
    long m0 = vmstat("unevictable_pgs_mlocked"), cu0 = vmstat("unevictable_pgs_culled"), mu0=vmstat("unevictable_pgs_munlocked"), re0=vmstat("unevictable_pgs_rescued"), st0=vmstat("unevictable_pgs_stranded"), sc0=vmstat("unevictable_pgs_scanned"), cl0=vmstat("unevictable_pgs_cleared");
    long mi0 = meminfo("Mlocked"), ue0 = meminfo("Unevictable"), nm0 = vmstat("nr_mlock");
    mlock(l, 8*PS);   // locks 4 present pages + populates 4 more
    printf("after mlock 8 pages (4 present): mlocked+%ld culled+%ld Mlocked+%ldkB Unevictable+%ldkB nr_mlock+%ld\n",
        vmstat("unevictable_pgs_mlocked")-m0, vmstat("unevictable_pgs_culled")-cu0, meminfo("Mlocked")-mi0, meminfo("Unevictable")-ue0, vmstat("nr_mlock")-nm0);
    print_smaps_entry(me, l);
    describe("mlocked page", me, l);
    print_status(me, ",VmLck,");
    munlock(l, 8*PS);
    printf("after munlock: munlocked+%ld rescued+%ld stranded+%ld scanned+%ld cleared+%ld\n",
        vmstat("unevictable_pgs_munlocked")-mu0, vmstat("unevictable_pgs_rescued")-re0, vmstat("unevictable_pgs_stranded")-st0, vmstat("unevictable_pgs_scanned")-sc0, vmstat("unevictable_pgs_cleared")-cl0);
    mlock2(l, 8*PS, MLOCK_ONFAULT);
    printf("after mlock2 ONFAULT: "); print_status(me, ",VmLck,");
    print_smaps_entry(me, l);
    m0 = vmstat("unevictable_pgs_mlocked"); mu0 = vmstat("unevictable_pgs_munlocked"); cl0=vmstat("unevictable_pgs_cleared");
    munmap(l, 8*PS);
    printf("munmap of 8 locked pages: mlocked+%ld munlocked+%ld cleared+%ld\n", vmstat("unevictable_pgs_mlocked")-m0, vmstat("unevictable_pgs_munlocked")-mu0, vmstat("unevictable_pgs_cleared")-cl0);
    print_status(me, ",VmLck,");

    printf("== MADV_FREE\n");
    char *fr = mmap((void*)0x630000000000UL, 4*PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|F, -1, 0);
    for (int i = 0; i < 4; i++) fr[i*PS] = 1;
    long lz0 = vmstat("pglazyfree");
    madvise(fr, 4*PS, MADV_FREE);
    printf("pglazyfree +%ld\n", vmstat("pglazyfree")-lz0);
    fr[0] = 2; // redirty one
    print_smaps_entry(me, fr);
    describe("lazyfree page", me, fr+PS);
    describe("redirtied page", me, fr);
    return 0;
}
