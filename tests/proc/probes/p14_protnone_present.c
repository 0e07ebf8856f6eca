/* mprotect(PROT_NONE) keeps resident pages present: pagemap PM_PRESENT with the pfn, smaps Rss
 * and Private_Dirty unchanged.
 *
 * Build and run (root, Linux 6.18 x86-64, from the repository root):
 *   gcc -O1 -o /tmp/p14 tests/proc/probes/p14_protnone_present.c && taskset -c 1 /tmp/p14
 */
#include "common.h"
int main() {
    char *a = mmap((void*)0x500000000000UL, 2*PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0);
    a[0] = 1;
    mprotect(a, 2*PS, PROT_NONE);
    describe("after mprotect PROT_NONE", getpid(), a);
    print_smaps_entry(getpid(), a);
    return 0;
}
