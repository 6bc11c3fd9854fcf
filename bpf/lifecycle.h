/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Wire contract between lifecycle.bpf.c and TypeScript: structs and constants only.
 * Rules: fixed-width fields, 8-byte fields first, explicit padding, every record starts
 * with struct pt_hdr. TypeScript decoders are generated from the BTF of the compiled
 * object (scripts/gen-wire.mjs), so field offsets are never written by hand. */
#ifndef PATROL_LIFECYCLE_H
#define PATROL_LIFECYCLE_H

#define PT_COMM_LEN 16
/* Upper bounds for the variable tail of an exec record; the effective caps are const
 * volatile globals set at load time and clamped to these. Powers of two for the verifier. */
#define PT_FILENAME_MAX 4096
#define PT_ARGS_MAX 32768
/* bytes of a cgroup path kept per cgroup (pt_cgroup_paths), NUL included */
#define PT_CGROUP_PATH_MAX 256

enum pt_op {
	PT_OP_EXEC = 1,
	PT_OP_FORK = 2,
	PT_OP_EXIT = 3,
	PT_OP_REAP = 4,
	PT_OP_EXEC_FAILED = 5,
	PT_OP_MAX = 8, /* size of the per-type counter arrays */
};

/* pt_hdr.flags */
enum pt_flag {
	PT_F_ARGS_TRUNCATED = 1 << 0,     /* exec: argv longer than the copy cap */
	PT_F_FILENAME_TRUNCATED = 1 << 1, /* exec: filename longer than the copy cap */
	PT_F_THREAD = 1 << 2,             /* fork: a thread, not a process */
	PT_F_ARGS_FAULT = 1 << 3,         /* exec: argv could not be read (page not present) */
	PT_F_CORE_DUMPED = 1 << 4,        /* exit: core dumped */
	PT_F_AUTOREAP = 1 << 5,           /* exit/reap: the parent ignores SIGCHLD; the kernel reaps at exit */
	PT_F_REAP_DEFERRED = 1 << 6,      /* reap: seen only when the task was freed (an RCU callback,
	                                   * possibly seconds late): the dwell is an upper bound */
	PT_F_EXIT_EARLY = 1 << 7,         /* exit: emitted at sched_process_exit, without the last slice */
};

struct pt_hdr {
	__u64 ktime_ns; /* CLOCK_BOOTTIME, same clock as task start_boottime */
	__u64 seq;      /* per-CPU sequence of records handed to the ring */
	__u32 size;     /* whole record size in bytes, tail included */
	__u16 cpu;
	__u8 op;        /* enum pt_op */
	__u8 flags;     /* enum pt_flag */
};

/* exec: sched_process_exec. Followed by args_len bytes of NUL-separated argv, then
 * filename_len bytes of filename (no terminating NUL counted). */
struct pt_exec {
	struct pt_hdr hdr;
	__u64 start_ns;        /* task start_boottime: identity with pid */
	__u64 parent_start_ns; /* real_parent start_boottime */
	__u64 cgroup_id;
	__u32 pid;             /* tgid */
	__u32 old_tid;         /* tid that called execve (differs when a non-leader thread execs) */
	__u32 ppid;            /* real_parent tgid */
	__u32 uid;
	__u32 gid;
	__u32 euid;
	__u32 filename_len;    /* bytes of filename copied */
	__u32 args_len;        /* bytes of argv copied */
	__u32 args_full_len;   /* mm->arg_end - mm->arg_start: full length before the cap */
	__u32 exec_seq;        /* low 32 bits of the task's self_exec_id: tells one process's execs
	                        * apart (a record captured twice across a sensor reload is found
	                        * by pid, start_ns and exec_seq) */
	char comm[PT_COMM_LEN];
};

/* fork: sched_process_fork, for processes, and for threads when enabled. */
struct pt_fork {
	struct pt_hdr hdr;
	__u64 child_start_ns;
	__u64 parent_start_ns;
	__u32 child_pid;  /* tgid */
	__u32 child_tid;
	__u32 parent_pid; /* tgid of the forking task */
	__u32 parent_tid;
	char comm[PT_COMM_LEN];
};

/* exit: the last live thread of a thread group. Prepared at sched_process_exit, emitted at
 * that thread's final context switch so CPU time includes its last slice. hdr.ktime_ns is the
 * time of that final switch (of sched_process_exit with PT_F_EXIT_EARLY). Totals are for the whole group (exited threads folded in via
 * signal_struct). */
struct pt_exit {
	struct pt_hdr hdr;
	__u64 start_ns;
	__u64 cpu_ns;       /* exact on-CPU time: sum_exec_runtime of all threads */
	__u64 utime_ns;     /* tick-sampled user time */
	__u64 stime_ns;     /* tick-sampled system time */
	__u64 maxrss_kb;
	__u64 read_bytes;   /* storage IO (task_io_accounting) */
	__u64 write_bytes;
	__u64 rchar;        /* bytes through read-like syscalls */
	__u64 wchar;
	__u64 minflt;
	__u64 majflt;
	__u64 nvcsw;
	__u64 nivcsw;
	__u32 pid;
	__u32 tid;          /* the thread that exited last */
	__u32 ppid;
	__u32 exit_code;    /* raw wait status: (code << 8) | signal | core */
	char comm[PT_COMM_LEN];
};

/* reap: the end of the zombie state. Taken from the parent's wait4()/waitid() return when
 * tracefs syscall tracepoints are there, else from sched_process_free (PT_F_REAP_DEFERRED). */
struct pt_reap {
	struct pt_hdr hdr;
	__u64 start_ns;
	__u64 exit_ns;      /* ktime of the group exit, remembered by the exit hook; 0 if unknown */
	__u32 pid;
	__u32 pad0;
};

/* exec_failed: sys_exit_execve(at) with a negative return (optional, off by default). */
struct pt_exec_failed {
	struct pt_hdr hdr;
	__u64 start_ns;
	__u32 pid;
	__u32 tid;
	__s32 err;          /* negative errno */
	__u32 filename_len; /* followed by the filename bytes */
	char comm[PT_COMM_LEN];
};

/* Generations (sensor hot reload, docs/reload.md): every hook emits only while the shared
 * generation word (map pt_gen, key 0) holds its object's `generation`. A reload attaches the
 * new object's hooks while the word still names the old one, flips the word, then detaches the
 * old hooks. PT_GEN_ALL makes every attached generation emit: the overlap's duplicates made
 * visible, for the tests and the benchmark of their removal. */
#define PT_GEN_ALL 0xffffffffU

/* One per-CPU value (key 0) of map pt_counters. */
struct pt_counters {
	__u64 generated[PT_OP_MAX];    /* events the hooks decided to emit */
	__u64 lost_reserve[PT_OP_MAX]; /* ring reserve/output failures */
	__u64 thread_exits;            /* sched_process_exit of a non-last thread */
	__u64 thread_forks;            /* thread clones (counted even when not emitted) */
	__u64 seq_burned;              /* sequence numbers taken by a failed ring output */
	__u64 pad0;
};

/* Shared with the consumer thread through an mmapable array (map pt_ring_ctl). */
struct pt_ring_ctl {
	__u32 consumer_sleeping; /* when producers wake the consumer: 0 never, 1 any record,
	                          * k > 1 once k - 1 pages are pending (ringbuf.bpf.h) */
	__u32 pad0;
};

/* Record of iter/task used to bootstrap the process table (one per thread-group leader). */
struct pt_task_snap {
	__u64 start_ns;
	__u64 parent_start_ns;
	__u64 cgroup_id;
	__u64 cpu_ns;
	__u32 pid;
	__u32 ppid;
	__u32 uid;
	__u32 state;       /* __state of the leader */
	__u32 exit_state;  /* EXIT_ZOMBIE = 32 */
	__u32 nr_threads;
	char comm[PT_COMM_LEN];
};

/* pt_task_usage.flags */
enum pt_usage_flag {
	PT_USAGE_LEADER = 1 << 0,  /* the thread-group leader: carries the group-wide fields */
	PT_USAGE_KTHREAD = 1 << 1, /* a kernel thread (no memory of its own) */
	PT_USAGE_ZOMBIE = 1 << 2,  /* the leader has exited (zombie leader or whole group) */
};

/* Record of iter/task usage_tasks, the live resource sweep: one per task (thread), back to back.
 * A group's totals are the sum of its records; the leader's record also carries the share of
 * exited threads (signal_struct) and the fields marked "leader". */
struct pt_task_usage {
	__u64 start_ns;    /* group leader start_boottime: identity with pid */
	__u64 cgroup_id;   /* leader */
	__u64 cpu_ns;      /* sum_exec_runtime: exact on-CPU time */
	__u64 read_bytes;  /* storage IO (task_io_accounting) */
	__u64 write_bytes;
	__u64 rchar;
	__u64 wchar;
	__u64 minflt;
	__u64 majflt;
	__u64 rss_kb;      /* leader: file + anon + shmem pages now */
	__u64 hiwater_kb;  /* leader: peak RSS of the current image (mm hiwater_rss, current RSS) */
	__u32 pid;         /* tgid */
	__u32 tid;
	__u32 ppid;        /* leader: real_parent tgid */
	__u32 flags;       /* enum pt_usage_flag */
	char comm[PT_COMM_LEN]; /* leader */
};

#endif /* PATROL_LIFECYCLE_H */
