/* Reclaim counters under a memory-cgroup limit (cgroup v1 on the host): write 32 MiB in an
 * 8 MiB group, read it back. Needs swap (see p5) and, instead of the plain run below:
 *   mkdir /sys/fs/cgroup/memory/vmlabprobe
 *   echo 8M > /sys/fs/cgroup/memory/vmlabprobe/memory.limit_in_bytes
 *   (echo $BASHPID > /sys/fs/cgroup/memory/vmlabprobe/cgroup.procs; exec taskset -c 1 /tmp/p6)
 *   rmdir /sys/fs/cgroup/memory/vmlabprobe
 *
 * Build and run (root, Linux 6.18 x86-64, from the repository root):
 *   gcc -O1 -o /tmp/p6 tests/proc/probes/p6_memcg_reclaim.c && taskset -c 1 /tmp/p6
 */
#include "common.h"
#define V(n) long n##0 = vmstat(#n)
#define DV(n) printf(" %s%+ld", #n, vmstat(#n) - n##0)
#define ALL V(pswpout); V(pswpin); V(pgmajfault); V(pgfault); V(swap_ra); V(swap_ra_hit); V(pgscan_direct); V(pgsteal_direct); V(pgscan_kswapd); V(pgsteal_kswapd); V(pgscan_anon); V(pgsteal_anon); V(pgscan_file); V(pgsteal_file); V(pgactivate); V(pgdeactivate); V(pgrefill); V(workingset_refault_anon); V(workingset_activate_anon); V(workingset_restore_anon); V(allocstall_normal); V(allocstall_movable); V(pgrotated); V(swpout_zero); V(pgalloc_normal);
#define SHOW DV(pswpout); DV(pswpin); DV(pgmajfault); DV(pgfault); DV(swap_ra); DV(swap_ra_hit); DV(pgscan_direct); DV(pgsteal_direct); DV(pgscan_kswapd); DV(pgsteal_kswapd); DV(pgscan_anon); DV(pgsteal_anon); DV(pgscan_file); DV(pgsteal_file); DV(pgactivate); DV(pgdeactivate); DV(pgrefill); DV(workingset_refault_anon); DV(workingset_activate_anon); DV(workingset_restore_anon); DV(allocstall_normal); DV(allocstall_movable); DV(pgrotated); DV(swpout_zero); DV(pgalloc_normal); printf("\n");
int main() {
    int N = 8192; // 32 MB
    char *a = mmap(0, N*PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
    { ALL; for (int i = 0; i < N; i++) memset(a + i*PS, 1 + (i & 0x7f), 64); printf("write 32M in 8M memcg:"); SHOW; }
    { ALL; for (int i = 0; i < N; i++) { volatile char c = a[i*PS]; (void)c; } printf("read back 32M:"); SHOW; }
    printf("VmSwap %ld RssAnon %ld\n", status_kb(getpid(), "VmSwap"), status_kb(getpid(), "RssAnon"));
    return 0;
}
