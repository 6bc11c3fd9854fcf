// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Scheduler-state sensor. Context switches reach ~350k/s per vCPU, so nothing is sent per
 * switch: each thread's state, time per state, run-queue latency histogram and switch counts
 * live in task storage (read by the st_snapshot iterator), and only transitions of interest
 * are sent: leaving D after d_threshold_ns, and any change of a watched process. Those are
 * rationed by a per-CPU budget; the excess is counted and bracketed by THROTTLE records. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "state.h"
#include "ringbuf.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define TASK_INTERRUPTIBLE 0x0001
#define TASK_UNINTERRUPTIBLE 0x0002
#define TASK_STOPPED_OR_TRACED 0x000c
#define TASK_PARKED 0x0040
#define TASK_DEAD 0x0080
#define TASK_NOLOAD 0x0400

#ifdef PATROL_VARIANT
/* A second build for the reload tests: another .rodata layout, same records. */
const volatile __u32 variant_tag = 0xa17;
#endif
const volatile __u64 d_threshold_ns = 1000000000ULL; /* report leaving D after this long */
const volatile __u32 budget_per_sec = 2000;          /* transition records per CPU per second */
const volatile __u32 wakeup_mode = 0;
const volatile __u32 generation = 0; /* emits while st_gen holds this (PT_GEN_ALL, lifecycle.h) */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} st_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct pt_ring_ctl);
} st_ring_ctl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct st_counters);
} st_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} st_seq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct st_budget);
} st_budget SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct st_task);
} st_tasks SEC(".maps");

/* Processes (tgid) whose every state change is reported; set from user space. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} st_watch SEC(".maps");

/* Number of watched processes, set from user space with st_watch: while 0, the hash is never
 * consulted on the switch path (array lookups are inlined by the verifier, hash ones are not). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} st_watch_count SEC(".maps");

/* Anchor: every wire type in the object's BTF, for the generated decoders. */
struct st_wire_types {
	struct st_transition transition;
	struct st_throttle throttle;
	struct st_task_snap snap;
	struct st_counters counters;
	enum st_op op;
	enum st_state state;
	enum st_reason reason;
};
struct st_wire_types *const st_wire_types_btf __attribute__((unused)) = 0;

/* The generation word, shared by every generation of this sensor (lifecycle.h, "Generations").
 * Only one generation's hooks account a switch: the task storage is shared, so two would count
 * it twice. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} st_gen SEC(".maps");

static const __u32 zero = 0;

static __always_inline bool active(void)
{
	__u32 *g = bpf_map_lookup_elem(&st_gen, &zero);
	__u32 v;

	if (!g)
		return false;
	v = *(volatile __u32 *)g;
	return v == generation || v == PT_GEN_ALL;
}

static __always_inline struct st_counters *counters(void)
{
	return bpf_map_lookup_elem(&st_counters, &zero);
}

#define COUNT(field, op)                                                 \
	do {                                                             \
		struct st_counters *__c = counters();                    \
		if (__c && (op) >= ST_OP_STATE && (op) < ST_OP_MAX)      \
			__sync_fetch_and_add(&__c->field[(op) - ST_OP_STATE], 1); \
	} while (0)

static __always_inline void fill_hdr(struct pt_hdr *h, __u8 op, __u32 size, __u64 now)
{
	__u64 *seq = bpf_map_lookup_elem(&st_seq, &zero);

	h->ktime_ns = now;
	h->seq = seq ? __sync_fetch_and_add(seq, 1) : 0;
	h->size = size;
	h->cpu = bpf_get_smp_processor_id();
	h->op = op;
	h->flags = 0;
}

static __always_inline void submit(void *rec)
{
	__u64 f = rb_submit_flags(&st_events, &st_ring_ctl, wakeup_mode);

	bpf_ringbuf_submit(rec, f);
	rb_wake_if_sleeping(&st_events, &st_ring_ctl, wakeup_mode, f);
}

static __always_inline void emit_throttle(__u64 now, __u32 end, __u64 suppressed)
{
	struct st_throttle *t;

	COUNT(generated, ST_OP_THROTTLE);
	t = bpf_ringbuf_reserve(&st_events, sizeof(*t), 0);
	if (!t) {
		COUNT(lost_reserve, ST_OP_THROTTLE);
		return;
	}
	fill_hdr(&t->hdr, ST_OP_THROTTLE, sizeof(*t), now);
	t->suppressed = suppressed;
	t->window_ns = 1000000000ULL;
	t->budget = budget_per_sec;
	t->end = end;
	submit(t);
}

/* The per-CPU budget: true when this transition may be sent. */
static __always_inline bool budget_take(__u64 now)
{
	struct st_budget *b = bpf_map_lookup_elem(&st_budget, &zero);

	if (!b)
		return false;
	if (now - b->window_start_ns >= 1000000000ULL) {
		if (b->throttled)
			emit_throttle(now, 1, b->suppressed);
		b->window_start_ns = now;
		b->count = 0;
		b->throttled = 0;
		b->suppressed = 0;
	}
	if (b->count >= budget_per_sec) {
		b->suppressed++;
		COUNT(throttled, ST_OP_STATE);
		if (!b->throttled) {
			b->throttled = 1;
			emit_throttle(now, 0, 0);
		}
		return false;
	}
	b->count++;
	return true;
}

static __always_inline void emit_transition(struct task_struct *t, struct st_task *st, __u32 new_state,
					    __u64 now, __u16 reason)
{
	struct st_transition *e;

	COUNT(generated, ST_OP_STATE);
	if (!budget_take(now))
		return;
	e = bpf_ringbuf_reserve(&st_events, sizeof(*e), 0);
	if (!e) {
		COUNT(lost_reserve, ST_OP_STATE);
		return;
	}
	fill_hdr(&e->hdr, ST_OP_STATE, sizeof(*e), now);
	e->start_ns = BPF_CORE_READ(t, group_leader, start_boottime);
	e->duration_ns = st->since_ns ? now - st->since_ns : 0;
	e->pid = BPF_CORE_READ(t, tgid);
	e->tid = BPF_CORE_READ(t, pid);
	e->old_state = st->state;
	e->new_state = new_state;
	e->reason = reason;
	e->pad0 = 0;
	BPF_CORE_READ_STR_INTO(&e->comm, t, comm);
	submit(e);
}

static __always_inline struct st_task *task_acct(struct task_struct *t)
{
	struct st_task *st = bpf_task_storage_get(&st_tasks, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (!st) {
		struct st_counters *c = counters();

		if (c)
			__sync_fetch_and_add(&c->storage_fail, 1);
	}
	return st;
}

static __always_inline bool watched(struct task_struct *t)
{
	__u32 *n = bpf_map_lookup_elem(&st_watch_count, &zero);
	__u32 tgid;

	if (!n || !*n)
		return false;
	tgid = t->tgid;
	return bpf_map_lookup_elem(&st_watch, &tgid) != NULL;
}

/* Closes the current state at `now` and opens new_state, reporting it when of interest. */
static __always_inline void transition(struct task_struct *t, struct st_task *st, __u32 new_state, __u64 now)
{
	__u32 old = st->state;

	if (old == new_state)
		return;
	if (old < ST_NSTATES && st->since_ns)
		st->time_ns[old] += now - st->since_ns;
	if (old == ST_DISK && st->since_ns && now - st->since_ns >= d_threshold_ns)
		emit_transition(t, st, new_state, now, ST_R_D_LONG);
	else if (watched(t))
		emit_transition(t, st, new_state, now, ST_R_WATCHED);
	st->state = new_state;
	st->since_ns = now;
}

static __always_inline __u32 blocked_state(__u32 s)
{
	if (s & TASK_DEAD)
		return ST_DEAD;
	if (s & TASK_NOLOAD)
		return ST_IDLE;
	if (s & TASK_UNINTERRUPTIBLE)
		return ST_DISK;
	if (s & TASK_STOPPED_OR_TRACED)
		return ST_STOPPED;
	if (s & TASK_PARKED)
		return ST_PARKED;
	return ST_SLEEPING;
}

static __always_inline __u32 log2_slot(__u64 us)
{
	__u32 slot = 0;

	for (int i = 0; i < ST_HIST_SLOTS - 1; i++) {
		if (us < 2)
			break;
		us >>= 1;
		slot++;
	}
	return slot;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(st_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 now;
	struct st_task *st;

	if (!active())
		return 0;
	now = bpf_ktime_get_boot_ns();
	if (prev->pid) {
		__u32 s = prev->__state;

		st = task_acct(prev);
		if (st) {
			if (preempt || s == 0) {
				st->nivcsw++;
				st->enq_ns = now;
				transition(prev, st, ST_RUNNABLE, now);
			} else {
				st->nvcsw++;
				transition(prev, st, blocked_state(s), now);
			}
		}
	}
	if (next->pid) {
		st = task_acct(next);
		if (st) {
			if (st->enq_ns) {
				__u64 wait = now - st->enq_ns;
				__u32 slot = log2_slot(wait / 1000);

				if (slot < ST_HIST_SLOTS)
					st->rq_hist[slot]++;
				if (wait > st->rq_max_ns)
					st->rq_max_ns = wait;
				st->rq_total_ns += wait;
				st->rq_count++;
				st->enq_ns = 0;
			}
			transition(next, st, ST_RUNNING, now);
		}
	}
	return 0;
}

static __always_inline int on_wakeup(struct task_struct *p)
{
	__u64 now;
	struct st_task *st;

	if (!active())
		return 0;
	now = bpf_ktime_get_boot_ns();
	st = task_acct(p);
	if (!st)
		return 0;
	st->enq_ns = now;
	transition(p, st, ST_RUNNABLE, now);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(st_wakeup, struct task_struct *p)
{
	return on_wakeup(p);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(st_wakeup_new, struct task_struct *p)
{
	return on_wakeup(p);
}

/* Every thread with accounting, for the periodic sweep. D that is still going on (stuck-D)
 * is found here: state ST_DISK with an old since_ns. */
SEC("iter/task")
int st_snapshot(struct bpf_iter__task *ctx)
{
	struct task_struct *t = ctx->task;
	struct st_task_snap s = {};
	struct st_task *st;

	if (!t)
		return 0;
	st = bpf_task_storage_get(&st_tasks, t, 0, 0);
	if (!st)
		return 0;
	/* plain loads through the iterator's BTF pointers, not a helper call per field */
	s.start_ns = t->group_leader->start_boottime;
	s.cgroup_id = t->cgroups->dfl_cgrp->kn->id;
	__builtin_memcpy(&s.acct, st, sizeof(s.acct));
	s.pid = t->tgid;
	s.tid = t->pid;
	BPF_CORE_READ_STR_INTO(&s.comm, t, comm);
	bpf_seq_write(ctx->meta->seq, &s, sizeof(s));
	return 0;
}
