/* pgfault for faults that end in SIGBUS inside handle_mm_fault() (a read past EOF of a shared
 * file mapping), next to a baseline loop that raises SIGBUS itself. The global counter is noisy;
 * compare the two lines.
 *
 * Build and run (root, Linux 6.18 x86-64, from the repository root):
 *   gcc -O1 -o /tmp/p10 tests/proc/probes/p10_sigbus.c && taskset -c 1 /tmp/p10
 */
#include "common.h"
static sigjmp_buf jb;
static void h(int s) { siglongjmp(jb, 1); }
int main() {
    int fd = open("/tmp/pbfile", O_RDWR|O_CREAT|O_TRUNC, 0644); ftruncate(fd, PS);
    char *m = mmap(0, 2*PS, PROT_READ, MAP_SHARED, fd, 0); unlink("/tmp/pbfile");
    signal(SIGBUS, h); int N = 20000;
    long f0 = vmstat("pgfault");
    for (int i = 0; i < N; i++) if (!sigsetjmp(jb, 1)) { volatile char c = m[PS]; (void)c; }
    printf("SIGBUS past EOF x%d: pgfault +%ld\n", N, vmstat("pgfault") - f0);
    f0 = vmstat("pgfault");
    for (int i = 0; i < N; i++) if (!sigsetjmp(jb, 1)) { volatile char c = m[0]; (void)c; raise(SIGBUS); }
    printf("raise(SIGBUS) after a resident read x%d: pgfault +%ld\n", N, vmstat("pgfault") - f0);
    return 0;
}
