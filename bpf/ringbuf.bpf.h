/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Ring-buffer submission shared by every sensor: the wakeup protocol with the consumer thread
 * (docs/architecture.md, "Wakeups"). Functions take the maps as arguments and are always
 * inlined, so the verifier still sees constant map pointers.
 *
 * The protocol, in wakeup_mode 0 (the default):
 *  - The consumer sets consumer_sleeping = 1 (seq_cst, then a full fence), drains the ring once
 *    more, and blocks in epoll_wait only if that drain found nothing.
 *  - A producer that finds the flag set CLAIMS it: it stores 0 and then owes exactly one
 *    BPF_RB_FORCE_WAKEUP, which it always pays because it claims only while holding a
 *    reservation (its own record, or an 8-byte record it discards). So one wakeup per sleep,
 *    not one per record submitted before the woken consumer gets to run (~17 us each).
 *  - A producer that found the flag clear re-reads it after its commit (the commit is an xchg,
 *    a full barrier). Dekker: either the consumer's last drain saw the record, or this re-read
 *    sees the flag (then it claims and wakes), or another producer claimed the flag after the
 *    consumer set it, and that producer's wakeup makes the consumer drain after waking.
 *  Invariant: while the consumer blocks, flag == 1 or a claimer's wakeup is on its way; a
 *  record is never left unannounced. Claims are plain stores: two producers may both claim and
 *  both wake (harmless), and a stale claim from an older sleep still wakes (a spurious wakeup).
 *  Limit: a wakeup needs a reservation; when the ring is full the consumer may sleep until its
 *  idleTimeoutMs, which only happens when records are already being lost (lost_reserve).
 *
 *  The flag's value says when to wake: 0 = never (the consumer is awake), 1 = on any record
 *  (it sleeps), k > 1 = once (k - 1) pages or more are pending. The last is the efficient
 *  delivery's watermark: that consumer drains on a timer while awake, and only a backlog past
 *  the watermark (a burst) wakes it early. One word, so a producer never pairs a new flag with
 *  a stale threshold; the claim (store 0) is the same for both, so one wakeup per arming. */
#ifndef PATROL_RINGBUF_BPF_H
#define PATROL_RINGBUF_BPF_H

static __always_inline __u32 *rb_sleep_flag(void *ctl_map)
{
	__u32 key = 0;
	struct pt_ring_ctl *ctl = bpf_map_lookup_elem(ctl_map, &key);

	return ctl ? &ctl->consumer_sleeping : NULL;
}

/* True if the flag asks for a wakeup now: set to 1, or set to k > 1 with (k - 1) pages pending
 * (our own reservation included: BPF_RB_AVAIL_DATA counts from the consumer's position). */
static __always_inline bool rb_wake_wanted(void *rb, __u32 v)
{
	if (v <= 1)
		return v == 1;
	return bpf_ringbuf_query(rb, BPF_RB_AVAIL_DATA) >= ((__u64)(v - 1) << 12);
}

/* True if the consumer asked to be woken; the caller then owes it a FORCE_WAKEUP, and must hold
 * a reservation it will submit or discard (a commit cannot fail, so the wakeup is certain). */
static __always_inline bool rb_claim_sleeping(void *rb, void *ctl_map)
{
	__u32 *flag = rb_sleep_flag(ctl_map);

	if (!flag || !rb_wake_wanted(rb, *(volatile __u32 *)flag))
		return false;
	*(volatile __u32 *)flag = 0;
	return true;
}

/* Flags for bpf_ringbuf_submit() of a record already reserved. mode: the sensor's wakeup_mode,
 * 0 = wake only a sleeping consumer, 1 = kernel adaptive (every record that catches up). */
static __always_inline __u64 rb_submit_flags(void *rb, void *ctl_map, __u32 mode)
{
	if (mode == 1)
		return 0;
	return rb_claim_sleeping(rb, ctl_map) ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

/* Flags for bpf_ringbuf_output(), which reserves inside and may fail: no claim before it (a
 * failed output would leave a claimed flag without a wakeup). Follow a successful output with
 * rb_wake_if_sleeping(), which claims with a reservation in hand. */
static __always_inline __u64 rb_output_flags(__u32 mode)
{
	return mode == 1 ? 0 : BPF_RB_NO_WAKEUP;
}

/* After a commit made with flags_used: if the consumer went to sleep without seeing it, claim
 * the flag and wake the consumer with an empty discarded record. Reserve first, claim second:
 * if the ring is full the flag stays set, so the next producer that can reserve wakes it. */
static __always_inline void rb_wake_if_sleeping(void *rb, void *ctl_map, __u32 mode, __u64 flags_used)
{
	__u32 *flag;
	void *p;

	if (mode == 1 || flags_used == BPF_RB_FORCE_WAKEUP)
		return;
	flag = rb_sleep_flag(ctl_map);
	if (!flag || !rb_wake_wanted(rb, *(volatile __u32 *)flag))
		return;
	p = bpf_ringbuf_reserve(rb, 8, 0);
	if (!p)
		return;
	bpf_ringbuf_discard(p, rb_claim_sleeping(rb, ctl_map) ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

#endif
