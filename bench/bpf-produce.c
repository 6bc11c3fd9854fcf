// SPDX-License-Identifier: Apache-2.0
/* bpf-produce: drives lifecycle.bpf.o's bench_produce program (BPF_PROG_TEST_RUN) from its own
 * process, so the consumer under test (the Node pipeline or c-consumer) keeps its CPU time.
 *
 * The program is found among the loaded programs: named bench_produce, and with .rodata
 * filename_cap == TOKEN (the consumer sets that unused-by-bench_produce value to a random token
 * at load), so the records go into the ring of that consumer's object and no other. Each run
 * emits bench_burst records (read from the same .rodata).
 *
 * usage: bpf-produce -t TOKEN -n RECORDS [-r RATE records/s, 0 = flat out] [-c CPU] [-w WAIT_S]
 * prints: {"runs":R,"burst":B,"records":R*B,"elapsed_s":T,"rate":..,"run_ns":..,"late_runs":L}
 */
#include "common.h"
#include <errno.h>
#include <sched.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static int rodata_u32(int map_fd, const struct bpf_map_info *mi, const char *var, uint32_t *out)
{
	struct btf *btf = btf__load_from_kernel_by_id(mi->btf_id);
	uint32_t off, size;
	int ret = -1;

	if (!btf)
		return -1;
	if (!datasec_var(btf, ".rodata", var, &off, &size) && size == 4 && off + 4 <= mi->value_size) {
		char *val = calloc(1, mi->value_size);
		uint32_t key = 0;

		if (val && !bpf_map_lookup_elem(map_fd, &key, val)) {
			memcpy(out, val + off, 4);
			ret = 0;
		}
		free(val);
	}
	btf__free(btf);
	return ret;
}

/* fd of the bench_produce program whose object's filename_cap is token; burst from .rodata. */
static int find_prog(uint32_t token, uint32_t *burst)
{
	uint32_t id = 0;

	while (!bpf_prog_get_next_id(id, &id)) {
		struct bpf_prog_info pi = {};
		uint32_t len = sizeof(pi), map_ids[64];
		int fd = bpf_prog_get_fd_by_id(id);

		if (fd < 0)
			continue;
		if (bpf_obj_get_info_by_fd(fd, &pi, &len) || strcmp(pi.name, "bench_produce")) {
			close(fd);
			continue;
		}
		uint32_t nmaps = pi.nr_map_ids < 64 ? pi.nr_map_ids : 64;
		memset(&pi, 0, sizeof(pi));
		pi.nr_map_ids = nmaps;
		pi.map_ids = (uintptr_t)map_ids;
		len = sizeof(pi);
		if (bpf_obj_get_info_by_fd(fd, &pi, &len)) {
			close(fd);
			continue;
		}
		for (uint32_t i = 0; i < nmaps; i++) {
			int mfd = bpf_map_get_fd_by_id(map_ids[i]);
			struct bpf_map_info mi = {};
			uint32_t mlen = sizeof(mi), cap, b;

			if (mfd < 0)
				continue;
			if (!bpf_obj_get_info_by_fd(mfd, &mi, &mlen) && strstr(mi.name, ".rodata") &&
			    !rodata_u32(mfd, &mi, "filename_cap", &cap) && cap == token &&
			    !rodata_u32(mfd, &mi, "bench_burst", &b)) {
				close(mfd);
				*burst = b;
				return fd;
			}
			close(mfd);
		}
		close(fd);
	}
	return -1;
}

int main(int argc, char **argv)
{
	uint32_t token = 0, burst = 0;
	uint64_t records = 1000000;
	double rate = 0, wait_s = 10;
	int cpu = -1, opt;

	while ((opt = getopt(argc, argv, "t:n:r:c:w:")) != -1) {
		switch (opt) {
		case 't': token = strtoul(optarg, NULL, 0); break;
		case 'n': records = strtoull(optarg, NULL, 10); break;
		case 'r': rate = atof(optarg); break;
		case 'c': cpu = atoi(optarg); break;
		case 'w': wait_s = atof(optarg); break;
		default:
			fprintf(stderr, "usage: bpf-produce -t TOKEN -n RECORDS [-r RATE] [-c CPU] [-w WAIT_S]\n");
			return 2;
		}
	}
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			die("sched_setaffinity", errno);
	}
	int fd = -1;
	uint64_t give_up = clock_ns(CLOCK_MONOTONIC) + (uint64_t)(wait_s * 1e9);
	while ((fd = find_prog(token, &burst)) < 0) {
		if (clock_ns(CLOCK_MONOTONIC) > give_up) {
			fprintf(stderr, "bpf-produce: no bench_produce program with token %u\n", token);
			return 1;
		}
		usleep(10000);
	}
	if (!burst)
		burst = 1;
	uint64_t runs = (records + burst - 1) / burst, late = 0;
	uint64_t period = rate > 0 ? (uint64_t)(1e9 * burst / rate) : 0;
	LIBBPF_OPTS(bpf_test_run_opts, o);
	uint64_t t0 = clock_ns(CLOCK_MONOTONIC), next = t0, busy = 0;
	for (uint64_t i = 0; i < runs; i++) {
		if (period) {
			uint64_t t = clock_ns(CLOCK_MONOTONIC);

			if (t < next) {
				struct timespec ts = { .tv_sec = next / 1000000000ull, .tv_nsec = next % 1000000000ull };

				while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
					;
			} else if (t - next > 1000000) {
				late++;
			}
			next += period;
		}
		uint64_t a = clock_ns(CLOCK_MONOTONIC);
		int err = bpf_prog_test_run_opts(fd, &o);
		busy += clock_ns(CLOCK_MONOTONIC) - a;
		if (err)
			die("bpf_prog_test_run_opts", errno);
	}
	double el = (clock_ns(CLOCK_MONOTONIC) - t0) / 1e9;
	printf("{\"runs\":%llu,\"burst\":%u,\"records\":%llu,\"elapsed_s\":%.6f,\"rate\":%.1f,\"target_rate\":%.1f,"
	       "\"run_ns\":%.1f,\"late_runs\":%llu}\n",
	       (unsigned long long)runs, burst, (unsigned long long)(runs * burst), el, runs * burst / el, rate,
	       (double)busy / runs, (unsigned long long)late);
	return 0;
}
