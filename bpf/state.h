/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Wire contract of state.bpf.c (scheduler states): structs and constants only. Records start
 * with the common header of lifecycle.h (struct pt_hdr); ops continue its numbering so one
 * decoder can tell every record apart. */
#ifndef PATROL_STATE_H
#define PATROL_STATE_H

#include "lifecycle.h"

enum st_op {
	ST_OP_STATE = 16,    /* a transition of interest */
	ST_OP_THROTTLE = 17, /* per-CPU budget exhausted (start) or restored (end) */
	ST_OP_MAX = 24,      /* size of the per-type counter arrays (ops 16..23 → index op-16) */
};

/* Scheduler states as patrol names them (ps letters in comments). */
enum st_state {
	ST_NONE = 0,
	ST_RUNNING = 1,  /* R, on a CPU */
	ST_RUNNABLE = 2, /* R, waiting in a run queue */
	ST_SLEEPING = 3, /* S, interruptible */
	ST_DISK = 4,     /* D, uninterruptible */
	ST_STOPPED = 5,  /* T, stopped or traced */
	ST_IDLE = 6,     /* I, idle kernel thread (D without load contribution) */
	ST_DEAD = 7,     /* X, past its final switch */
	ST_PARKED = 8,   /* P, a parked kernel thread (e.g. per-CPU threads of an offline CPU) */
	ST_NSTATES = 9,
};

/* st_transition.reason */
enum st_reason {
	ST_R_D_LONG = 1,  /* left D after at least d_threshold_ns */
	ST_R_WATCHED = 2, /* any change of a watched process */
};

/* Run-queue latency histogram: slot i counts waits in [2^i, 2^(i+1)) µs, slot 0 also < 1 µs. */
#define ST_HIST_SLOTS 24

/* A transition of interest. hdr.ktime_ns is when the new state began. */
struct st_transition {
	struct pt_hdr hdr;
	__u64 start_ns;    /* thread-group leader start_boottime: identity with pid */
	__u64 duration_ns; /* time spent in old_state */
	__u32 pid;
	__u32 tid;
	__u8 old_state;    /* enum st_state */
	__u8 new_state;
	__u16 reason;      /* enum st_reason */
	__u32 pad0;
	char comm[PT_COMM_LEN];
};

struct st_throttle {
	struct pt_hdr hdr;
	__u64 suppressed;  /* end: transitions not sent during the throttled window(s) */
	__u64 window_ns;
	__u32 budget;      /* transitions per CPU per window */
	__u32 end;         /* 0: start, 1: end */
};

/* Per-thread accounting, kept in task storage and read by the st_snapshot iterator. */
struct st_task {
	__u64 since_ns;                /* when the current state began */
	__u64 enq_ns;                  /* when it became runnable (0: not queued) */
	__u64 time_ns[ST_NSTATES];     /* cumulative time per state */
	__u64 rq_max_ns;               /* longest run-queue wait */
	__u64 rq_total_ns;
	__u64 rq_count;
	__u64 nvcsw;                   /* voluntary switches (blocked) */
	__u64 nivcsw;                  /* involuntary switches (preempted) */
	__u32 rq_hist[ST_HIST_SLOTS];
	__u32 state;                   /* enum st_state */
	__u32 pad0;
};

/* One record of the st_snapshot iterator per thread that has accounting. */
struct st_task_snap {
	__u64 start_ns;   /* thread-group leader start_boottime */
	__u64 cgroup_id;
	struct st_task acct;
	__u32 pid;
	__u32 tid;
	char comm[PT_COMM_LEN];
};

/* One per-CPU value (key 0) of map st_counters. Index: op - ST_OP_STATE. */
struct st_counters {
	__u64 generated[ST_OP_MAX - ST_OP_STATE];
	__u64 lost_reserve[ST_OP_MAX - ST_OP_STATE];
	__u64 throttled[ST_OP_MAX - ST_OP_STATE]; /* suppressed by the per-CPU budget */
	__u64 storage_fail;                       /* task storage could not be created */
};

/* Per-CPU throttle window. */
struct st_budget {
	__u64 window_start_ns;
	__u64 suppressed;
	__u32 count;
	__u32 throttled;
};

#endif /* PATROL_STATE_H */
