/* VmSize/VmData/VmStk/VmExe/VmLib per mapping kind and mprotect, VmPTE per page-table level,
 * VmLck (mlock2 ONFAULT, PROT_NONE), VmHWM, names of SysV shm / memfd / shared anon, a guard
 * region's pagemap word and the "gu" VmFlag.
 *
 * Build and run (root, Linux 6.18 x86-64, from the repository root):
 *   gcc -O1 -o /tmp/p4 tests/proc/probes/p4_status_vm.c && taskset -c 1 /tmp/p4
 */
#include "common.h"
#include <sys/shm.h>
#define F (MAP_FIXED_NOREPLACE)
static const char *K = ",VmPeak,VmSize,VmLck,VmHWM,VmRSS,VmData,VmStk,VmExe,VmLib,VmPTE,";
#define D(what, expr) do { long d0=status_kb(me,"VmData"),s0=status_kb(me,"VmStk"),e0=status_kb(me,"VmExe"),l0=status_kb(me,"VmLib"),v0=status_kb(me,"VmSize"),p0=status_kb(me,"VmPTE"); expr; \
  printf("%-50s VmSize%+ld VmData%+ld VmStk%+ld VmExe%+ld VmLib%+ld VmPTE%+ld\n", what, status_kb(me,"VmSize")-v0, status_kb(me,"VmData")-d0, status_kb(me,"VmStk")-s0, status_kb(me,"VmExe")-e0, status_kb(me,"VmLib")-l0, status_kb(me,"VmPTE")-p0);} while(0)
int main() {
    pid_t me = getpid(); void *x;
    D("private RW anon 256K", x = mmap((void*)0x700000000000UL, 64*PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|F, -1, 0));
    D("mprotect it PROT_READ", mprotect(x, 64*PS, PROT_READ));
    D("mprotect it RWX", mprotect(x, 64*PS, PROT_READ|PROT_WRITE|PROT_EXEC));
    D("mprotect it R-X", mprotect(x, 64*PS, PROT_READ|PROT_EXEC));
    D("munmap it", munmap(x, 64*PS));
    D("private R anon 256K", x = mmap((void*)0x700000000000UL, 64*PS, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|F, -1, 0)); munmap(x, 64*PS);
    D("PROT_NONE 256K", x = mmap((void*)0x700000000000UL, 64*PS, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|F, -1, 0)); munmap(x, 64*PS);
    D("shared RW anon 256K", x = mmap((void*)0x700000000000UL, 64*PS, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|F, -1, 0)); munmap(x, 64*PS);
    D("private RW GROWSDOWN 256K", x = mmap((void*)0x700000000000UL, 64*PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_GROWSDOWN|F, -1, 0)); munmap(x, 64*PS);
    D("private RW MAP_STACK 256K", x = mmap((void*)0x700000000000UL, 64*PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_STACK|F, -1, 0)); munmap(x, 64*PS);
    D("private R-X anon 256K", x = mmap((void*)0x700000000000UL, 64*PS, PROT_READ|PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS|F, -1, 0)); munmap(x, 64*PS);
    printf("-- VmPTE levels\n");
    D("touch 1 page in empty 512G region", x = mmap((void*)0x710000000000UL, PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE|F, -1, 0));
    D("touch page in new 2M, same 1G", mmap((void*)0x710000200000UL, PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE|F, -1, 0));
    D("touch page in new 1G, same 512G", mmap((void*)0x710040000000UL, PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE|F, -1, 0));
    D("mmap without touching in new 512G", mmap((void*)0x720000000000UL, PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|F, -1, 0));
    D("read-fault zero page in new 512G", x=mmap((void*)0x730000000000UL, PS, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE|F, -1, 0));
    D("munmap the 2 pages in 0x7100000xxxxx (1G region emptied)", {munmap((void*)0x710000000000UL, PS); munmap((void*)0x710000200000UL, PS);});
    D("munmap the 0x710040000000 page (512G region emptied)", munmap((void*)0x710040000000UL, PS));
    D("MADV_DONTNEED whole zero-page vma", madvise(x, PS, MADV_DONTNEED));
    printf("-- VmLck\n");
    x = mmap((void*)0x740000000000UL, 16*PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|F, -1, 0);
    long k0 = status_kb(me, "VmLck");
    mlock2(x, 16*PS, MLOCK_ONFAULT); printf("mlock2 onfault 64K untouched: VmLck%+ld\n", status_kb(me,"VmLck")-k0);
    mlock(x, 16*PS); printf("mlock again same range: VmLck%+ld\n", status_kb(me,"VmLck")-k0);
    void *y = mmap((void*)0x750000000000UL, 16*PS, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|F, -1, 0);
    int r = mlock(y, 16*PS); printf("mlock PROT_NONE 64K: ret %d VmLck%+ld\n", r, status_kb(me,"VmLck")-k0);
    munlock(x, 8*PS); printf("munlock half: VmLck%+ld\n", status_kb(me,"VmLck")-k0);
    long h0 = status_kb(me, "VmHWM"), rs0 = status_kb(me, "VmRSS");
    char *big = mmap((void*)0x760000000000UL, 1024*PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|F, -1, 0);
    for (int i = 0; i < 1024; i++) big[i*PS] = 1;
    printf("after 4M faults: VmHWM%+ld VmRSS%+ld\n", status_kb(me,"VmHWM")-h0, status_kb(me,"VmRSS")-rs0);
    munmap(big, 1024*PS);
    printf("after munmap: VmHWM%+ld VmRSS%+ld\n", status_kb(me,"VmHWM")-h0, status_kb(me,"VmRSS")-rs0);
    printf("-- names\n");
    int id = shmget(IPC_PRIVATE, 4*PS, IPC_CREAT|0600); char *sh = shmat(id, (void*)0x770000000000UL, 0); sh[0]=1;
    int mfd = memfd_create("mymemfd", 0); ftruncate(mfd, 4*PS); char *mf = mmap((void*)0x780000000000UL, 4*PS, PROT_READ|PROT_WRITE, MAP_SHARED|F, mfd, 0); mf[0]=1;
    char *mfp = mmap((void*)0x790000000000UL, 4*PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|F, mfd, PS); mfp[0]=1;
    char *g = mmap((void*)0x7a0000000000UL, 4*PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|F, -1, 0);
    madvise(g+PS, PS, 102);
    describe("guard page", me, g+PS);
    char cmd[128]; sprintf(cmd, "grep -E '^7[0-9a]' /proc/%d/maps | cat -A", me); system(cmd);
    print_smaps_entry(me, mfp);
    describe("memfd shared page", me, mf);
    describe("memfd private cow page", me, mfp);
    print_smaps_entry(me, g);
    shmctl(id, IPC_RMID, 0);
    sprintf(cmd, "grep -E '^77' /proc/%d/maps", me); system(cmd);
    return 0;
}
