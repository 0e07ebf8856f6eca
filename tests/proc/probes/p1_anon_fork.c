/* Private anonymous memory: zero page, write faults, two forks (mapcount 3: Pss rounding,
 * Referenced in the child), pagemap exclusive bit, pgreuse after the children exit.
 *
 * Build and run (root, Linux 6.18 x86-64, from the repository root):
 *   gcc -O1 -o /tmp/p1 tests/proc/probes/p1_anon_fork.c && taskset -c 1 /tmp/p1
 */
#include "common.h"
// anon private: zero page, write, fork x2 (mapcount 3), referenced/young in child
int main() {
    char *p = mmap((void*)0x600000000000UL, 8*PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0);
    volatile char c = p[1*PS];            // read fault -> zero page
    p[2*PS] = 1; p[3*PS] = 1; p[4*PS] = 1; // write faults
    (void)c;
    printf("== after faults, parent\n");
    print_smaps_entry(getpid(), p);
    describe("p0 untouched", getpid(), p);
    describe("p1 zero", getpid(), p + PS);
    describe("p2 written", getpid(), p + 2*PS);
    int sync1[2], sync2[2]; pipe(sync1); pipe(sync2);
    pid_t c1 = fork();
    if (c1 == 0) { char b; read(sync1[0], &b, 1); _exit(0); }
    pid_t c2 = fork();
    if (c2 == 0) { char b; read(sync2[0], &b, 1); _exit(0); }
    usleep(100000);
    printf("== parent after 2 forks (mapcount 3)\n");
    print_smaps_entry(getpid(), p);
    describe("p2 parent", getpid(), p + 2*PS);
    printf("== child1 view\n");
    print_smaps_entry(c1, p);
    describe("p2 child", c1, p + 2*PS);
    describe("p1 child (zero)", c1, p + PS);
    write(sync1[1], "x", 1); write(sync2[1], "x", 1); waitpid(c1, 0, 0); waitpid(c2, 0, 0);
    printf("== parent after children exit (mapcount 1 again, not exclusive)\n");
    describe("p2 parent", getpid(), p + 2*PS);
    print_smaps_entry(getpid(), p);
    long r0 = vmstat("pgreuse");
    p[2*PS] = 2; p[3*PS] = 2;
    long r1 = vmstat("pgreuse");
    printf("pgreuse delta after 2 writes to formerly shared pages: %ld\n", r1 - r0);
    describe("p2 parent after write", getpid(), p + 2*PS);
    return 0;
}
