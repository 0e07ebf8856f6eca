/* THPeligible and VmFlags for MADV_HUGEPAGE, MAP_STACK, MAP_GROWSDOWN, MAP_NORESERVE,
 * DONTFORK/WIPEONFORK/DONTDUMP, RANDOM, SEQUENTIAL, MERGEABLE, MAP_DROPPABLE + mseal(),
 * MAP_LOCKED, shared RWX, PROT_NONE.
 *
 * Build and run (root, Linux 6.18 x86-64, from the repository root):
 *   gcc -O1 -o /tmp/p7 tests/proc/probes/p7_vmflags.c && taskset -c 1 /tmp/p7
 */
#include "common.h"
#define F (MAP_FIXED_NOREPLACE)
int main() {
    pid_t me = getpid(); char *x; unsigned long base = 0x500000000000UL; int i = 0;
#define NEXT ((void*)(base + (unsigned long)(i++) * 0x1000000UL))
    x = mmap(NEXT, 4<<20, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|F, -1, 0); madvise(x, 4<<20, MADV_HUGEPAGE);
    x = mmap(NEXT, 1<<20, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|F, -1, 0); madvise(x, 1<<20, MADV_HUGEPAGE);
    x = mmap(NEXT, PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_STACK|F, -1, 0);
    x = mmap(NEXT, PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_GROWSDOWN|F, -1, 0);
    x = mmap(NEXT, PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE|F, -1, 0);
    x = mmap(NEXT, PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|F, -1, 0); madvise(x, PS, MADV_DONTFORK); madvise(x, PS, MADV_WIPEONFORK); madvise(x, PS, MADV_DONTDUMP);
    x = mmap(NEXT, PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|F, -1, 0); madvise(x, PS, MADV_RANDOM);
    x = mmap(NEXT, PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|F, -1, 0); madvise(x, PS, MADV_SEQUENTIAL);
    x = mmap(NEXT, PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|F, -1, 0); madvise(x, PS, MADV_MERGEABLE);
    x = mmap(NEXT, PS, PROT_READ|PROT_WRITE, 0x08|MAP_ANONYMOUS|F, -1, 0); // MAP_DROPPABLE
    printf("droppable %p\n", x);
    syscall(462, x, PS, 0); // mseal
    x = mmap(NEXT, PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED|F, -1, 0);
    x = mmap(NEXT, PS, PROT_READ|PROT_WRITE|PROT_EXEC, MAP_SHARED|MAP_ANONYMOUS|F, -1, 0); madvise(x, PS, MADV_NOHUGEPAGE);
    x = mmap(NEXT, PS, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|F, -1, 0);
    x = mmap(NEXT, PS, PROT_READ, MAP_SHARED|MAP_ANONYMOUS|F, -1, 0);
    char cmd[200]; sprintf(cmd, "awk '/^5[0-9a-f]+-/{h=$0} /^(THPeligible|VmFlags|Locked)/{print h\" || \"$0}' /proc/%d/smaps", me); system(cmd);
    sprintf(cmd, "cat /proc/%d/smaps_rollup | head -3", me); system(cmd);
    return 0;
}
