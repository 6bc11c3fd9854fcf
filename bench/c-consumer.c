// SPDX-License-Identifier: Apache-2.0
/* c-consumer: the plain-C baseline for the patrol benchmarks. Opens bpf/.output/lifecycle.bpf.o
 * with libbpf, loads it, and consumes pt_events with the same wakeup protocols the native addon
 * offers, so the Node pipeline can be compared with the cheapest possible consumer.
 *
 *   c-consumer tput -o OBJ -t TOKEN [-b BURST] [-p flag|adaptive|poll] [-l LINGER_US] [-s STEP_US] [-i POLL_US]
 *       Loads only bench_produce (driven by bpf-produce -t TOKEN), counts the fork records it
 *       receives. The TOKEN goes into .rodata filename_cap so bpf-produce finds this object.
 *   c-consumer lat -o OBJ -m MARKER [-p flag|adaptive|poll] [-l LINGER_US] [-s STEP_US] [-i POLL_US]
 *       Attaches the lifecycle programs (the set patrol trace attaches) and records, for every
 *       exec whose argv[1] is MARKER, CLOCK_BOOTTIME now − record ktime at the callback.
 *
 * Policies: flag = the consumer_sleeping protocol (wakeup_mode 0) with a linger after a burst
 * (like the addon: LINGER_US, default 1000, polled every STEP_US, default 100, ended by a record);
 * adaptive = wakeup_mode 1 (kernel wakes on every caught-up record), epoll_wait; poll = wakeup
 * mode 0 without the flag, woken every POLL_US.
 * Prints {"ready":true} once consuming, and a JSON result line after SIGINT/SIGTERM.
 */
#include "common.h"
#include <errno.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "../bpf/lifecycle.h"

enum policy { P_FLAG, P_ADAPTIVE, P_POLL };

static volatile sig_atomic_t stop_req;
static int stop_fd = -1;

static struct {
	int lat;
	const char *marker;
	size_t marker_len;
	uint64_t records, forks, execs, sum;
	uint64_t t_first, t_last;
	uint64_t *lat_ns;
	uint8_t *lat_path;
	size_t nlat, caplat;
	int path; /* how the consume that is running was reached: enum path */
} st;

/* How a latency sample reached the callback: after a wakeup from the blocking sleep, in the
 * consume after a linger wait, in a back-to-back consume (consumer busy), in the last check
 * before sleeping, or after a timed poll. */
enum path { PATH_WAKEUP, PATH_LINGER, PATH_BUSY, PATH_PRESLEEP, PATH_TIMED, PATH_N };
static const char *path_names[PATH_N] = { "wakeup", "linger", "busy", "presleep", "timed" };

static void on_signal(int sig)
{
	uint64_t one = 1;
	(void)sig;
	stop_req = 1;
	if (write(stop_fd, &one, sizeof(one)) < 0) {
	}
}

static int on_record(void *ctx, void *data, size_t size)
{
	const struct pt_hdr *h = data;
	(void)ctx;

	st.records++;
	if (size < sizeof(*h))
		return 0;
	if (!st.lat) {
		uint64_t t = clock_ns(CLOCK_MONOTONIC);
		if (!st.t_first)
			st.t_first = t;
		st.t_last = t;
		if (h->op == PT_OP_FORK && size >= sizeof(struct pt_fork)) {
			st.forks++;
			st.sum += ((const struct pt_fork *)data)->child_pid;
		}
		return 0;
	}
	if (h->op != PT_OP_EXEC || size < sizeof(struct pt_exec))
		return 0;
	const struct pt_exec *e = data;
	st.execs++;
	if (sizeof(*e) + e->args_len > size)
		return 0;
	/* argv[1] == MARKER exactly (the load generator's own argv also holds the marker) */
	const char *a = (const char *)(e + 1);
	size_t l0 = strnlen(a, e->args_len), m = st.marker_len;
	if (l0 + 1 + m > e->args_len || memcmp(a + l0 + 1, st.marker, m) ||
	    (l0 + 1 + m < e->args_len && a[l0 + 1 + m] != 0))
		return 0;
	uint64_t now = clock_ns(CLOCK_BOOTTIME);
	if (st.nlat == st.caplat) {
		st.caplat = st.caplat ? st.caplat * 2 : 65536;
		st.lat_ns = realloc(st.lat_ns, st.caplat * sizeof(uint64_t));
		st.lat_path = realloc(st.lat_path, st.caplat);
		if (!st.lat_ns || !st.lat_path)
			die("realloc", ENOMEM);
	}
	st.lat_path[st.nlat] = st.path;
	st.lat_ns[st.nlat++] = now - h->ktime_ns;
	return 0;
}

static int set_rodata(struct bpf_object *obj, void *rd, size_t rdsz, const char *var, uint64_t val)
{
	uint32_t off, size;

	if (datasec_var(bpf_object__btf(obj), ".rodata", var, &off, &size) || off + size > rdsz) {
		fprintf(stderr, "c-consumer: .rodata has no %s\n", var);
		exit(1);
	}
	memcpy((char *)rd + off, &val, size); /* little-endian: low bytes first */
	return 0;
}

int main(int argc, char **argv)
{
	const char *objpath = "bpf/.output/lifecycle.bpf.o";
	enum policy pol = P_FLAG;
	long linger_us = 1000, step_us = 100, poll_us = 1000;
	uint32_t token = 0, burst = 1024;
	int opt;

	if (argc < 2 || (strcmp(argv[1], "tput") && strcmp(argv[1], "lat"))) {
		fprintf(stderr, "usage: c-consumer tput|lat -o OBJ [-t TOKEN] [-b BURST] [-m MARKER] [-p flag|adaptive|poll] [-l LINGER_US] [-s STEP_US] [-i POLL_US]\n");
		return 2;
	}
	st.lat = !strcmp(argv[1], "lat");
	optind = 2;
	while ((opt = getopt(argc, argv, "o:t:b:m:p:l:s:i:")) != -1) {
		switch (opt) {
		case 'o': objpath = optarg; break;
		case 't': token = strtoul(optarg, NULL, 0); break;
		case 'b': burst = strtoul(optarg, NULL, 0); break;
		case 'm': st.marker = optarg; st.marker_len = strlen(optarg); break;
		case 'p':
			pol = !strcmp(optarg, "flag") ? P_FLAG : !strcmp(optarg, "adaptive") ? P_ADAPTIVE
			    : !strcmp(optarg, "poll") ? P_POLL : (fprintf(stderr, "bad -p\n"), exit(2), P_FLAG);
			break;
		case 'l': linger_us = atol(optarg); break;
		case 's': step_us = atol(optarg); break;
		case 'i': poll_us = atol(optarg); break;
		default: return 2;
		}
	}
	if (st.lat && !st.marker) {
		fprintf(stderr, "c-consumer lat needs -m MARKER\n");
		return 2;
	}

	struct bpf_object *obj = bpf_object__open_file(objpath, NULL);
	if (!obj)
		die("bpf_object__open_file", errno);
	struct bpf_program *prog;
	bpf_object__for_each_program(prog, obj) {
		const char *n = bpf_program__name(prog);
		bool want = st.lat ? strcmp(n, "bench_produce") && strcmp(n, "snapshot_tasks") : !strcmp(n, "bench_produce");
		bpf_program__set_autoload(prog, want);
	}
	int ncpu = libbpf_num_possible_cpus();
	bpf_map__set_max_entries(bpf_object__find_map_by_name(obj, "pt_scratch"), ncpu);
	struct bpf_map *rdm = bpf_object__find_map_by_name(obj, ".rodata");
	size_t rdsz = 0;
	void *rd = rdm ? (void *)bpf_map__initial_value(rdm, &rdsz) : NULL;
	if (!rd)
		die("no .rodata", ENOENT);
	set_rodata(obj, rd, rdsz, "page_kb", getpagesize() / 1024);
	set_rodata(obj, rd, rdsz, "wakeup_mode", pol == P_ADAPTIVE ? 1 : 0);
	set_rodata(obj, rd, rdsz, "bench_burst", burst);
	if (!st.lat)
		set_rodata(obj, rd, rdsz, "filename_cap", token);
	if (bpf_object__load(obj))
		die("bpf_object__load", errno);

	struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(obj, "pt_events")),
						  on_record, NULL, NULL);
	if (!rb)
		die("ring_buffer__new", errno);
	int epfd = ring_buffer__epoll_fd(rb);
	stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct epoll_event sev = { .events = EPOLLIN, .data.u64 = UINT64_MAX };
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, stop_fd, &sev))
		die("epoll_ctl", errno);
	volatile uint32_t *flag = NULL;
	if (pol == P_FLAG) {
		void *m = mmap(NULL, getpagesize(), PROT_READ | PROT_WRITE, MAP_SHARED,
			       bpf_map__fd(bpf_object__find_map_by_name(obj, "pt_ring_ctl")), 0);
		if (m == MAP_FAILED)
			die("mmap pt_ring_ctl", errno);
		flag = m;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (st.lat) {
		bpf_object__for_each_program(prog, obj) {
			if (!bpf_program__autoload(prog))
				continue;
			if (!bpf_program__attach(prog)) {
				fprintf(stderr, "attach %s: %s\n", bpf_program__name(prog), strerror(errno));
				return 1;
			}
		}
	}
	printf("{\"ready\":true,\"pid\":%d}\n", getpid());
	fflush(stdout);

	uint64_t wakeups = 0, sleeps = 0, linger_recs = 0, timed = 0;
	struct epoll_event evs[4];
	bool busy = false;
	while (!stop_req) {
		int n = ring_buffer__consume(rb);
		st.path = PATH_BUSY; /* the next consume, if this one found records */
		if (n > 0) {
			busy = true;
			continue;
		}
		if (pol == P_FLAG && busy && linger_us > 0) {
			/* linger before announcing sleep, polling every step (the addon's protocol) */
			long step = step_us > 0 && step_us < linger_us ? step_us : linger_us;
			busy = false;
			for (long waited = 0; waited < linger_us && !stop_req; waited += step) {
				struct timespec ts = { 0, step * 1000 };
				epoll_pwait2(epfd, evs, 4, &ts, NULL);
				st.path = PATH_LINGER;
				n = ring_buffer__consume(rb);
				st.path = PATH_BUSY;
				if (n > 0) {
					linger_recs += n;
					busy = true;
					break;
				}
			}
			continue;
		}
		busy = false;
		int r;
		if (pol == P_POLL) {
			struct timespec ts = { poll_us / 1000000, (poll_us % 1000000) * 1000 };
			r = epoll_pwait2(epfd, evs, 4, &ts, NULL);
		} else {
			if (flag) {
				__atomic_store_n(flag, 1, __ATOMIC_SEQ_CST);
				__atomic_thread_fence(__ATOMIC_SEQ_CST);
				st.path = PATH_PRESLEEP;
				n = ring_buffer__consume(rb);
				/* flag cleared: a producer claimed it, and its wakeup carrier (an empty
				 * discarded record, not counted) may be what we just drained */
				if (n > 0 || !__atomic_load_n(flag, __ATOMIC_SEQ_CST)) {
					st.path = PATH_BUSY;
					__atomic_store_n(flag, 0, __ATOMIC_SEQ_CST);
					busy = n > 0;
					continue;
				}
				sleeps++;
			}
			r = epoll_wait(epfd, evs, 4, 1000);
			if (flag)
				__atomic_store_n(flag, 0, __ATOMIC_SEQ_CST);
		}
		if (r == 0)
			timed++;
		for (int i = 0; i < r; i++)
			if (evs[i].data.u64 != UINT64_MAX) {
				wakeups++;
				break;
			}
		/* the loop's first consume picks up what woke us (or what the poll found) */
		st.path = r == 0 || pol == P_POLL ? PATH_TIMED : PATH_WAKEUP;
	}
	ring_buffer__consume(rb); /* final drain */

	/* loss: pt_counters lost_reserve, summed over CPUs */
	int cfd = bpf_map__fd(bpf_object__find_map_by_name(obj, "pt_counters"));
	struct pt_counters *pc = calloc(ncpu, sizeof(*pc));
	uint32_t key = 0;
	uint64_t gen = 0, lost = 0;
	if (pc && !bpf_map_lookup_elem(cfd, &key, pc))
		for (int c = 0; c < ncpu; c++)
			for (int op = 0; op < PT_OP_MAX; op++) {
				gen += pc[c].generated[op];
				lost += pc[c].lost_reserve[op];
			}
	const char *pname = pol == P_FLAG ? "flag" : pol == P_ADAPTIVE ? "adaptive" : "poll";
	if (!st.lat) {
		double span = st.t_last > st.t_first ? (st.t_last - st.t_first) / 1e9 : 0;
		printf("{\"mode\":\"tput\",\"policy\":\"%s\",\"linger_us\":%ld,\"step_us\":%ld,\"poll_us\":%ld,\"records\":%llu,\"forks\":%llu,"
		       "\"generated\":%llu,\"lost_reserve\":%llu,\"span_s\":%.6f,\"rate\":%.1f,\"wakeups\":%llu,"
		       "\"sleeps\":%llu,\"linger_records\":%llu,\"timed_consumes\":%llu,\"checksum\":%llu}\n",
		       pname, linger_us, step_us, poll_us, (unsigned long long)st.records, (unsigned long long)st.forks,
		       (unsigned long long)gen, (unsigned long long)lost, span, span > 0 ? st.records / span : 0,
		       (unsigned long long)wakeups, (unsigned long long)sleeps, (unsigned long long)linger_recs,
		       (unsigned long long)timed, (unsigned long long)st.sum);
	} else {
		/* per path: count, p50, p99 (before the global sort) */
		char bypath[1024] = "";
		size_t bl = 0;
		uint64_t *tmp = malloc((st.nlat + 1) * sizeof(uint64_t));
		for (int pth = 0; pth < PATH_N && tmp; pth++) {
			size_t k = 0;
			for (size_t i = 0; i < st.nlat; i++)
				if (st.lat_path[i] == pth)
					tmp[k++] = st.lat_ns[i];
			if (!k)
				continue;
			qsort(tmp, k, sizeof(uint64_t), cmp_u64);
			bl += snprintf(bypath + bl, sizeof(bypath) - bl, "%s\"%s\":{\"n\":%zu,\"p50_us\":%.1f,\"p99_us\":%.1f}",
				       bl ? "," : "", path_names[pth], k, pct(tmp, k, 50) / 1e3, pct(tmp, k, 99) / 1e3);
		}
		free(tmp);
		qsort(st.lat_ns, st.nlat, sizeof(uint64_t), cmp_u64);
		printf("{\"mode\":\"lat\",\"policy\":\"%s\",\"linger_us\":%ld,\"samples\":%zu,\"p50_us\":%.1f,\"p90_us\":%.1f,"
		       "\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,\"records\":%llu,\"execs\":%llu,\"generated\":%llu,"
		       "\"lost_reserve\":%llu,\"wakeups\":%llu,\"sleeps\":%llu,\"linger_records\":%llu,\"by_path\":{%s}}\n",
		       pname, linger_us, st.nlat, pct(st.lat_ns, st.nlat, 50) / 1e3, pct(st.lat_ns, st.nlat, 90) / 1e3,
		       pct(st.lat_ns, st.nlat, 99) / 1e3, pct(st.lat_ns, st.nlat, 99.9) / 1e3,
		       pct(st.lat_ns, st.nlat, 100) / 1e3, (unsigned long long)st.records, (unsigned long long)st.execs,
		       (unsigned long long)gen, (unsigned long long)lost, (unsigned long long)wakeups,
		       (unsigned long long)sleeps, (unsigned long long)linger_recs, bypath);
	}
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}
