/* MAP_POPULATE / MADV_POPULATE_WRITE / MADV_POPULATE_READ set PG_referenced (KPF bit 2), a
 * plain fault does not; clear_refs 1 clears it and the PTE young bit.
 *
 * Build and run (root, Linux 6.18 x86-64, from the repository root):
 *   gcc -O1 -o /tmp/p9 tests/proc/probes/p9_populate_referenced.c && taskset -c 1 /tmp/p9
 */
#include "common.h"
int main() {
    pid_t me = getpid();
    char *a = mmap((void*)0x500000000000UL, 2*PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE|MAP_FIXED_NOREPLACE, -1, 0);
    describe("MAP_POPULATE page", me, a);
    char *b = mmap((void*)0x510000000000UL, 2*PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0);
    madvise(b, 2*PS, 23); describe("MADV_POPULATE_WRITE page", me, b);
    char *c = mmap((void*)0x520000000000UL, 2*PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0);
    madvise(c, 2*PS, 22); describe("MADV_POPULATE_READ page (zero?)", me, c);
    char *d = mmap((void*)0x530000000000UL, 2*PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0);
    d[0] = 1; describe("plain write fault page", me, d);
    int fd = open("/proc/self/clear_refs", O_WRONLY); write(fd, "1", 1); close(fd);
    printf("-- after clear_refs 1\n");
    print_smaps_entry(me, a);
    describe("MAP_POPULATE page", me, a);
    volatile char x = a[0]; (void)x;
    print_smaps_entry(me, a);
    return 0;
}
