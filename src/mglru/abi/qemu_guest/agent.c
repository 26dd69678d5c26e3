/* mglru guest agent: serves file operations and workload tasks over a virtio-serial port.
 *
 * Runs as PID 1 of the guest (exec'd by our init script). One request per line:
 *     <id> <CMD> <arg>...            arguments are hex-encoded bytes, numbers decimal
 * one reply per request:
 *     <id> OK <hex>                  or    <id> ERR <errno>
 * The host tags each request with a fresh id and drops replies it did not wait for,
 * so a retried PING during boot cannot desynchronise the stream.
 *
 * Workload tasks are forked children: each joins a memory cgroup, then mmaps and
 * touches memory on command (over a pipe), so their pages are charged to that memcg.
 * Build: gcc -static -O2 -o agent agent.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>
#include <setjmp.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>

#define MAX_LINE (8 << 20)
#define MAX_TASKS 64

static char *line, *out;
static size_t outlen;

struct task { pid_t pid; int to, from; };
static struct task tasks[MAX_TASKS];

static int unhex(const char *h, char *dst, size_t cap) {
	size_t n = strlen(h) / 2;
	if (n + 1 > cap) return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(h + 2 * i, "%2x", &v) != 1) return -1;
		dst[i] = (char)v;
	}
	dst[n] = 0;
	return (int)n;
}

static void reply_hex(FILE *f, const char *id, const char *buf, size_t n) {
	static const char d[] = "0123456789abcdef";
	fprintf(f, "%s OK ", id);
	for (size_t i = 0; i < n; i++) {
		fputc(d[(unsigned char)buf[i] >> 4], f);
		fputc(d[(unsigned char)buf[i] & 15], f);
	}
	fputc('\n', f);
	fflush(f);
}

static void reply_num(FILE *f, const char *id, long long v) {
	char s[32];
	int n = snprintf(s, sizeof(s), "%lld", v);
	reply_hex(f, id, s, n);
}

static void reply_err(FILE *f, const char *id, int e) {
	fprintf(f, "%s ERR %d\n", id, e);
	fflush(f);
}

static char *arg(char **save) { return strtok_r(NULL, " \n", save); }

/* --- the task side: runs in the forked child --------------------------------------- */
static sigjmp_buf touch_fault;

static void on_segv(int sig) {
	(void)sig;
	siglongjmp(touch_fault, 1);
}

/* A minimal VMM: a KVM guest whose RAM (gpa 0) is the task's region [addr, addr+len) and
 * whose code runs from a page of its own above it, in 32-bit protected mode without paging.
 * The guest touches every page of its RAM (a write, or a read), then halts. The VM stays
 * (its memslot and KVM's page tables with it) until the task exits, so later aging and
 * eviction see what the guest's accesses left in the secondary MMU. */
struct vm { unsigned long addr, len; int vm, vcpu; struct kvm_run *run; };
static struct vm vms[8];

static const unsigned char vm_code[] = {
	0x85, 0xc9,                   /* 0:  test ecx, ecx      (ecx: write?)       */
	0x74, 0x05,                   /* 2:  jz 9                                   */
	0xc6, 0x00, 0x01,             /* 4:  mov byte [eax], 1                      */
	0xeb, 0x02,                   /* 7:  jmp 11                                 */
	0x8a, 0x10,                   /* 9:  mov dl, [eax]                          */
	0x05, 0x00, 0x10, 0x00, 0x00, /* 11: add eax, 4096                          */
	0x39, 0xd8,                   /* 16: cmp eax, ebx       (ebx: end of RAM)   */
	0x72, 0xec,                   /* 18: jb 0                                   */
	0xf4,                         /* 20: hlt                                    */
};

static int vm_touch(unsigned long addr, unsigned long len, int write) {
	struct vm *v = NULL;
	for (int i = 0; i < 8 && !v; i++) if (vms[i].len && vms[i].addr == addr) v = &vms[i];
	for (int i = 0; i < 8 && !v; i++) if (!vms[i].len) v = &vms[i];
	if (!v) return EAGAIN;
	unsigned long code_gpa = (len + 0xfff) & ~0xfffUL;
	if (code_gpa + 4096 > 0xffffffffUL) return EINVAL;
	if (!v->len) {
		int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
		if (kvm < 0) return errno;
		int vm = ioctl(kvm, KVM_CREATE_VM, 0);
		int sz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
		close(kvm);
		if (vm < 0 || sz < 0) return errno;
		void *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (code == MAP_FAILED) return errno;
		memcpy(code, vm_code, sizeof(vm_code));
		struct kvm_userspace_memory_region ram = {
			.slot = 0, .guest_phys_addr = 0, .memory_size = code_gpa, .userspace_addr = addr};
		struct kvm_userspace_memory_region text = {
			.slot = 1, .guest_phys_addr = code_gpa, .memory_size = 4096,
			.userspace_addr = (unsigned long)code};
		if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &ram) || ioctl(vm, KVM_SET_USER_MEMORY_REGION, &text))
			{ int e = errno; close(vm); return e; }
		int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
		if (vcpu < 0) { int e = errno; close(vm); return e; }
		v->run = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
		if (v->run == MAP_FAILED) { int e = errno; close(vcpu); close(vm); return e; }
		v->addr = addr; v->len = len; v->vm = vm; v->vcpu = vcpu;
	}
	struct kvm_sregs sr;
	if (ioctl(v->vcpu, KVM_GET_SREGS, &sr)) return errno;
	struct kvm_segment seg = {.base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 3,
				  .present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1};
	sr.ds = sr.es = sr.fs = sr.gs = sr.ss = seg;
	seg.type = 11; seg.selector = 0x8;
	sr.cs = seg;
	sr.cr0 = 0x11;  /* PE | ET: protected mode, paging off: gpa = linear address */
	sr.cr4 = 0; sr.efer = 0;
	if (ioctl(v->vcpu, KVM_SET_SREGS, &sr)) return errno;
	struct kvm_regs rg = {.rip = code_gpa, .rflags = 2, .rax = 0, .rbx = code_gpa,
			      .rcx = (unsigned long)write};
	if (ioctl(v->vcpu, KVM_SET_REGS, &rg)) return errno;
	for (;;) {
		if (ioctl(v->vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR) continue;
			return errno;
		}
		if (v->run->exit_reason == KVM_EXIT_HLT) return 0;
		if (v->run->exit_reason != KVM_EXIT_INTR) return EIO;
	}
}

static void task_loop(int in, int outfd) {
	FILE *r = fdopen(in, "r"), *w = fdopen(outfd, "w");
	static char buf[2048], path[1024];
	while (fgets(buf, sizeof(buf), r)) {
		char op[16];
		unsigned long a = 0, b = 0, c = 0;
		long res = 0;
		int n = sscanf(buf, "%15s %lu %lu %lu", op, &a, &b, &c);
		path[0] = 0;
		if (!strcmp(op, "FMAP") || !strcmp(op, "READF")) {
			char hex[2000] = "";
			if (sscanf(buf, "%*15s %lu %lu %1999s", &a, &b, hex) != 3 ||
			    unhex(hex, path, sizeof(path)) < 0) n = 0;
		}
		if (n < 1) { fprintf(w, "ERR %d\n", EINVAL); fflush(w); continue; }
		errno = 0;
		if (!strcmp(op, "MMAP")) {          /* MMAP len shared align */
			/* over-map by `align` and trim, so a THP region starts on a PMD boundary */
			char *p = mmap(NULL, a + c, PROT_READ | PROT_WRITE,
				       (b ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED) {
				res = -1;
			} else {
				unsigned long start = (unsigned long)p, head = 0;
				if (c) head = (c - start % c) % c;
				if (head) munmap(p, head);
				if (c - head) munmap(p + head + a, c - head);
				res = (long)(start + head);
			}
		} else if (!strcmp(op, "TOUCH")) {  /* TOUCH addr len write; EFAULT if unmapped */
			volatile char *volatile p = (volatile char *)a;
			signal(SIGSEGV, on_segv);
			signal(SIGBUS, on_segv);
			if (sigsetjmp(touch_fault, 1)) {
				errno = EFAULT; res = -1;
			} else {
				for (unsigned long off = 0; off < b; off += 4096) {
					/* a pure store: a write fault, never a read fault first
					 * (which would map the zero page, or the huge zero page) */
					if (c) p[off] = 1;
					else (void)p[off];
				}
			}
		} else if (!strcmp(op, "MADVISE")) { /* MADVISE addr len advice */
			res = madvise((void *)a, b, (int)c);
		} else if (!strcmp(op, "MUNMAP")) {
			res = munmap((void *)a, b);
		} else if (!strcmp(op, "FMAP")) {   /* FMAP len 0 path: MAP_SHARED of a file */
			int fd = open(path, O_RDWR);
			char *p = fd < 0 ? MAP_FAILED :
				mmap(NULL, a, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			int e = errno;
			if (fd >= 0) close(fd);
			errno = e;
			res = p == MAP_FAILED ? -1 : (long)p;
		} else if (!strcmp(op, "READF")) {  /* READF offset len path: read(2) it all */
			static char chunk[1 << 16];
			int fd = open(path, O_RDONLY);
			res = fd < 0 ? -1 : 0;
			for (unsigned long done = 0; fd >= 0 && done < b;) {
				unsigned long want = b - done < sizeof(chunk) ? b - done : sizeof(chunk);
				ssize_t got = pread(fd, chunk, want, a + done);
				if (got < 0) { res = -1; break; }
				if (got == 0) break;
				done += got;
				res = done;
			}
			if (fd >= 0) { int e = errno; close(fd); errno = e; }
		} else if (!strcmp(op, "VMTOUCH")) { /* VMTOUCH addr len write */
			int e = vm_touch(a, b, (int)c);
			if (e) { errno = e; res = -1; }
		} else {
			errno = EINVAL; res = -1;
		}
		if (res == -1 && errno) fprintf(w, "ERR %d\n", errno);
		else fprintf(w, "OK %lu\n", (unsigned long)res);
		fflush(w);
	}
	_exit(0);
}

static struct task *find_task(pid_t pid) {
	for (int i = 0; i < MAX_TASKS; i++) if (tasks[i].pid == pid) return &tasks[i];
	return NULL;
}

static int spawn(const char *procs, pid_t *out_pid) {
	int to[2], from[2];
	struct task *t = find_task(0);
	if (!t) return EAGAIN;
	if (pipe(to) || pipe(from)) return errno;
	int ready[2];
	if (pipe(ready)) return errno;
	pid_t pid = fork();
	if (pid < 0) return errno;
	if (pid == 0) {
		int e = 0;
		int fd = open(procs, O_WRONLY);
		if (fd < 0 || write(fd, "0\n", 2) < 0) e = errno;
		if (fd >= 0) close(fd);
		if (write(ready[1], &e, sizeof(e)) < 0) _exit(1);
		if (e) _exit(1);
		close(to[1]); close(from[0]); close(ready[0]);
		task_loop(to[0], from[1]);
	}
	close(to[0]); close(from[1]); close(ready[1]);
	int e = 0;
	if (read(ready[0], &e, sizeof(e)) != sizeof(e)) e = EIO;
	close(ready[0]);
	if (e) { waitpid(pid, NULL, 0); close(to[1]); close(from[0]); return e; }
	t->pid = pid; t->to = to[1]; t->from = from[0];
	*out_pid = pid;
	return 0;
}

static void kill_task(struct task *t) {
	kill(t->pid, SIGKILL);
	waitpid(t->pid, NULL, 0);
	close(t->to); close(t->from);
	t->pid = 0;
}

/* --- the file side ----------------------------------------------------------------- */
static int read_all(const char *path, size_t *n) {
	int fd = open(path, O_RDONLY);
	if (fd < 0) return errno;
	*n = 0;
	for (;;) {
		ssize_t r = read(fd, out + *n, MAX_LINE / 2 - 1 - *n);
		if (r < 0) { int e = errno; close(fd); return e; }
		if (r == 0) break;
		*n += r;
		if (*n >= MAX_LINE / 2 - 1) break;
	}
	close(fd);
	return 0;
}

static void serve(FILE *in, FILE *o) {
	static char p1[4096], data[MAX_LINE / 2];
	while (fgets(line, MAX_LINE, in)) {
		char *save, *id = strtok_r(line, " \n", &save), *cmd = arg(&save);
		if (!id || !cmd) continue;
		char *a1 = arg(&save), *a2 = arg(&save), *a3 = arg(&save);
		if (a1 && strcmp(cmd, "TASK") && strcmp(cmd, "KILL") && unhex(a1, p1, sizeof(p1)) < 0) {
			reply_err(o, id, EINVAL); continue;
		}
		if (!strcmp(cmd, "PING")) {
			reply_hex(o, id, "", 0);
		} else if (!strcmp(cmd, "READ")) {
			int e = read_all(p1, &outlen);
			if (e) reply_err(o, id, e); else reply_hex(o, id, out, outlen);
		} else if (!strcmp(cmd, "WRITE") || !strcmp(cmd, "PWRITE")) {
			int n = unhex(a2 ? a2 : "", data, sizeof(data));
			int pw = cmd[0] == 'P';
			int fd = open(p1, pw ? O_WRONLY : O_WRONLY | O_TRUNC);
			if (n < 0) { reply_err(o, id, EINVAL); if (fd >= 0) close(fd); continue; }
			if (fd < 0) { reply_err(o, id, errno); continue; }
			ssize_t r = pw ? pwrite(fd, data, n, a3 ? atoll(a3) : 0) : write(fd, data, n);
			int e = errno;
			close(fd);
			if (r < 0) reply_err(o, id, e); else reply_num(o, id, r);
		} else if (!strcmp(cmd, "PREAD")) {
			size_t size = a2 ? strtoull(a2, NULL, 10) : 0;
			if (size > sizeof(data)) size = sizeof(data);
			int fd = open(p1, O_RDONLY);
			if (fd < 0) { reply_err(o, id, errno); continue; }
			ssize_t r = pread(fd, data, size, a3 ? atoll(a3) : 0);
			int e = errno;
			close(fd);
			if (r < 0) reply_err(o, id, e); else reply_hex(o, id, data, r);
		} else if (!strcmp(cmd, "MKDIR") || !strcmp(cmd, "RMDIR")) {
			int r = cmd[0] == 'M' ? mkdir(p1, 0755) : rmdir(p1);
			if (r) reply_err(o, id, errno); else reply_hex(o, id, "", 0);
		} else if (!strcmp(cmd, "EXISTS")) {
			struct stat st;
			reply_num(o, id, stat(p1, &st) == 0);
		} else if (!strcmp(cmd, "ACCESS")) {
			int fd = open(p1, a2 && a2[0] == '1' ? O_RDWR : O_RDONLY);
			if (fd >= 0) close(fd);
			reply_num(o, id, fd >= 0);
		} else if (!strcmp(cmd, "SHELL")) {
			/* run a command through busybox sh; reply with its output and status */
			snprintf(data, sizeof(data), "%s 2>&1; echo \"rc=$?\"", p1);
			FILE *pp = popen(data, "r");
			if (!pp) { reply_err(o, id, errno); continue; }
			outlen = fread(out, 1, MAX_LINE / 2 - 1, pp);
			pclose(pp);
			reply_hex(o, id, out, outlen);
		} else if (!strcmp(cmd, "SPAWN")) {   /* SPAWN <cgroup.procs path> */
			pid_t pid = 0;
			int e = spawn(p1, &pid);
			if (e) reply_err(o, id, e); else reply_num(o, id, pid);
		} else if (!strcmp(cmd, "TASK")) {    /* TASK pid <op args...> */
			struct task *t = a1 ? find_task(atoi(a1)) : NULL;
			if (!t || !a2) { reply_err(o, id, ESRCH); continue; }
			char req[2048], rep[256];
			char *a4 = arg(&save), *a5 = arg(&save);
			snprintf(req, sizeof(req), "%s %s %s %s\n", a2, a3 ? a3 : "0",
				 a4 ? a4 : "0", a5 ? a5 : "0");
			if (write(t->to, req, strlen(req)) < 0) { reply_err(o, id, errno); continue; }
			ssize_t r = 0, n = 0;
			while (n < (ssize_t)sizeof(rep) - 1 && (r = read(t->from, rep + n, 1)) == 1 && rep[n] != '\n') n++;
			rep[n] = 0;
			unsigned long v;
			int e;
			if (r <= 0) reply_err(o, id, EIO);
			else if (sscanf(rep, "OK %lu", &v) == 1) reply_num(o, id, (long long)v);
			else if (sscanf(rep, "ERR %d", &e) == 1) reply_err(o, id, e);
			else reply_err(o, id, EIO);
		} else if (!strcmp(cmd, "KILL")) {
			struct task *t = a1 ? find_task(atoi(a1)) : NULL;
			if (!t) { reply_err(o, id, ESRCH); continue; }
			kill_task(t);
			reply_hex(o, id, "", 0);
		} else {
			reply_err(o, id, ENOSYS);
		}
	}
}

static char *find_port(const char *name) {
	static char dev[300];
	DIR *d = opendir("/sys/class/virtio-ports");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char p[300], n[64] = {0};
		snprintf(p, sizeof(p), "/sys/class/virtio-ports/%s/name", e->d_name);
		int fd = open(p, O_RDONLY);
		if (fd < 0) continue;
		ssize_t r = read(fd, n, sizeof(n) - 1);
		close(fd);
		if (r > 0 && !strncmp(n, name, strlen(name))) {
			snprintf(dev, sizeof(dev), "/dev/%s", e->d_name);
			closedir(d);
			return dev;
		}
	}
	if (d) closedir(d);
	return NULL;
}

int main(void) {
	line = malloc(MAX_LINE);
	out = malloc(MAX_LINE / 2);
	signal(SIGPIPE, SIG_IGN);
	char *dev = NULL;
	for (int i = 0; i < 100 && !(dev = find_port("mglru.agent")); i++) usleep(50000);
	if (!dev) { fprintf(stderr, "mglru-agent: no virtio port mglru.agent\n"); return 1; }
	int fd = open(dev, O_RDWR);
	if (fd < 0) { perror("mglru-agent: open port"); return 1; }
	FILE *in = fdopen(fd, "r"), *o = fdopen(dup(fd), "w");
	fprintf(stderr, "mglru-agent: ready on %s\n", dev);
	for (;;) {
		serve(in, o);
		/* the host closed the port: wait for the next connection */
		clearerr(in);
		usleep(100000);
	}
}
