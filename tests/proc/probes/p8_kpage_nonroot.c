/* kpageflags/kpagecount of a page before and after munmap, of pfn 0 and past the end of RAM;
 * pagemap as an unprivileged reader sees it (run a second time with an argument: /tmp/p8 drop).
 *
 * Build and run (root, Linux 6.18 x86-64, from the repository root):
 *   gcc -O1 -o /tmp/p8 tests/proc/probes/p8_kpage_nonroot.c && taskset -c 1 /tmp/p8
 */
#include "common.h"
#include <sys/prctl.h>
int main(int argc, char **argv) {
    char *a = mmap((void*)0x500000000000UL, 4*PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0);
    a[0] = 1; volatile char c = a[PS]; (void)c;
    char *s = mmap((void*)0x510000000000UL, PS, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0); s[0] = 1;
    if (argc > 1) {
        setgid(65534); setuid(65534); prctl(PR_SET_DUMPABLE, 1); { int fd0 = open("/proc/self/pagemap", O_RDONLY); printf("open pagemap fd %d\n", fd0); }
        printf("as uid %d: anon %016llx zero %016llx shmem %016llx untouched %016llx\n", getuid(), (unsigned long long)pagemap(getpid(), a), (unsigned long long)pagemap(getpid(), a+PS), (unsigned long long)pagemap(getpid(), s), (unsigned long long)pagemap(getpid(), a+2*PS));
        int fd = open("/proc/kpageflags", O_RDONLY); printf("open kpageflags as nobody: %d\n", fd);
        return 0;
    }
    uint64_t pfn = pagemap(getpid(), a) & ((1ULL<<55)-1);
    kflags_of_pfn("anon before munmap", pfn);
    { char *d = mmap(0, PS, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, -1, 0); mlock(d, PS); munlock(d, PS); kflags_of_pfn("after drain", pfn); }
    munmap(a, 4*PS);
    kflags_of_pfn("same pfn after munmap", pfn);
    kflags_of_pfn("pfn 0", 0);
    kflags_of_pfn("pfn beyond RAM", 1ULL<<40);
    return 0;
}
