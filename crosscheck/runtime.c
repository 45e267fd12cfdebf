// SPDX-License-Identifier: GPL-2.0-only
/*
 * ptlab crosscheck: the guest side, shared by every translated scenario.
 *
 * The program is started once per target as `prog T` (T = the target's
 * index). It is the *controller*: it forks one worker per scenario process
 * and drives them over pipes, so the order of ops across processes is exactly
 * the scenario's. Around every op it writes markers to trace_marker; the host
 * splits the trace on them:
 *
 *     ptlab T op K          the op's kernel activity follows
 *     ptlab T dump K        the page-table dump of every live process follows
 *     ptlab T done K        end of the dump
 *     ptlab T pid J PID     scenario process J is PID
 *     ptlab T error K MSG   the op failed in the guest (errno text)
 *
 * The dump: each live worker reads its own /proc/self/smaps while the kprobe
 * event ptlab/vmnp on vm_normal_page() is enabled (smaps calls it with the
 * ptep_get() value of every present PTE: the raw descriptors), and appends
 * its pagemap entries -- present or swapped pages in the scenario's ranges,
 * with the folio of each present page from /proc/kpageflags -- to
 * /out/pagemap-T.txt.
 *
 * Workers never allocate: their stack and buffers are touched before the
 * scenario's THP settings are written, so their own memory stays in order-0
 * folios and never shows up as contpte activity.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef MPOL_MF_MOVE
#define MPOL_MF_MOVE (1 << 1)
#endif

#define KPF_COMPOUND_HEAD 15
#define KPF_COMPOUND_TAIL 16
#define KPF_ZERO_PAGE 24
#define TRACING "/sys/kernel/tracing/"

struct range { int proc; unsigned long start, end; };
struct op_ranges { int n; const struct range *r; };

/* generated per scenario (see crosscheck/translate.py) */
struct scenario {
	const char *name;
	int nprocs, nops;
	const int *parent;            /* parent[j]: the process that forks j (-1 for p0) */
	const int *op_proc;           /* op_proc[k]: the process that runs op k */
	const struct op_ranges *dump; /* dump[k]: the ranges to dump after op k */
	const char *const *defaults;  /* knob, value, knob, value, ..., NULL: the engine's defaults */
	void (*setup)(void);          /* the scenario's sysfs knobs, before the first op */
	int (*run_op)(int k, int self, int *child); /* 0, or errno; *child: a fork's child index */
	int (*fork_child)(int k);     /* the child index op k creates, -1 if it is no fork */
	int (*exit_proc)(int k);      /* the process op k ends, -1 if it is no exit */
};

static int target;
static const struct scenario *S;
static int marker_fd = -1, vmnp_fd = -1;
static long page_size;
static char buf[1 << 16];

static void die(const char *what)
{
	dprintf(2, "ptlab-guest: %s: %s\n", what, strerror(errno));
	exit(3);
}

static void marker(const char *fmt, ...)
{
	char m[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	if (write(marker_fd, m, n) != n)
		die("trace_marker");
}

static void write_file(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0 || write(fd, value, strlen(value)) != (ssize_t)strlen(value)) {
		dprintf(2, "ptlab-guest: cannot write '%s' to %s: %s\n", value, path, strerror(errno));
		exit(3);
	}
	close(fd);
}

/* used by the generated setup(): a knob that an older kernel lacks is an error
 * the host reports, never silently skipped */
static void knob(const char *path, const char *value)
{
	write_file(path, value);
}

/* --- the workers --------------------------------------------------------------------------- */
#define MAXPROCS 64
static int cmd_rd[MAXPROCS], cmd_wr[MAXPROCS], ack_rd[MAXPROCS], ack_wr[MAXPROCS];
static pid_t pids[MAXPROCS];

struct cmd { int kind, k; };
enum { CMD_OP = 1, CMD_DUMP = 2, CMD_EXIT = 3 };
struct ack { int err, child; pid_t pid; };

static int is_descendant(int j, int of)
{
	while (j >= 0) {
		if (j == of)
			return 1;
		j = S->parent[j];
	}
	return 0;
}

/* keep only the pipe ends of self and of the processes self will create */
static void close_foreign(int self)
{
	for (int j = 0; j < S->nprocs; j++) {
		if (j == self) {
			close(cmd_wr[j]);
			close(ack_rd[j]);
		} else if (!is_descendant(j, self)) {
			close(cmd_rd[j]);
			close(ack_wr[j]);
			close(cmd_wr[j]);
			close(ack_rd[j]);
		} else {
			close(cmd_wr[j]);
			close(ack_rd[j]);
		}
	}
}

static unsigned long long read_u64_at(int fd, unsigned long long index)
{
	unsigned long long v = 0;

	if (pread(fd, &v, sizeof(v), index * sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

/* no stdio in workers: it would allocate, and the heap is the worker's own memory */
static char out[1 << 16];
static size_t out_len;
static int out_fd = -1;

static void out_flush(void)
{
	if (out_len && write(out_fd, out, out_len) != (ssize_t)out_len)
		die("pagemap output");
	out_len = 0;
}

static void out_line(const char *fmt, ...)
{
	va_list ap;
	int n;

	if (out_len + 256 > sizeof(out))
		out_flush();
	va_start(ap, fmt);
	n = vsnprintf(out + out_len, 256, fmt, ap);
	va_end(ap);
	out_len += n;
}

#define PM_CHUNK 512
static unsigned long long pm_buf[PM_CHUNK];

static void dump_pagemap(int self, int k)
{
	const struct op_ranges *d = &S->dump[k];
	int pm = open("/proc/self/pagemap", O_RDONLY);
	int kf = open("/proc/kpageflags", O_RDONLY);
	char path[64];

	if (pm < 0 || kf < 0)
		die("pagemap/kpageflags");
	snprintf(path, sizeof(path), "/out/pagemap-%d.txt", target);
	out_fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (out_fd < 0)
		die(path);
	for (int i = 0; i < d->n; i++) {
		unsigned long long last_head = ~0ULL, last_nr = 0;

		if (d->r[i].proc != self)
			continue;
		for (unsigned long va = d->r[i].start; va < d->r[i].end; va += page_size) {
			unsigned long idx = (va - d->r[i].start) / page_size % PM_CHUNK;
			unsigned long long e, pfn, flags, head, nr = 1;

			if (idx == 0) { /* pagemap in chunks: one read per PM_CHUNK pages */
				unsigned long left = (d->r[i].end - va) / page_size;
				size_t want = (left < PM_CHUNK ? left : PM_CHUNK) * sizeof(pm_buf[0]);

				memset(pm_buf, 0, sizeof(pm_buf));
				if (pread(pm, pm_buf, want, va / page_size * sizeof(pm_buf[0])) < 0)
					die("pagemap read");
			}
			e = pm_buf[idx];
			if (!(e >> 62))
				continue; /* neither present nor swapped */
			if (e >> 63 & 1) {
				pfn = e & ((1ULL << 55) - 1);
				if (last_nr && pfn >= last_head && pfn < last_head + last_nr) {
					head = last_head, nr = last_nr; /* the folio of the previous page */
					flags = read_u64_at(kf, pfn);
				} else {
					flags = read_u64_at(kf, pfn);
					head = pfn;
					if (flags >> KPF_COMPOUND_TAIL & 1)
						while (head > 0 && (read_u64_at(kf, head) >> KPF_COMPOUND_TAIL & 1))
							head--;
					if ((head == pfn ? flags : read_u64_at(kf, head)) >> KPF_COMPOUND_HEAD & 1)
						while (read_u64_at(kf, head + nr) >> KPF_COMPOUND_TAIL & 1)
							nr++;
					last_head = head, last_nr = nr;
				}
				out_line("%d %d %d P %lx %llx %llx %llu %llx\n", k, self, getpid(), va, pfn, head,
					 nr, flags);
			} else {
				out_line("%d %d %d S %lx %llx %llx\n", k, self, getpid(), va, e & 0x1f,
					 (e >> 5) & ((1ULL << 50) - 1));
			}
		}
	}
	out_flush();
	close(out_fd);
	close(kf);
	close(pm);
	/* the raw descriptors: smaps calls vm_normal_page(vma, addr, ptep_get(pte)) */
	int sm = open("/proc/self/smaps", O_RDONLY);

	if (sm < 0)
		die("smaps");
	while (read(sm, buf, sizeof(buf)) > 0)
		;
	close(sm);
}

static void worker(int self)
{
	struct cmd c;
	struct ack a;

	signal(SIGCHLD, SIG_IGN); /* children are reaped by the kernel */
	for (;;) {
		ssize_t n = read(cmd_rd[self], &c, sizeof(c));

		if (n != sizeof(c))
			_exit(n == 0 ? 0 : 4);
		memset(&a, 0, sizeof(a));
		a.child = -1;
		if (c.kind == CMD_EXIT)
			_exit(0);
		if (c.kind == CMD_DUMP) {
			dump_pagemap(self, c.k);
		} else {
			int child = S->fork_child(c.k);

			if (child >= 0) {
				pid_t pid = fork();

				if (pid < 0) {
					a.err = errno;
				} else if (pid == 0) {
					close_foreign(child);
					worker(child);
				} else {
					/* the child's pipe ends belong to it and its descendants */
					for (int j = 0; j < S->nprocs; j++)
						if (is_descendant(j, child)) {
							close(cmd_rd[j]);
							close(ack_wr[j]);
						}
					a.child = child;
					a.pid = pid;
				}
			} else {
				a.err = S->run_op(c.k, self, &a.child);
			}
		}
		if (write(ack_wr[self], &a, sizeof(a)) != sizeof(a))
			_exit(5);
	}
}

/* --- the controller ------------------------------------------------------------------------ */
static struct ack send(int j, int kind, int k)
{
	struct cmd c = { kind, k };
	struct ack a;

	if (write(cmd_wr[j], &c, sizeof(c)) != sizeof(c))
		die("command pipe");
	if (read(ack_rd[j], &a, sizeof(a)) != sizeof(a))
		die("ack pipe");
	return a;
}

/* exit_mm() has run once the process's end of its ack pipe is closed: exit_files()
 * comes after exit_mm() in do_exit(), and only that process holds the write end
 * (close_foreign). Never poll /proc/PID/stat for this: reading it takes a reference
 * to the mm, and the final mmput() -- the whole teardown -- then runs in the
 * reader's task instead of the exiting one. */
static void wait_exited(int j)
{
	struct ack a;

	while (read(ack_rd[j], &a, sizeof(a)) > 0)
		;
}

/* the program's own mappings (text, data, heap, stack) never get large folios,
 * whatever the scenario's THP settings: VM_NOHUGEPAGE, inherited by every worker */
static void no_huge_self(void)
{
	int fd = open("/proc/self/maps", O_RDONLY);
	ssize_t n;
	char *p, *end;

	if (fd < 0)
		die("/proc/self/maps");
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		die("/proc/self/maps");
	buf[n] = 0;
	for (p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		unsigned long a = strtoul(p, &end, 16), b;

		if (*end != '-')
			break;
		b = strtoul(end + 1, &end, 16);
		if (strstr(p, "[vvar]") && strstr(p, "[vvar]") < strchr(p, '\n'))
			continue;
		madvise((void *)a, b - a, MADV_NOHUGEPAGE); /* [vdso] and [vvar] refuse: fine */
	}
}

static void prefault_stack(void)
{
	volatile char pad[256 * 1024];

	for (size_t i = 0; i < sizeof(pad); i += 1024)
		pad[i] = 1;
}

int run_scenario(const struct scenario *s, int t)
{
	int alive[MAXPROCS] = { 0 };

	S = s;
	target = t;
	page_size = sysconf(_SC_PAGESIZE);
	if (S->nprocs > MAXPROCS) {
		dprintf(2, "ptlab-guest: too many processes\n");
		return 3;
	}
	marker_fd = open(TRACING "trace_marker", O_WRONLY);
	vmnp_fd = open(TRACING "events/ptlab/vmnp/enable", O_WRONLY);
	if (marker_fd < 0 || vmnp_fd < 0)
		die("tracefs");
	/* the defaults first, so this program's own memory is faulted in as order-0 folios */
	no_huge_self();
	for (const char *const *d = S->defaults; *d; d += 2)
		knob(d[0], d[1]);
	prefault_stack();
	memset(buf, 0, sizeof(buf));
	memset(out, 0, sizeof(out));
	memset(pm_buf, 0, sizeof(pm_buf));
	for (int j = 0; j < S->nprocs; j++) {
		int c[2], a[2];

		if (pipe(c) || pipe(a))
			die("pipe");
		cmd_rd[j] = c[0], cmd_wr[j] = c[1], ack_rd[j] = a[0], ack_wr[j] = a[1];
	}
	S->setup();
	pids[0] = fork();
	if (pids[0] < 0)
		die("fork");
	if (pids[0] == 0) {
		close_foreign(0);
		worker(0);
	}
	for (int j = 0; j < S->nprocs; j++) {
		close(cmd_rd[j]);
		close(ack_wr[j]);
	}
	alive[0] = 1;
	marker("ptlab %d pid 0 %d", target, pids[0]);
	for (int k = 0; k < S->nops; k++) {
		int p = S->op_proc[k], gone = S->exit_proc(k);
		struct ack a;

		marker("ptlab %d op %d", target, k);
		if (gone >= 0) {
			struct cmd c = { CMD_EXIT, k };

			if (write(cmd_wr[gone], &c, sizeof(c)) != sizeof(c))
				die("command pipe");
			wait_exited(gone);
			alive[gone] = 0;
		} else {
			a = send(p, CMD_OP, k);
			if (a.err < 0) {
				/* an op whose failure is an answer (MADV_COLLAPSE's errno): recorded,
				 * and the scenario goes on with the state dumped as after any op */
				marker("ptlab %d error %d %s", target, k, strerror(-a.err));
			} else if (a.err) {
				marker("ptlab %d error %d %s", target, k, strerror(a.err));
				dprintf(2, "ptlab-guest: %s: op %d: %s\n", S->name, k, strerror(a.err));
				break;
			}
			if (a.child >= 0) {
				pids[a.child] = a.pid;
				alive[a.child] = 1;
				marker("ptlab %d pid %d %d", target, a.child, a.pid);
			}
		}
		marker("ptlab %d dump %d", target, k);
		if (write(vmnp_fd, "1", 1) != 1)
			die("vmnp enable");
		for (int j = 0; j < S->nprocs; j++)
			if (alive[j])
				send(j, CMD_DUMP, k);
		if (write(vmnp_fd, "0", 1) != 1)
			die("vmnp disable");
		marker("ptlab %d done %d", target, k);
	}
	for (int j = 0; j < S->nprocs; j++) {
		if (alive[j]) {
			struct cmd c = { CMD_EXIT, -1 };

			if (write(cmd_wr[j], &c, sizeof(c)) == sizeof(c))
				wait_exited(j);
		}
	}
	marker("ptlab %d end", target);
	return 0;
}

/* --- helpers for the generated ops --------------------------------------------------------- */
static int touch(unsigned long start, unsigned long end, int write)
{
	for (unsigned long va = start; va < end; va += page_size) {
		if (write)
			*(volatile unsigned char *)va = 1;
		else
			(void)*(volatile unsigned char *)va;
	}
	return 0;
}

static int do_mmap(unsigned long addr, unsigned long size, int prot, int flags, const char *file)
{
	int fd = -1;
	void *p;

	if (file) {
		fd = open(file, O_RDWR);
		if (fd < 0)
			return errno;
	}
	p = mmap((void *)addr, size, prot, flags | MAP_FIXED_NOREPLACE, fd, 0);
	if (fd >= 0)
		close(fd);
	if (p == MAP_FAILED)
		return errno;
	if ((unsigned long)p != addr)
		return EADDRNOTAVAIL;
	return 0;
}

static int sys0(long r)
{
	return r < 0 ? errno : 0;
}

static int do_split(unsigned long start, unsigned long end, int order)
{
	char v[128];
	int n = snprintf(v, sizeof(v), "%d,0x%lx,0x%lx,%d", getpid(), start, end, order);
	int fd = open("/sys/kernel/debug/split_huge_pages", O_WRONLY);
	int err = 0;

	if (fd < 0)
		return errno;
	if (write(fd, v, n) != n)
		err = errno;
	close(fd);
	return err;
}

static int do_move_pages(const unsigned long *addrs, unsigned long n, int node)
{
	static void *pages[4096];
	static int nodes[4096], status[4096];

	if (n > 4096)
		return E2BIG;
	for (unsigned long i = 0; i < n; i++) {
		pages[i] = (void *)addrs[i];
		nodes[i] = node;
	}
	if (syscall(SYS_move_pages, 0, n, pages, nodes, status, MPOL_MF_MOVE) < 0)
		return errno;
	for (unsigned long i = 0; i < n; i++)
		if (status[i] != node)
			return status[i] < 0 ? -status[i] : EAGAIN;
	return 0;
}

static int do_read(const char *file, unsigned long off, unsigned long len)
{
	int fd = open(file, O_RDONLY);

	if (fd < 0)
		return errno;
	while (len) {
		ssize_t n = pread(fd, buf, len < sizeof(buf) ? len : sizeof(buf), off);

		if (n <= 0) {
			close(fd);
			return n < 0 ? errno : EIO;
		}
		off += n, len -= n;
	}
	close(fd);
	return 0;
}

/* create the file, or grow it: a smaller mapping of an existing file must not
 * truncate it (the engine's files only ever grow, engine/mm/pagecache.py) */
static int make_file(const char *file, unsigned long size)
{
	int fd = open(file, O_RDWR | O_CREAT, 0600);
	struct stat st;

	if (fd < 0)
		return errno;
	if (fstat(fd, &st)) {
		close(fd);
		return errno;
	}
	if ((unsigned long)st.st_size < size && ftruncate(fd, size)) {
		close(fd);
		return errno;
	}
	close(fd);
	return 0;
}
