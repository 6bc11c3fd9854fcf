// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Lifecycle sensor: exec, fork, exit (whole thread group), reap, and optionally failed execs.
 * BTF tracepoints only (no kprobes on this kernel, and tp_btf needs no tracefs). Every
 * emitted record is counted as generated first; every ring failure is counted as lost. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "lifecycle.h"
#include "ringbuf.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SIGNAL_GROUP_EXIT 0x00000004
#define TASK_DEAD 0x80
#define SIGCHLD 17
#define SA_NOCLDWAIT 2
#define WEXITED 4
#define WNOWAIT 0x01000000
#define CLD_EXITED 1
#define CLD_DUMPED 3

/* Load-time configuration (libbpf-tools habit). */
const volatile __u32 args_cap = 4096;      /* bytes of argv copied, <= PT_ARGS_MAX */
const volatile __u32 filename_cap = 1024;  /* bytes of filename copied, <= PT_FILENAME_MAX */
const volatile bool emit_threads = false;  /* emit fork records for threads too */
const volatile __u32 wakeup_mode = 0;      /* 0: wake only a sleeping consumer; 1: kernel adaptive */
const volatile __u64 page_kb = 4;          /* page size in KiB, set from user space */
const volatile __u32 generation = 0;       /* emits while pt_gen holds this (lifecycle.h) */
#ifdef PATROL_VARIANT
/* A second build for the reload tests: another .rodata layout, same records. */
const volatile __u32 variant_tag = 0xa17;
#endif

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} pt_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pt_counters);
} pt_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pt_seq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct pt_ring_ctl);
} pt_ring_ctl SEC(".maps");

/* Exec records have a variable tail, built here then copied with bpf_ringbuf_output.
 * A plain array indexed by CPU: the value is larger than per-CPU maps allow.
 * max_entries is set to the number of possible CPUs at load. */
struct exec_scratch {
	struct pt_exec rec;
	char tail[PT_ARGS_MAX + PT_FILENAME_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct exec_scratch);
} pt_scratch SEC(".maps");

/* Group exit per tgid: dedupes racing last-thread exits, gives reap its exit_ns, and records
 * whether a wait() already reported the reap. */
#define MARK_REAPED 0x100

struct exit_mark {
	__u64 start_ns;
	__u64 exit_ns;
	__u32 flags; /* PT_F_AUTOREAP | MARK_REAPED */
	__u32 pad;
#ifdef PATROL_TEST_MAP_LAYOUT
	__u64 patrol_test_extra; /* reload refusal test: a map layout the running object cannot share */
#endif
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct exit_mark);
} pt_exits SEC(".maps");

/* Exit records waiting for their thread's final switch, keyed by tid. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct pt_exit);
} pt_pending_exit SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pt_exit);
} pt_exit_scratch SEC(".maps");

/* execve filename at syscall entry, per tid, for the optional exec_failed records. */
struct exec_arg {
	char filename[256];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct exec_arg);
} pt_exec_args SEC(".maps");

/* The generation word, shared by every generation of this sensor (lifecycle.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} pt_gen SEC(".maps");

/* The last task handle_free saw on this CPU. During a sensor reload two generations' hooks can
 * both run for one free (back to back on this CPU: tracepoint probes run with preemption off);
 * the second must not take the mark the first deleted for an exit it never saw. */
struct free_last {
	__u64 start_ns;
	__u32 pid;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct free_last);
} pt_free_last SEC(".maps");

static const __u32 zero = 0;

/* True while this object's generation is the one that emits (lifecycle.h). */
static __always_inline bool active(void)
{
	__u32 *g = bpf_map_lookup_elem(&pt_gen, &zero);
	__u32 v;

	if (!g)
		return false;
	v = *(volatile __u32 *)g;
	return v == generation || v == PT_GEN_ALL;
}

/* clang emits BTF only for types a global uses; this anchor puts every wire type into the
 * object's BTF so the TypeScript decoders are generated from the object alone. */
struct pt_wire_types {
	struct pt_hdr hdr;
	struct pt_exec exec;
	struct pt_fork fork;
	struct pt_exit exit;
	struct pt_reap reap;
	struct pt_exec_failed exec_failed;
	struct pt_counters counters;
	struct pt_ring_ctl ring_ctl;
	struct pt_task_snap task_snap;
	struct pt_task_usage task_usage;
	enum pt_op op;
	enum pt_flag flag;
	enum pt_usage_flag usage_flag;
};
struct pt_wire_types *const pt_wire_types_btf __attribute__((unused)) = 0;

static __always_inline struct pt_counters *counters(void)
{
	return bpf_map_lookup_elem(&pt_counters, &zero);
}

static __always_inline void count_generated(__u8 op)
{
	struct pt_counters *c = counters();

	if (c && op < PT_OP_MAX)
		__sync_fetch_and_add(&c->generated[op], 1);
}

static __always_inline void count_lost(__u8 op)
{
	struct pt_counters *c = counters();

	if (c && op < PT_OP_MAX)
		__sync_fetch_and_add(&c->lost_reserve[op], 1);
}

static __always_inline __u64 next_seq(void)
{
	__u64 *s = bpf_map_lookup_elem(&pt_seq, &zero);

	if (!s)
		return 0;
	return __sync_fetch_and_add(s, 1);
}

static __always_inline __u64 submit_flags(void)
{
	return rb_submit_flags(&pt_events, &pt_ring_ctl, wakeup_mode);
}

static __always_inline void wake_if_sleeping(__u64 flags_used)
{
	rb_wake_if_sleeping(&pt_events, &pt_ring_ctl, wakeup_mode, flags_used);
}

static __always_inline void fill_hdr(struct pt_hdr *h, __u8 op, __u32 size, __u8 flags)
{
	h->ktime_ns = bpf_ktime_get_boot_ns();
	h->seq = next_seq();
	h->size = size;
	h->cpu = bpf_get_smp_processor_id();
	h->op = op;
	h->flags = flags;
}

/* Reserve a fixed-size record; counts generated and lost. */
#define RESERVE(ptr, type, op)                                      \
	do {                                                        \
		count_generated(op);                                \
		ptr = bpf_ringbuf_reserve(&pt_events, sizeof(type), 0); \
		if (!ptr) {                                         \
			count_lost(op);                             \
			return 0;                                   \
		}                                                   \
		fill_hdr(&ptr->hdr, op, sizeof(type), 0);           \
	} while (0)

#define SUBMIT(ptr)                                     \
	do {                                            \
		__u64 __f = submit_flags();             \
		bpf_ringbuf_submit(ptr, __f);           \
		wake_if_sleeping(__f);                  \
	} while (0)

static __always_inline __u64 leader_start(struct task_struct *t)
{
	return BPF_CORE_READ(t, group_leader, start_boottime);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct exec_scratch *s;
	struct pt_exec *e;
	struct task_struct *parent;
	struct mm_struct *mm;
	__u64 arg_start, arg_end, full, uid_gid, flags;
	__u32 alen = 0, fcap = filename_cap, acap = args_cap;
	long n;
	__u8 rflags = 0;

	if (!active())
		return 0;
	count_generated(PT_OP_EXEC);
	s = bpf_map_lookup_elem(&pt_scratch, &cpu);
	if (!s) {
		count_lost(PT_OP_EXEC);
		return 0;
	}
	e = &s->rec;
	parent = BPF_CORE_READ(p, real_parent);
	uid_gid = bpf_get_current_uid_gid();

	e->start_ns = BPF_CORE_READ(p, start_boottime);
	e->parent_start_ns = leader_start(parent);
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->pid = BPF_CORE_READ(p, tgid);
	e->old_tid = old_pid;
	e->ppid = BPF_CORE_READ(parent, tgid);
	e->uid = (__u32)uid_gid;
	e->gid = uid_gid >> 32;
	e->euid = BPF_CORE_READ(p, cred, euid.val);
	e->exec_seq = (__u32)BPF_CORE_READ(p, self_exec_id);
	bpf_get_current_comm(e->comm, sizeof(e->comm));

	/* argv as the new image sees it: mm->arg_start..arg_end, never syscall-entry pointers. */
	mm = BPF_CORE_READ(p, mm);
	arg_start = BPF_CORE_READ(mm, arg_start);
	arg_end = BPF_CORE_READ(mm, arg_end);
	full = arg_end > arg_start ? arg_end - arg_start : 0;
	if (acap > PT_ARGS_MAX)
		acap = PT_ARGS_MAX;
	alen = full < acap ? full : acap;
	if (full > alen)
		rflags |= PT_F_ARGS_TRUNCATED;
	if (alen > PT_ARGS_MAX)
		alen = PT_ARGS_MAX;
	if (alen && bpf_probe_read_user(s->tail, alen, (void *)arg_start)) {
		rflags |= PT_F_ARGS_FAULT;
		alen = 0;
	}
	e->args_len = alen;
	e->args_full_len = full > 0xffffffffULL ? 0xffffffff : full;

	if (fcap > PT_FILENAME_MAX)
		fcap = PT_FILENAME_MAX;
	if (alen > PT_ARGS_MAX) /* re-bound for the verifier */
		return 0;
	n = bpf_probe_read_kernel_str(s->tail + alen, fcap, BPF_CORE_READ(bprm, filename));
	if (n <= 0) {
		n = 0;
	} else {
		n -= 1; /* drop the NUL */
		if (n == fcap - 1)
			rflags |= PT_F_FILENAME_TRUNCATED;
	}
	e->filename_len = n;

	__u64 size = sizeof(*e) + alen + n;
	if (size > sizeof(*s))
		return 0;
	fill_hdr(&e->hdr, PT_OP_EXEC, size, rflags);
	/* output reserves inside and may fail, so it must not claim the sleep flag: the wakeup,
	 * if one is owed, comes from wake_if_sleeping below, which claims with a reservation. */
	flags = rb_output_flags(wakeup_mode);
	if (bpf_ringbuf_output(&pt_events, s, size, flags)) {
		struct pt_counters *c = counters();

		count_lost(PT_OP_EXEC);
		if (c)
			__sync_fetch_and_add(&c->seq_burned, 1);
		return 0;
	}
	wake_if_sleeping(flags);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork, struct task_struct *parent, struct task_struct *child)
{
	struct pt_fork *e;
	struct task_struct *owner;
	__u32 pid = BPF_CORE_READ(child, tgid), tid = BPF_CORE_READ(child, pid);
	bool thread = pid != tid;

	if (!active())
		return 0;
	if (thread) {
		struct pt_counters *c = counters();

		if (c)
			__sync_fetch_and_add(&c->thread_forks, 1);
		if (!emit_threads)
			return 0;
	}
	RESERVE(e, struct pt_fork, PT_OP_FORK);
	/* A thread belongs to its process; a process child to its real parent (CLONE_PARENT aware). */
	owner = thread ? parent : BPF_CORE_READ(child, real_parent);
	e->child_start_ns = BPF_CORE_READ(child, start_boottime);
	e->parent_start_ns = leader_start(owner);
	e->child_pid = pid;
	e->child_tid = tid;
	e->parent_pid = BPF_CORE_READ(owner, tgid);
	e->parent_tid = BPF_CORE_READ(parent, pid);
	BPF_CORE_READ_STR_INTO(&e->comm, child, comm);
	if (thread)
		e->hdr.flags |= PT_F_THREAD;
	SUBMIT(e);
	return 0;
}

struct usage {
	__u64 cpu_ns, utime, stime, minflt, majflt, nvcsw, nivcsw;
	__u64 read_bytes, write_bytes, rchar, wchar;
};

/* The task and its signal_struct are BTF pointers here (a tp_btf argument, an iterator's task,
 * or read from one), so fields are read with plain loads the verifier makes fault-safe, not a
 * bpf_probe_read_kernel call per field: those calls were over half of the resource sweep's
 * kernel time with 1,000 processes (bench/README.md, "Session 13"). CO-RE still relocates each
 * field (vmlinux.h types carry preserve_access_index). */
static __always_inline void add_task_usage(struct usage *u, struct task_struct *t)
{
	u->cpu_ns += t->se.sum_exec_runtime;
	u->utime += t->utime;
	u->stime += t->stime;
	u->minflt += t->min_flt;
	u->majflt += t->maj_flt;
	u->nvcsw += t->nvcsw;
	u->nivcsw += t->nivcsw;
	if (bpf_core_field_exists(t->ioac)) {
		u->read_bytes += t->ioac.read_bytes;
		u->write_bytes += t->ioac.write_bytes;
		u->rchar += t->ioac.rchar;
		u->wchar += t->ioac.wchar;
	}
}

static __always_inline void add_signal_usage(struct usage *u, struct signal_struct *s)
{
	u->cpu_ns += s->sum_sched_runtime;
	u->utime += s->utime;
	u->stime += s->stime;
	u->minflt += s->min_flt;
	u->majflt += s->maj_flt;
	u->nvcsw += s->nvcsw;
	u->nivcsw += s->nivcsw;
	if (bpf_core_field_exists(s->ioac)) {
		u->read_bytes += s->ioac.read_bytes;
		u->write_bytes += s->ioac.write_bytes;
		u->rchar += s->ioac.rchar;
		u->wchar += s->ioac.wchar;
	}
}

/* The wait() status of a group: the group code on a group exit, else the leader's own. */
static __always_inline int group_status(struct signal_struct *sig, struct task_struct *leader)
{
	if (BPF_CORE_READ(sig, flags) & SIGNAL_GROUP_EXIT)
		return BPF_CORE_READ(sig, group_exit_code);
	return BPF_CORE_READ(leader, exit_code);
}

/* The kernel reaps at exit when the parent ignores SIGCHLD or set SA_NOCLDWAIT. */
static __always_inline bool parent_autoreaps(struct task_struct *p)
{
	struct task_struct *parent = BPF_CORE_READ(p, real_parent);
	struct k_sigaction ka;
	struct sighand_struct *sh = BPF_CORE_READ(parent, sighand);

	if (BPF_CORE_READ(p, exit_signal) != SIGCHLD || !sh)
		return false;
	if (bpf_probe_read_kernel(&ka, sizeof(ka), &sh->action[SIGCHLD - 1]))
		return false;
	return (unsigned long)ka.sa.sa_handler == 1 /* SIG_IGN */ || (ka.sa.sa_flags & SA_NOCLDWAIT);
}

/* p is the tracepoint's task (a BTF pointer): the accumulators read through it with plain loads. */
static __always_inline void fill_usage(struct pt_exit *e, struct task_struct *p)
{
	struct signal_struct *sig = p->signal;
	struct task_struct *leader = p->group_leader;
	struct usage u = {};

	add_signal_usage(&u, sig);
	add_task_usage(&u, p);
	if (leader != p) /* a leader that exited early is folded into signal only when reaped */
		add_task_usage(&u, leader);
	e->cpu_ns = u.cpu_ns;
	e->utime_ns = u.utime;
	e->stime_ns = u.stime;
	e->maxrss_kb = (__u64)sig->maxrss * page_kb; /* maxrss counts pages */
	e->read_bytes = u.read_bytes;
	e->write_bytes = u.write_bytes;
	e->rchar = u.rchar;
	e->wchar = u.wchar;
	e->minflt = u.minflt;
	e->majflt = u.majflt;
	e->nvcsw = u.nvcsw;
	e->nivcsw = u.nivcsw;
}

static __always_inline int emit_exit(struct pt_exit *src, __u8 extra_flags)
{
	struct pt_exit *e = bpf_ringbuf_reserve(&pt_events, sizeof(*e), 0);

	if (!e) {
		count_lost(PT_OP_EXIT);
		return 0;
	}
	__builtin_memcpy(e, src, sizeof(*e));
	e->hdr.seq = next_seq(); /* numbered when handed to the ring, like every record */
	e->hdr.cpu = bpf_get_smp_processor_id();
	e->hdr.flags |= extra_flags;
	SUBMIT(e);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit, struct task_struct *p)
{
	struct signal_struct *sig = BPF_CORE_READ(p, signal);
	struct task_struct *leader = BPF_CORE_READ(p, group_leader);
	struct exit_mark mark = {}, *old;
	struct pt_exit *e;
	__u32 pid = BPF_CORE_READ(p, tgid), tid = BPF_CORE_READ(p, pid);
	int code;

	if (!active())
		return 0;
	/* Only the last live thread ends the process; the rest are counted as thread exits. */
	if (BPF_CORE_READ(sig, live.counter) != 0)
		goto thread_exit;
	mark.start_ns = BPF_CORE_READ(leader, start_boottime);
	mark.exit_ns = bpf_ktime_get_boot_ns();
	/* Two threads exiting together can both see live == 0; the first to mark the tgid wins. */
	old = bpf_map_lookup_elem(&pt_exits, &pid);
	if (old && old->start_ns == mark.start_ns)
		goto thread_exit;
	if (parent_autoreaps(p))
		mark.flags |= PT_F_AUTOREAP;
	bpf_map_update_elem(&pt_exits, &pid, &mark, BPF_ANY);

	count_generated(PT_OP_EXIT);
	e = bpf_map_lookup_elem(&pt_exit_scratch, &zero);
	if (!e) {
		count_lost(PT_OP_EXIT);
		return 0;
	}
	code = group_status(sig, leader);
	e->hdr.ktime_ns = mark.exit_ns;
	e->hdr.size = sizeof(*e);
	e->hdr.op = PT_OP_EXIT;
	e->hdr.flags = (code & 0x80 ? PT_F_CORE_DUMPED : 0) | mark.flags;
	e->start_ns = mark.start_ns;
	e->pid = pid;
	e->tid = tid;
	e->ppid = BPF_CORE_READ(p, real_parent, tgid);
	e->exit_code = code;
	BPF_CORE_READ_STR_INTO(&e->comm, leader, comm);
	fill_usage(e, p);
	/* Park it until this thread's final switch, when its CPU time is complete. If it cannot
	 * be parked, emit now without the last slice rather than lose it. */
	if (bpf_map_update_elem(&pt_pending_exit, &tid, e, BPF_NOEXIST))
		return emit_exit(e, PT_F_EXIT_EARLY);
	return 0;

thread_exit:;
	struct pt_counters *c = counters();

	if (c)
		__sync_fetch_and_add(&c->thread_exits, 1);
	return 0;
}

/* A dying thread's last context switch: its CPU time is final (put_prev_task ran update_curr).
 * Every switch comes here, so the common path is one load and a return. */
SEC("tp_btf/sched_switch")
int BPF_PROG(handle_switch, bool preempt, struct task_struct *prev)
{
	struct pt_exit *e;
	__u32 tid;

	if (!(prev->__state & TASK_DEAD) || !active())
		return 0;
	tid = prev->pid;
	struct exit_mark *mark;

	e = bpf_map_lookup_elem(&pt_pending_exit, &tid);
	if (!e)
		return 0;
	/* The process ends here: duration and zombie dwell are measured from this instant. */
	e->hdr.ktime_ns = bpf_ktime_get_boot_ns();
	mark = bpf_map_lookup_elem(&pt_exits, &e->pid);
	if (mark && mark->start_ns == e->start_ns && !(mark->flags & MARK_REAPED))
		mark->exit_ns = e->hdr.ktime_ns;
	fill_usage(e, prev);
	emit_exit(e, 0);
	bpf_map_delete_elem(&pt_pending_exit, &tid);
	return 0;
}

static __always_inline int emit_reap(__u32 pid, __u64 start_ns, __u64 exit_ns, __u8 flags)
{
	struct pt_reap *e;

	RESERVE(e, struct pt_reap, PT_OP_REAP);
	e->hdr.flags = flags;
	e->start_ns = start_ns;
	e->exit_ns = exit_ns;
	e->pid = pid;
	e->pad0 = 0;
	SUBMIT(e);
	return 0;
}

/* A wait() returned pid as reaped: the exact end of its zombie state. */
static __always_inline int reaped_by_wait(__u32 pid)
{
	struct exit_mark *mark = bpf_map_lookup_elem(&pt_exits, &pid);

	if (!mark || (mark->flags & MARK_REAPED)) /* not ours, or a stopped/continued report */
		return 0;
	mark->flags |= MARK_REAPED;
	return emit_reap(pid, mark->start_ns, mark->exit_ns, mark->flags & PT_F_AUTOREAP);
}

SEC("tracepoint/syscalls/sys_exit_wait4")
int handle_wait4_exit(struct trace_event_raw_sys_exit *ctx)
{
	return ctx->ret > 0 && active() ? reaped_by_wait(ctx->ret) : 0;
}

struct waitid_args {
	__u64 infop;
	__u32 options;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct waitid_args);
} pt_waitid SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_waitid")
int handle_waitid_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct waitid_args a = { .infop = ctx->args[2], .options = ctx->args[3] };

	if (!active())
		return 0;
	if (!(a.options & WEXITED) || (a.options & WNOWAIT) || !a.infop)
		return 0;
	bpf_map_update_elem(&pt_waitid, &tid, &a, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_waitid")
int handle_waitid_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct waitid_args *a = bpf_map_lookup_elem(&pt_waitid, &tid);
	int info[6]; /* siginfo: signo, errno, code, pad, then _sigchld.si_pid at [4] */
	__u64 infop;

	if (!a || !active())
		return 0;
	infop = a->infop;
	bpf_map_delete_elem(&pt_waitid, &tid);
	if (ctx->ret != 0 || bpf_probe_read_user(info, sizeof(info), (void *)infop))
		return 0;
	if (info[4] > 0 && info[2] >= CLD_EXITED && info[2] <= CLD_DUMPED)
		return reaped_by_wait(info[4]);
	return 0;
}

SEC("tp_btf/sched_process_free")
int BPF_PROG(handle_free, struct task_struct *p)
{
	struct exit_mark *mark;
	__u32 pid = BPF_CORE_READ(p, tgid);
	__u64 start = BPF_CORE_READ(p, start_boottime), exit_ns;
	struct free_last *last;
	__u32 flags;

	if (BPF_CORE_READ(p, pid) != pid || !active()) /* threads are not reaped by wait() */
		return 0;
	last = bpf_map_lookup_elem(&pt_free_last, &zero);
	if (last) {
		if (last->start_ns == start && last->pid == pid)
			return 0; /* another generation's hook handled this free */
		last->start_ns = start;
		last->pid = pid;
	}
	mark = bpf_map_lookup_elem(&pt_exits, &pid);
	if (!mark || mark->start_ns != start) /* exit never seen (e.g. a zombie older than us) */
		return emit_reap(pid, start, 0, PT_F_REAP_DEFERRED);
	flags = mark->flags;
	exit_ns = mark->exit_ns;
	bpf_map_delete_elem(&pt_exits, &pid);
	if (flags & MARK_REAPED)
		return 0;
	/* Reaped without a wait() we saw: by the kernel (autoreap) or while tracefs was absent. */
	return emit_reap(pid, start, exit_ns, (flags & PT_F_AUTOREAP) | PT_F_REAP_DEFERRED);
}

/* Optional failed-exec reporting (autoload off unless enabled). Classic syscall tracepoints:
 * there is no BTF tracepoint per syscall. */
static __always_inline int exec_enter(const char *filename)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct exec_arg a = {};

	if (!active())
		return 0;
	bpf_probe_read_user_str(a.filename, sizeof(a.filename), filename);
	bpf_map_update_elem(&pt_exec_args, &tid, &a, BPF_ANY);
	return 0;
}

static __always_inline int exec_exit(long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct exec_arg *a = bpf_map_lookup_elem(&pt_exec_args, &tid);
	struct task_struct *t;
	struct {
		struct pt_exec_failed rec;
		char filename[256];
	} *e;
	long n;

	if (!a || !active())
		return 0;
	if (ret >= 0) {
		bpf_map_delete_elem(&pt_exec_args, &tid);
		return 0;
	}
	count_generated(PT_OP_EXEC_FAILED);
	e = bpf_ringbuf_reserve(&pt_events, sizeof(*e), 0);
	if (!e) {
		count_lost(PT_OP_EXEC_FAILED);
		bpf_map_delete_elem(&pt_exec_args, &tid);
		return 0;
	}
	t = (struct task_struct *)bpf_get_current_task_btf();
	n = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), a->filename);
	fill_hdr(&e->rec.hdr, PT_OP_EXEC_FAILED, sizeof(*e), n == sizeof(e->filename) ? PT_F_FILENAME_TRUNCATED : 0);
	e->rec.start_ns = BPF_CORE_READ(t, group_leader, start_boottime);
	e->rec.pid = pid_tgid >> 32;
	e->rec.tid = tid;
	e->rec.err = ret;
	e->rec.filename_len = n > 0 ? n - 1 : 0;
	bpf_get_current_comm(e->rec.comm, sizeof(e->rec.comm));
	bpf_map_delete_elem(&pt_exec_args, &tid);
	SUBMIT(e);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int handle_execve_enter(struct trace_event_raw_sys_enter *ctx)
{
	return exec_enter((const char *)ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int handle_execveat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return exec_enter((const char *)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_exit_execve")
int handle_execve_exit(struct trace_event_raw_sys_exit *ctx)
{
	return exec_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int handle_execveat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return exec_exit(ctx->ret);
}

/* cgroup v2 paths as their directories are made, by cgroup id. User space resolves a process's
 * identity (unit, container, pod) from its cgroup's path, up to a drain interval after the exec;
 * a container's first process can be gone with its cgroup by then (`docker run --rm ... true`),
 * and this map still holds the path. LRU: old cgroups' entries go first. */
struct cgroup_path {
	char path[PT_CGROUP_PATH_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct cgroup_path);
} pt_cgroup_paths SEC(".maps");

SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(handle_cgroup_mkdir, struct cgroup *cgrp, const char *path)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct cgroup_path v = {}; /* 256 bytes: fits the stack, no scratch map needed */
	__u64 id;

	/* the default (v2) hierarchy only: a v1 hierarchy numbers its cgroups on its own */
	if (BPF_CORE_READ(cgrp, root) != BPF_CORE_READ(task, cgroups, dfl_cgrp, root))
		return 0;
	id = BPF_CORE_READ(cgrp, kn, id);
	if (bpf_probe_read_kernel_str(v.path, sizeof(v.path), path) <= 0)
		return 0;
	bpf_map_update_elem(&pt_cgroup_paths, &id, &v, BPF_ANY);
	return 0;
}

/* Bootstrap: one pt_task_snap per thread-group leader, read through a task iterator. */
SEC("iter/task")
int snapshot_tasks(struct bpf_iter__task *ctx)
{
	struct task_struct *t = ctx->task;
	struct pt_task_snap s = {};

	if (!t || t->pid != t->tgid)
		return 0;
	s.start_ns = t->start_boottime;
	s.parent_start_ns = BPF_CORE_READ(t, real_parent, group_leader, start_boottime);
	s.cgroup_id = BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
	s.cpu_ns = BPF_CORE_READ(t, signal, sum_sched_runtime) + t->se.sum_exec_runtime;
	s.pid = t->tgid;
	s.ppid = BPF_CORE_READ(t, real_parent, tgid);
	s.uid = BPF_CORE_READ(t, cred, uid.val);
	s.state = BPF_CORE_READ(t, __state);
	s.exit_state = t->exit_state;
	s.nr_threads = BPF_CORE_READ(t, signal, nr_threads);
	BPF_CORE_READ_STR_INTO(&s.comm, t, comm);
	bpf_seq_write(ctx->meta->seq, &s, sizeof(s));
	return 0;
}

/* Kernels before 6.2 kept mm counters in struct mm_rss_stat (atomic_long_t count[]); newer ones
 * use one percpu_counter per member. Both read the approximate global count, as /proc does. */
struct mm_rss_stat___old {
	atomic_long_t count[4];
} __attribute__((preserve_access_index));
struct mm_struct___old {
	struct mm_rss_stat___old rss_stat;
} __attribute__((preserve_access_index));

static __always_inline __s64 mm_pages(struct mm_struct *mm, int member)
{
	__s64 v;

	if (bpf_core_type_exists(struct mm_rss_stat___old)) {
		struct mm_struct___old *old = (void *)mm;

		if (member == MM_FILEPAGES)
			v = BPF_CORE_READ(old, rss_stat.count[MM_FILEPAGES].counter);
		else if (member == MM_ANONPAGES)
			v = BPF_CORE_READ(old, rss_stat.count[MM_ANONPAGES].counter);
		else
			v = BPF_CORE_READ(old, rss_stat.count[MM_SHMEMPAGES].counter);
	} else {
		/* mm is a BTF pointer (read from the iterator's task): plain loads */
		if (member == MM_FILEPAGES)
			v = mm->rss_stat[MM_FILEPAGES].count;
		else if (member == MM_ANONPAGES)
			v = mm->rss_stat[MM_ANONPAGES].count;
		else
			v = mm->rss_stat[MM_SHMEMPAGES].count;
	}
	return v > 0 ? v : 0;
}

/* The live resource sweep: one record per task, so threads' CPU and IO are not lost; user space
 * sums them per group. One read of this iterator replaces a /proc walk of stat, status and io. */
SEC("iter/task")
int usage_tasks(struct bpf_iter__task *ctx)
{
	struct task_struct *t = ctx->task;
	struct pt_task_usage r = {};
	struct usage u = {};
	struct task_struct *leader;

	if (!t)
		return 0;
	leader = t->group_leader;
	r.start_ns = leader->start_boottime;
	r.pid = t->tgid;
	r.tid = t->pid;
	if (t->flags & 0x00200000 /* PF_KTHREAD */)
		r.flags |= PT_USAGE_KTHREAD;
	add_task_usage(&u, t);
	if (t->pid == t->tgid) {
		struct signal_struct *sig = t->signal;
		struct mm_struct *mm = t->mm;
		/* Not signal->maxrss: exec folds the previous image's peak into it, so every small
		 * helper a large service forks would report the service's RSS. */
		__u64 hiwater = 0;

		r.flags |= PT_USAGE_LEADER;
		if (t->exit_state)
			r.flags |= PT_USAGE_ZOMBIE;
		add_signal_usage(&u, sig);
		r.cgroup_id = t->cgroups->dfl_cgrp->kn->id;
		r.ppid = t->real_parent->tgid;
		if (mm) {
			__u64 rss = mm_pages(mm, MM_FILEPAGES) + mm_pages(mm, MM_ANONPAGES) + mm_pages(mm, MM_SHMEMPAGES);
			__u64 hw = mm->hiwater_rss;

			r.rss_kb = rss * page_kb;
			/* hiwater_rss is only raised lazily (on unmap, exit), so the current RSS counts too */
			if (hw > hiwater)
				hiwater = hw;
			if (rss > hiwater)
				hiwater = rss;
		}
		r.hiwater_kb = hiwater * page_kb;
		BPF_CORE_READ_STR_INTO(&r.comm, t, comm);
	}
	r.cpu_ns = u.cpu_ns;
	r.read_bytes = u.read_bytes;
	r.write_bytes = u.write_bytes;
	r.rchar = u.rchar;
	r.wchar = u.wchar;
	r.minflt = u.minflt;
	r.majflt = u.majflt;
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}

#ifdef PATROL_TEST_MISSING_TP
/* Reload refusal test: a hook on a tracepoint this kernel does not have. */
SEC("tp_btf/patrol_no_such_tracepoint")
int BPF_PROG(handle_missing_tp, struct task_struct *p)
{
	return 0;
}
#endif

#ifdef PATROL_TEST_CORE_MISSING
/* Reload refusal test: a CO-RE read of a field this kernel's task_struct lacks. */
struct task_struct___patrol_test {
	int patrol_no_such_field;
} __attribute__((preserve_access_index));

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_core_missing, struct task_struct *parent, struct task_struct *child)
{
	struct task_struct___patrol_test *t = (void *)child;

	return BPF_CORE_READ(t, patrol_no_such_field) == 12345;
}
#endif

#ifdef PATROL_TEST_VERIFIER_REJECT
/* Reload refusal test: an unbounded index into a map value, which the verifier refuses. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_verifier_reject, struct task_struct *parent, struct task_struct *child)
{
	struct pt_counters *c = counters();
	__u32 i = bpf_get_prandom_u32();

	if (c)
		c->generated[i]++;
	return 0;
}
#endif

/* Benchmark producer: run with BPF_PROG_TEST_RUN; emits bench_burst fork-shaped records per run
 * so the consumer can be driven far past what real exec storms reach. Through bpf_loop (5.17+):
 * the verifier checks one iteration, where an unrolled loop of 4096 submits sat at its
 * 1M-instruction limit. Autoloaded only by the benchmarks and tests, which probe for bpf_loop
 * first (src/kernel/probes.ts, requireFeature('bpfLoop')); the sensors never load it. */
const volatile __u32 bench_burst = 1024;

static long bench_produce_one(__u32 i, void *ctx)
{
	struct pt_fork *e;

	count_generated(PT_OP_FORK);
	e = bpf_ringbuf_reserve(&pt_events, sizeof(*e), 0);
	if (!e) {
		count_lost(PT_OP_FORK);
		return 1; /* ring full: stop this run, as the sensors drop and count */
	}
	fill_hdr(&e->hdr, PT_OP_FORK, sizeof(*e), 0);
	e->child_start_ns = i;
	e->parent_start_ns = 0;
	e->child_pid = i + 1;
	e->child_tid = i + 1;
	e->parent_pid = 1;
	e->parent_tid = 1;
	__builtin_memset(e->comm, 0, sizeof(e->comm));
	SUBMIT(e);
	return 0;
}

SEC("raw_tp/sys_enter")
int bench_produce(void *ctx)
{
	bpf_loop(bench_burst, bench_produce_one, NULL, 0);
	return 0;
}
