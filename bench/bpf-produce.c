// SPDX-License-Identifier: Apache-2.0
/* bpf-produce: drives lifecycle.bpf.o's bench_produce program (BPF_PROG_TEST_RUN) from its own
 * process, so the consumer under test (the Node pipeline or c-consumer) keeps its CPU time.
 *
 * The program is found among the loaded programs: named bench_produce, and with .rodata
 * filename_cap == TOKEN (the consumer sets that unused-by-bench_produce value to a random token
 * at load), so the records go into the ring of that consumer's object and no other. Each run
 * emits bench_burst records (read from the same .rodata).
 *
 * usage: bpf-produce -t TOKEN -n RECORDS [-r RATE records/s, 0 = flat out] [-d MAX_S] [-c CPU] [-w WAIT_S] [-L]
 *   stops after RECORDS/burst runs or MAX_S seconds, whichever comes first
 * prints: {"runs":R,"burst":B,"generated":G,"lost_reserve":L,"elapsed_s":T,"rate":G/T,"offered_rate":R*B/T,"run_ns":..,"late_runs":..}
 *   offered_rate: what the runs asked for (a run stops at its first failed reserve, so with a
 *   full ring generated < offered). -L: when the first record is lost, one line on stderr:
 *   {"first_loss_epoch_ms":..,"after_s":..} (the counters are read after every run)
 */
#include "common.h"
#include <errno.h>
#include <sched.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>
#include "../bpf/lifecycle.h"

static int counters_fd = -1;

/* generated and lost_reserve summed over CPUs and ops, from the object's pt_counters */
static void read_counters(uint64_t *gen, uint64_t *lost)
{
	int ncpu = libbpf_num_possible_cpus();
	struct pt_counters *pc = calloc(ncpu, sizeof(*pc));
	uint32_t key = 0;

	*gen = *lost = 0;
	if (counters_fd >= 0 && pc && !bpf_map_lookup_elem(counters_fd, &key, pc))
		for (int c = 0; c < ncpu; c++)
			for (int op = 0; op < PT_OP_MAX; op++) {
				*gen += pc[c].generated[op];
				*lost += pc[c].lost_reserve[op];
			}
	free(pc);
}

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
		int found = -1;
		for (uint32_t i = 0; i < nmaps; i++) {
			int mfd = bpf_map_get_fd_by_id(map_ids[i]);
			struct bpf_map_info mi = {};
			uint32_t mlen = sizeof(mi), cap, b;

			if (mfd < 0)
				continue;
			if (!bpf_obj_get_info_by_fd(mfd, &mi, &mlen) && strstr(mi.name, ".rodata") &&
			    !rodata_u32(mfd, &mi, "filename_cap", &cap) && cap == token &&
			    !rodata_u32(mfd, &mi, "bench_burst", &b)) {
				*burst = b;
				found = fd;
			}
			close(mfd);
		}
		if (found >= 0) {
			for (uint32_t i = 0; i < nmaps; i++) {
				int mfd = bpf_map_get_fd_by_id(map_ids[i]);
				struct bpf_map_info mi = {};
				uint32_t mlen = sizeof(mi);

				if (mfd >= 0 && !bpf_obj_get_info_by_fd(mfd, &mi, &mlen) && !strcmp(mi.name, "pt_counters"))
					counters_fd = mfd;
				else if (mfd >= 0)
					close(mfd);
			}
			return fd;
		}
		close(fd);
	}
	return -1;
}

int main(int argc, char **argv)
{
	uint32_t token = 0, burst = 0;
	uint64_t records = 1000000;
	double rate = 0, wait_s = 10, max_s = 0;
	int cpu = -1, opt, report_loss = 0;

	while ((opt = getopt(argc, argv, "t:n:r:c:w:d:L")) != -1) {
		switch (opt) {
		case 't': token = strtoul(optarg, NULL, 0); break;
		case 'n': records = strtoull(optarg, NULL, 10); break;
		case 'r': rate = atof(optarg); break;
		case 'c': cpu = atoi(optarg); break;
		case 'w': wait_s = atof(optarg); break;
		case 'd': max_s = atof(optarg); break;
		case 'L': report_loss = 1; break;
		default:
			fprintf(stderr, "usage: bpf-produce -t TOKEN -n RECORDS [-r RATE] [-d MAX_S] [-c CPU] [-w WAIT_S] [-L]\n");
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
	uint64_t gen0, lost0, gen1, lost1;
	read_counters(&gen0, &lost0);
	uint64_t t0 = clock_ns(CLOCK_MONOTONIC), next = t0, busy = 0, done = 0;
	uint64_t deadline = max_s > 0 ? t0 + (uint64_t)(max_s * 1e9) : UINT64_MAX;
	for (uint64_t i = 0; i < runs; i++) {
		if ((i & 15) == 0 && clock_ns(CLOCK_MONOTONIC) > deadline)
			break;
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
		done++;
		if (report_loss) {
			uint64_t g, l;

			read_counters(&g, &l);
			if (l > lost0) {
				fprintf(stderr, "{\"first_loss_epoch_ms\":%.3f,\"after_s\":%.6f}\n",
					clock_ns(CLOCK_REALTIME) / 1e6, (clock_ns(CLOCK_MONOTONIC) - t0) / 1e9);
				fflush(stderr);
				report_loss = 0;
			}
		}
	}
	runs = done;
	double el = (clock_ns(CLOCK_MONOTONIC) - t0) / 1e9;
	read_counters(&gen1, &lost1);
	/* A failed reserve ends that run (RESERVE returns), so generated < runs * burst when the
	 * ring fills: the rate is of records generated, and the loss is the kernel's count. */
	uint64_t gen = gen1 - gen0, lost = lost1 - lost0;
	printf("{\"runs\":%llu,\"burst\":%u,\"generated\":%llu,\"lost_reserve\":%llu,\"elapsed_s\":%.6f,"
	       "\"rate\":%.1f,\"offered_rate\":%.1f,\"target_rate\":%.1f,\"run_ns\":%.1f,\"late_runs\":%llu}\n",
	       (unsigned long long)runs, burst, (unsigned long long)gen, (unsigned long long)lost, el, gen / el,
	       (double)runs * burst / el, rate,
	       runs ? (double)busy / runs : 0, (unsigned long long)late);
	return 0;
}
