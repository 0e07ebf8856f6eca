/* Swap: MADV_PAGEOUT of anonymous (some zero-filled) and shared anonymous pages, smaps
 * Swap/SwapPss before and after fork, pagemap swap entries, swap-in from the swap cache,
 * swpin_zero/swpout_zero, VmSwap. Needs a swap area, for example:
 *   fallocate -l 256M /tmp/swapfile && chmod 600 /tmp/swapfile && mkswap /tmp/swapfile &&
 *   swapon /tmp/swapfile;  (run the probe);  swapoff /tmp/swapfile && rm /tmp/swapfile
 *
 * Build and run (root, Linux 6.18 x86-64, from the repository root):
 *   gcc -O1 -o /tmp/p5 tests/proc/probes/p5_swap.c && taskset -c 1 /tmp/p5
 */
#include "common.h"
#define F (MAP_FIXED_NOREPLACE)
#define MADV_PAGEOUT_ 21
#define V(n) long n##0 = vmstat(#n)
#define DV(n) printf(" %s%+ld", #n, vmstat(#n) - n##0)
int main() {
    pid_t me = getpid();
    char *a = mmap((void*)0x800000000000UL - 0x100000000000UL, 16*PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|F, -1, 0);
    for (int i = 0; i < 12; i++) memset(a + i*PS, 'A' + i, PS);
    for (int i = 12; i < 16; i++) a[i*PS] = 0;   // allocated but zero-filled
    char *s = mmap((void*)0x6a0000000000UL, 4*PS, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|F, -1, 0);
    for (int i = 0; i < 4; i++) memset(s + i*PS, 'S', PS);
    V(pswpout); V(swpout_zero); V(pgfault); V(pgmajfault); V(pswpin); V(swpin_zero); V(swap_ra); V(swap_ra_hit); V(pgsteal_anon); V(pgscan_anon); V(pgsteal_direct); V(pgscan_direct); V(pgsteal_kswapd); V(pgsteal_proactive);V(pgscan_proactive); V(pgactivate); V(pgdeactivate); V(pgrefill); V(nr_swapcached); V(pgsteal_file); V(workingset_refault_anon); V(pgpgout); V(pgpgin);
    long sf0 = meminfo("SwapFree");
    int r1 = madvise(a, 16*PS, MADV_PAGEOUT_), r2 = madvise(s, 4*PS, MADV_PAGEOUT_);
    usleep(200000);
    printf("== after MADV_PAGEOUT (%d %d):", r1, r2); DV(pswpout); DV(swpout_zero); DV(pgsteal_anon); DV(pgscan_anon); DV(pgsteal_direct); DV(pgscan_direct);DV(pgsteal_kswapd); DV(pgsteal_proactive); DV(pgscan_proactive); DV(pgactivate); DV(pgdeactivate); DV(pgrefill); DV(pgpgout); printf(" SwapFree%+ld\n", meminfo("SwapFree") - sf0);
    print_smaps_entry(me, a);
    print_status(me, ",VmRSS,RssAnon,RssShmem,VmSwap,");
    describe("a0 swapped", me, a);
    describe("a1 swapped", me, a + PS);
    describe("a12 zero-filled swapped", me, a + 12*PS);
    print_smaps_entry(me, s);
    describe("s0 shmem swapped", me, s);
    int sync[2]; pipe(sync);
    pid_t ch = fork();
    if (!ch) { char b; read(sync[0], &b, 1); _exit(0); }
    usleep(100000);
    printf("== after fork: parent then child smaps\n");
    print_smaps_entry(me, a);
    print_smaps_entry(ch, a);
    print_status(ch, ",VmSwap,");
    pgfault0 = vmstat("pgfault"); pgmajfault0 = vmstat("pgmajfault"); pswpin0 = vmstat("pswpin"); swap_ra0 = vmstat("swap_ra"); swap_ra_hit0 = vmstat("swap_ra_hit"); swpin_zero0 = vmstat("swpin_zero");
    volatile char c = a[0]; (void)c;
    usleep(100000);
    printf("== parent read a[0]:"); DV(pgfault); DV(pgmajfault); DV(pswpin); DV(swap_ra); DV(swap_ra_hit); DV(swpin_zero); printf("\n");
    describe("a0 after read (parent)", me, a);
    describe("a1 after read (readahead?)", me, a+PS);
    pgfault0 = vmstat("pgfault"); pgmajfault0 = vmstat("pgmajfault"); pswpin0 = vmstat("pswpin"); swap_ra0 = vmstat("swap_ra"); swap_ra_hit0 = vmstat("swap_ra_hit");
    c = a[PS]; 
    printf("== parent read a[1]:"); DV(pgfault); DV(pgmajfault); DV(pswpin); DV(swap_ra); DV(swap_ra_hit); printf("\n");
    describe("a1 after read", me, a+PS);
    describe("a0 in child", ch, a);
    print_smaps_entry(me, a);
    write(sync[1], "x", 1); waitpid(ch, 0, 0);
    printf("== child exited\n");
    describe("a0 parent", me, a);
    pgfault0 = vmstat("pgfault"); long rz = vmstat("pgreuse");
    a[0] = 'z';
    printf("write a[0]: pgfault%+ld pgreuse%+ld\n", vmstat("pgfault")-pgfault0, vmstat("pgreuse")-rz);
    describe("a0 after write", me, a);
    swpin_zero0 = vmstat("swpin_zero"); pswpin0 = vmstat("pswpin"); pgmajfault0 = vmstat("pgmajfault");
    c = a[13*PS];
    printf("read zero-filled swapped page:"); DV(swpin_zero); DV(pswpin); DV(pgmajfault); printf("\n");
    describe("a13", me, a+13*PS);
    pswpin0 = vmstat("pswpin"); pgmajfault0 = vmstat("pgmajfault");
    c = s[0];
    printf("read shmem swapped page:"); DV(pswpin); DV(pgmajfault); printf("\n");
    print_smaps_entry(me, a);
    print_smaps_entry(me, s);
    print_status(me, ",VmRSS,RssAnon,RssShmem,VmSwap,");
    return 0;
}
