/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Ring-buffer submission shared by every sensor: the wakeup protocol with the consumer thread
 * (see docs/architecture.md, "Wakeups"). Functions take the maps as arguments and are always
 * inlined, so the verifier still sees constant map pointers. */
#ifndef PATROL_RINGBUF_BPF_H
#define PATROL_RINGBUF_BPF_H

/* Sensor's wakeup_mode: 0 = wake only a sleeping consumer, 1 = kernel adaptive. */
static __always_inline bool rb_consumer_sleeping(void *ctl_map)
{
	__u32 key = 0;
	struct pt_ring_ctl *ctl = bpf_map_lookup_elem(ctl_map, &key);

	return ctl && *(volatile __u32 *)&ctl->consumer_sleeping;
}

/* Waking a consumer costs ~18 us of BPF time per record, so wake only one that sleeps. */
static __always_inline __u64 rb_submit_flags(void *ctl_map, __u32 mode)
{
	if (mode == 1)
		return 0;
	return rb_consumer_sleeping(ctl_map) ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

/* A producer that saw the consumer awake re-checks after its commit (the commit is a full
 * barrier, and the consumer sets the flag before its last drain) and wakes it with an empty
 * discarded record: either the consumer sees the record or the producer sees the flag. */
static __always_inline void rb_wake_if_sleeping(void *rb, void *ctl_map, __u32 mode, __u64 flags_used)
{
	void *p;

	if (mode == 1 || flags_used == BPF_RB_FORCE_WAKEUP || !rb_consumer_sleeping(ctl_map))
		return;
	p = bpf_ringbuf_reserve(rb, 8, 0);
	if (p)
		bpf_ringbuf_discard(p, BPF_RB_FORCE_WAKEUP);
}

#endif
