/* Forks 400 idle children and compares the per-child growth of meminfo PageTables /
 * nr_page_table_pages with a child's VmPTE: the difference is the PGD page, which VmPTE does
 * not count. Static, so the children map little.
 *
 * Build and run (root, Linux 6.18 x86-64, from the repository root):
 *   gcc -O1 -static -o /tmp/p11 tests/proc/probes/p11_pgtables_meminfo.c && taskset -c 1 /tmp/p11
 */
#include "common.h"
int main() {
    int N = 400; pid_t kids[400]; int p[2]; pipe(p);
    sleep(2);
    long pt0 = meminfo("PageTables"), npt0 = vmstat("nr_page_table_pages");
    for (int i = 0; i < N; i++) { kids[i] = fork(); if (!kids[i]) { char b; read(p[0], &b, 1); _exit(0); } }
    sleep(3);
    long pt1 = meminfo("PageTables"), npt1 = vmstat("nr_page_table_pages");
    printf("per child: PageTables %.2f kB, nr_page_table_pages %.2f; child VmPTE %ld kB\n", (pt1-pt0)/(double)N, (npt1-npt0)/(double)N, status_kb(kids[0], "VmPTE"));
    for (int i = 0; i < N; i++) write(p[1], "x", 1);
    for (int i = 0; i < N; i++) waitpid(kids[i], 0, 0);
    return 0;
}
