/*
 * vmexec.c - generic step executor behind tools/probes/run_cases.py.
 *
 * What it checks: nothing by itself.  It executes one case of the JSON op
 * language (compiled by run_cases.py into the line format below) against the
 * real kernel, in a fresh process, and prints every system call's result,
 * every signal, and the VMAs of the requested address regions with their
 * /proc/self/smaps VmFlags.  run_cases.py turns that output into the
 * expectations stored in tests/data/host_errno_cases.json.
 *
 * Rules this program keeps so that results are reproducible:
 *   - it never calls malloc (no brk use, no stray mmaps); output goes through
 *     write(2) from static buffers;
 *   - system calls are issued with syscall(2), not the libc wrappers, so no
 *     userspace argument check (glibc rejects unaligned mmap offsets itself);
 *   - everything it maps lives in a window it reserves first: an mmap of
 *     WIN + 2*GUARD bytes of PROT_NONE|MAP_NORESERVE, whose middle WIN bytes
 *     are then munmapped.  Steps address memory as @w+offset.
 *
 * Input (stdin), one item per line:
 *   WINDOW <win> <guard>
 *   MAPREG <ref> <offset> <len>        region whose VMAs are dumped at the end
 *   S <idx> <op> <args...> [=name]     a step of the parent
 *   C <idx> <op> <args...> [=name]     a step of the child of the preceding
 *                                      "S <idx> fork <n>" (n C lines follow)
 * Arguments are integers (decimal, 0x hex, negative) or @name[+-]offset.
 *
 * Output:
 *   REF <name> <value>
 *   R|C <idx> ok <value> | err <errno> | sig <signo> <si_code>
 *   V|CV <ref> <start-off> <end-off> <perms> <name> \t <VmFlags>
 *   CX <status>                        child's exit status (in the fork step)
 *
 * Build: gcc -O2 -Wall -o vmexec vmexec.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 1U
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 2U
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#endif

#define MAXLINES 4096
#define MAXSYMS 128
#define MAXREGS 8

static char prog[1 << 20];
static char *lines[MAXLINES];
static int nlines;

static struct { char name[32]; long val; } syms[MAXSYMS];
static int nsyms;

static struct { char ref[32]; long off; long len; } regs[MAXREGS];
static int nregs;

static char outbuf[1 << 16];
static int outlen;
static char smaps[64 << 20];          /* /proc/self/smaps text */

static sigjmp_buf jb;
static volatile int sig_no, sig_code;

/* ---------------------------------------------------------------- output */

static void flush_out(void)
{
	int off = 0;
	while (off < outlen) {
		ssize_t n = write(1, outbuf + off, outlen - off);
		if (n <= 0)
			break;
		off += n;
	}
	outlen = 0;
}

static void puts_(const char *s)
{
	size_t n = strlen(s);
	if (outlen + n >= sizeof(outbuf))
		flush_out();
	memcpy(outbuf + outlen, s, n);
	outlen += n;
}

static void putdec(long v)
{
	char b[32];
	int i = 31;
	unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
	b[i] = 0;
	do {
		b[--i] = '0' + u % 10;
		u /= 10;
	} while (u);
	if (v < 0)
		b[--i] = '-';
	puts_(b + i);
}

static void die(const char *msg)
{
	puts_("FATAL ");
	puts_(msg);
	puts_("\n");
	flush_out();
	_exit(99);
}

/* ---------------------------------------------------------------- symbols */

static long *sym_slot(const char *name, int create)
{
	for (int i = 0; i < nsyms; i++)
		if (!strcmp(syms[i].name, name))
			return &syms[i].val;
	if (!create)
		return NULL;
	if (nsyms == MAXSYMS)
		die("too many symbols");
	strncpy(syms[nsyms].name, name, sizeof(syms[nsyms].name) - 1);
	return &syms[nsyms++].val;
}

static void bind(const char *name, long v)
{
	*sym_slot(name, 1) = v;
}

static long parse_int(const char *s)
{
	int neg = 0;
	unsigned long v = 0;
	if (*s == '-') {
		neg = 1;
		s++;
	}
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		while (*s) {
			char c = *s++;
			v = v * 16 + (c <= '9' ? c - '0' : (c | 32) - 'a' + 10);
		}
	} else {
		while (*s)
			v = v * 10 + (*s++ - '0');
	}
	return neg ? -(long)v : (long)v;
}

/* "@name+off", "@name-off", "@name" or an integer */
static long arg(const char *s)
{
	if (*s != '@')
		return parse_int(s);
	char name[32];
	int i = 0;
	s++;
	while (*s && *s != '+' && *s != '-' && i < 31)
		name[i++] = *s++;
	name[i] = 0;
	long *p = sym_slot(name, 0);
	if (!p)
		die("unknown symbol");
	long v = *p;
	if (*s == '+')
		v += parse_int(s + 1);
	else if (*s == '-')
		v -= parse_int(s + 1);
	return v;
}

/* ---------------------------------------------------------------- helpers */

static int read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n <= 0)
			break;
		len += n;
		if (len >= cap - 1)
			break;
	}
	close(fd);
	buf[len] = 0;
	return (int)len;
}

static long status_field_kb(const char *field)
{
	static char buf[8192];
	if (read_file("/proc/self/status", buf, sizeof(buf)) < 0)
		return -1;
	char *p = strstr(buf, field);
	if (!p)
		return -1;
	p += strlen(field);
	while (*p == ' ' || *p == '\t' || *p == ':')
		p++;
	long v = 0;
	while (*p >= '0' && *p <= '9')
		v = v * 10 + (*p++ - '0');
	return v;
}

static long map_count(void)
{
	static char buf[16 << 20];
	int n = read_file("/proc/self/maps", buf, sizeof(buf));
	/* the gate VMA ([vsyscall]) is listed but is not in mm->map_count */
	long c = 0;
	for (int i = 0; i < n; i++)
		if (buf[i] == '\n')
			c++;
	if (strstr(buf, "[vsyscall]"))
		c--;
	return c;
}

static long max_map_count(void)
{
	char buf[64];
	if (read_file("/proc/sys/vm/max_map_count", buf, sizeof(buf)) < 0)
		return -1;
	return parse_int(strtok(buf, "\n"));
}

/* field 47 of /proc/self/stat is start_brk (proc(5)) */
static long start_brk(void)
{
	static char buf[4096];
	if (read_file("/proc/self/stat", buf, sizeof(buf)) < 0)
		return -1;
	char *p = strrchr(buf, ')');
	int field = 2;
	while (*p && field < 47) {
		if (*p == ' ')
			field++;
		p++;
	}
	long v = 0;
	while (*p >= '0' && *p <= '9')
		v = v * 10 + (*p++ - '0');
	return v;
}

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	sig_no = sig;
	sig_code = si->si_code;
	siglongjmp(jb, 1);
}

static long minflt(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt + ru.ru_majflt;
}

/* fill/unfill: create single-page VMAs until max_map_count - map_count == leave */
static unsigned long fill_base, fill_len;

static long do_fill(long leave)
{
	long have = map_count(), max = max_map_count();
	long need = max - have - leave;
	if (need < 0)
		return -1;
	/* one page for each new VMA plus a hole page after it; the reservation
	 * itself is one VMA, which the last MAP_FIXED splits away */
	fill_len = (unsigned long)(need + 2) * 2 * 4096;
	long r = syscall(SYS_mmap, 0, fill_len, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == -1)
		return -1;
	fill_base = r;
	if (syscall(SYS_munmap, fill_base, fill_len))
		return -1;
	for (long i = 0; i < need; i++) {
		if (syscall(SYS_mmap, fill_base + 4096 + i * 8192, 4096, PROT_READ,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == -1)
			return -1;
	}
	return max - map_count();
}

static long do_unfill(void)
{
	if (!fill_base)
		return 0;
	syscall(SYS_munmap, fill_base, fill_len);
	fill_base = 0;
	return 0;
}

/* ------------------------------------------------------------------ maps */

static void dump_regions(const char *prefix)
{
	int n = read_file("/proc/self/smaps", smaps, sizeof(smaps));
	if (n < 0)
		die("smaps");
	char *save = NULL;
	unsigned long cur_s = 0, cur_e = 0;
	char cur_hdr[512];
	int have = 0;
	for (char *ln = strtok_r(smaps, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
		/* header lines start with a hex digit and contain '-' before ' ' */
		char *dash = strchr(ln, '-');
		char *sp = strchr(ln, ' ');
		if (dash && sp && dash < sp && ((ln[0] >= '0' && ln[0] <= '9') || (ln[0] >= 'a' && ln[0] <= 'f'))) {
			*dash = 0;
			*sp = 0;
			{
				/* parse hex without 0x */
				unsigned long v = 0;
				for (char *q = ln; *q; q++)
					v = v * 16 + (*q <= '9' ? *q - '0' : (*q | 32) - 'a' + 10);
				cur_s = v;
				v = 0;
				for (char *q = dash + 1; *q; q++)
					v = v * 16 + (*q <= '9' ? *q - '0' : (*q | 32) - 'a' + 10);
				cur_e = v;
			}
			strncpy(cur_hdr, sp + 1, sizeof(cur_hdr) - 1);
			cur_hdr[sizeof(cur_hdr) - 1] = 0;
			have = 1;
			continue;
		}
		if (have && !strncmp(ln, "VmFlags:", 8)) {
			have = 0;
			for (int r = 0; r < nregs; r++) {
				long *base = sym_slot(regs[r].ref, 0);
				if (!base)
					continue;
				unsigned long lo = *base + regs[r].off, hi = lo + regs[r].len;
				if (cur_e <= lo || cur_s >= hi)
					continue;
				/* header rest: "perms offset dev inode   name" */
				char perms[8] = {0}, name[256] = {0};
				char *h = cur_hdr;
				memcpy(perms, h, 4);
				/* skip 3 more fields */
				int fields = 0;
				while (*h && fields < 4) {
					while (*h && *h != ' ')
						h++;
					while (*h == ' ')
						h++;
					fields++;
				}
				memcpy(name, h, strnlen(h, sizeof(name) - 1));
				for (char *q = name; *q; q++)
					if (*q == ' ')
						*q = '_';
				puts_(prefix);
				puts_(" ");
				puts_(regs[r].ref);
				puts_(" ");
				putdec((long)(cur_s - *base));
				puts_(" ");
				putdec((long)(cur_e - *base));
				puts_(" ");
				puts_(perms);
				puts_(" ");
				puts_(name[0] ? name : "-");
				puts_("\t");
				char *f = ln + 8;
				while (*f == ' ')
					f++;
				puts_(f);
				puts_("\n");
				break;
			}
		}
	}
	flush_out();
}

/* ----------------------------------------------------------------- steps */

static int tokenize(char *s, char **tok, int max)
{
	int n = 0;
	while (*s && n < max) {
		while (*s == ' ')
			s++;
		if (!*s)
			break;
		tok[n++] = s;
		while (*s && *s != ' ')
			s++;
		if (*s)
			*s++ = 0;
	}
	return n;
}

enum kind { K_SYS, K_VAL, K_SIG };

/* Runs one step; prints its result line with the given tag and index. */
static void run_step(const char *tag, const char *idx, char **t, int nt, int is_child);

static void report(const char *tag, const char *idx, enum kind k, long v, const char *bindname)
{
	puts_(tag);
	puts_(" ");
	puts_(idx);
	if (k == K_SIG) {
		puts_(" sig ");
		putdec(sig_no);
		puts_(" ");
		putdec(sig_code);
	} else if (k == K_SYS && v == -1) {
		puts_(" err ");
		putdec(errno);
	} else {
		puts_(" ok ");
		putdec(v);
		if (bindname)
			bind(bindname, v);
	}
	puts_("\n");
	flush_out();
}

static int child_first, child_count;     /* set by the fork step */

static void run_step(const char *tag, const char *idx, char **t, int nt, int is_child)
{
	const char *op = t[0];
	const char *bname = NULL;
	if (nt > 1 && t[nt - 1][0] == '=') {
		bname = t[nt - 1] + 1;
		nt--;
	}
	long a[8] = {0};
	for (int i = 1; i < nt && i < 8; i++)
		a[i - 1] = arg(t[i]);
	long r;
	errno = 0;

	if (!strcmp(op, "mmap")) {
		r = syscall(SYS_mmap, a[0], a[1], a[2], a[3], a[4], a[5]);
		report(tag, idx, K_SYS, r, bname);
	} else if (!strcmp(op, "munmap")) {
		report(tag, idx, K_SYS, syscall(SYS_munmap, a[0], a[1]), bname);
	} else if (!strcmp(op, "mprotect")) {
		report(tag, idx, K_SYS, syscall(SYS_mprotect, a[0], a[1], a[2]), bname);
	} else if (!strcmp(op, "mremap")) {
		report(tag, idx, K_SYS, syscall(SYS_mremap, a[0], a[1], a[2], a[3], a[4]), bname);
	} else if (!strcmp(op, "madvise")) {
		report(tag, idx, K_SYS, syscall(SYS_madvise, a[0], a[1], a[2]), bname);
	} else if (!strcmp(op, "mlock")) {
		report(tag, idx, K_SYS, syscall(SYS_mlock, a[0], a[1]), bname);
	} else if (!strcmp(op, "mlock2")) {
		report(tag, idx, K_SYS, syscall(SYS_mlock2, a[0], a[1], a[2]), bname);
	} else if (!strcmp(op, "munlock")) {
		report(tag, idx, K_SYS, syscall(SYS_munlock, a[0], a[1]), bname);
	} else if (!strcmp(op, "mlockall")) {
		report(tag, idx, K_SYS, syscall(SYS_mlockall, a[0]), bname);
	} else if (!strcmp(op, "munlockall")) {
		report(tag, idx, K_SYS, syscall(SYS_munlockall), bname);
	} else if (!strcmp(op, "brk")) {
		/* the raw brk syscall never fails with an errno: it returns the
		 * (possibly unchanged) break */
		r = syscall(SYS_brk, a[0]);
		report(tag, idx, K_VAL, r, bname);
	} else if (!strcmp(op, "read8") || !strcmp(op, "write8") ||
		   !strcmp(op, "faultr") || !strcmp(op, "faultw")) {
		volatile unsigned char *p = (volatile unsigned char *)a[0];
		int write = op[0] == 'w' || !strcmp(op, "faultw");
		long val = 0;
		if (sigsetjmp(jb, 1)) {
			report(tag, idx, K_SIG, 0, NULL);
			return;
		}
		/* The first getrusage() after a fork may itself take a COW fault
		 * on this process's stack (as may sigsetjmp on jb): absorb those
		 * before sampling, so the delta counts only the access below. */
		minflt();
		long before = minflt();
		if (write)
			*p = (unsigned char)a[1];
		else
			val = *p;
		long after = minflt();
		if (op[0] == 'f')
			val = after - before;
		report(tag, idx, K_VAL, val, bname);
	} else if (!strcmp(op, "vmlck")) {
		report(tag, idx, K_VAL, status_field_kb("VmLck:"), bname);
	} else if (!strcmp(op, "pagemap")) {
		int fd = open("/proc/self/pagemap", O_RDONLY);
		uint64_t e = 0;
		if (fd < 0 || pread(fd, &e, 8, (a[0] / 4096) * 8) != 8)
			die("pagemap");
		close(fd);
		/* keep flag bits 55..63 only (the PFN is not reproducible) */
		report(tag, idx, K_VAL, (long)(e >> 55), bname);
	} else if (!strcmp(op, "setrlimit")) {
		struct rlimit rl = { (rlim_t)a[1], (rlim_t)a[2] };
		report(tag, idx, K_SYS, setrlimit((int)a[0], &rl), bname);
	} else if (!strcmp(op, "dropcaps")) {
		/* become nobody: no CAP_IPC_LOCK, RLIMIT_MEMLOCK enforced */
		report(tag, idx, K_SYS, syscall(SYS_setresuid, 65534, 65534, 65534), bname);
	} else if (!strcmp(op, "memfd")) {
		r = syscall(SYS_memfd_create, "vmexec", MFD_ALLOW_SEALING);
		if (r >= 0 && ftruncate((int)r, a[0]))
			r = -1;
		report(tag, idx, K_SYS, r, bname);
	} else if (!strcmp(op, "seal")) {
		report(tag, idx, K_SYS, fcntl((int)a[0], F_ADD_SEALS, (int)a[1]), bname);
	} else if (!strcmp(op, "fill")) {
		report(tag, idx, K_VAL, do_fill(a[0]), bname);
	} else if (!strcmp(op, "unfill")) {
		report(tag, idx, K_VAL, do_unfill(), bname);
	} else if (!strcmp(op, "headroom")) {
		report(tag, idx, K_VAL, max_map_count() - map_count(), bname);
	} else if (!strcmp(op, "exit")) {
		if (!is_child)
			die("exit outside a child");
		report(tag, idx, K_VAL, 0, NULL);
		dump_regions("CV");
		_exit((int)a[0]);
	} else if (!strcmp(op, "fork")) {
		if (is_child)
			die("nested fork");
		long n = a[0];
		int first = child_first;
		(void)n;
		pid_t pid = fork();
		if (pid == 0) {
			for (int i = 0; i < child_count; i++) {
				char *ct[16];
				static char copy[4096];
				strncpy(copy, lines[first + i], sizeof(copy) - 1);
				int cn = tokenize(copy, ct, 16);
				/* "C idx op ..." */
				run_step("C", ct[1], ct + 2, cn - 2, 1);
			}
			dump_regions("CV");
			_exit(0);
		}
		int st = 0;
		waitpid(pid, &st, 0);
		puts_("CX ");
		putdec(st);
		puts_("\n");
		report(tag, idx, K_VAL, pid > 0 ? 0 : -1, NULL);
	} else {
		die("unknown op");
	}
}

int main(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);

	int len = 0;
	for (;;) {
		ssize_t n = read(0, prog + len, sizeof(prog) - 1 - len);
		if (n <= 0)
			break;
		len += n;
	}
	prog[len] = 0;
	char *save = NULL;
	for (char *ln = strtok_r(prog, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
		if (nlines == MAXLINES)
			die("program too long");
		lines[nlines++] = ln;
	}

	long win = 64 << 20, guard = 1 << 20;
	for (int i = 0; i < nlines; i++) {
		char *t[16];
		static char copy[4096];
		strncpy(copy, lines[i], sizeof(copy) - 1);
		int n = tokenize(copy, t, 16);
		if (n >= 3 && !strcmp(t[0], "WINDOW")) {
			win = parse_int(t[1]);
			guard = parse_int(t[2]);
		}
	}

	/* Prologue: refs first (before this process maps anything else). */
	bind("start_brk", start_brk());
	bind("brk0", syscall(SYS_brk, 0));
	long res = syscall(SYS_mmap, 0, win + 2 * guard, PROT_NONE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == -1)
		die("reserve");
	if (syscall(SYS_munmap, res + guard, win))
		die("unreserve");
	bind("res", res);
	bind("w", res + guard);
	for (int i = 0; i < nsyms; i++) {
		puts_("REF ");
		puts_(syms[i].name);
		puts_(" ");
		putdec(syms[i].val);
		puts_("\n");
	}
	flush_out();

	for (int i = 0; i < nlines; i++) {
		char *t[16];
		static char copy[4096];
		strncpy(copy, lines[i], sizeof(copy) - 1);
		copy[sizeof(copy) - 1] = 0;
		int n = tokenize(copy, t, 16);
		if (n == 0)
			continue;
		if (!strcmp(t[0], "MAPREG")) {
			if (nregs == MAXREGS)
				die("too many regions");
			strncpy(regs[nregs].ref, t[1], sizeof(regs[nregs].ref) - 1);
			regs[nregs].off = parse_int(t[2]);
			regs[nregs].len = parse_int(t[3]);
			nregs++;
		} else if (!strcmp(t[0], "S")) {
			if (!strcmp(t[2], "fork")) {
				child_first = i + 1;
				child_count = (int)parse_int(t[3]);
				run_step("R", t[1], t + 2, n - 2, 0);
				i += child_count;
			} else {
				run_step("R", t[1], t + 2, n - 2, 0);
			}
		}
	}
	dump_regions("V");
	puts_("END\n");
	flush_out();
	return 0;
}
