/* Test helper for the resource windows:
 *   workload burn MS DUTY   busy DUTY % of every 10 ms period (spinning on the clock), for MS ms
 *   workload alloc MB MS    allocate MB MiB, touch every page, hold MS ms
 *   workload write MB PATH  write MB MiB to PATH, fsync, unlink */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ns(long long ns)
{
	struct timespec ts = { ns / 1000000000LL, ns % 1000000000LL };
	while (nanosleep(&ts, &ts))
		;
}

int main(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	if (!strcmp(argv[1], "burn")) {
		/* Each period starts when the previous one ended, so a burner that was preempted does
		 * not catch up with a burst: its duty stays at DUTY or below, steady from period to
		 * period, and the truth of its p95 is its average. */
		long long end = now_ns() + atoll(argv[2]) * 1000000LL, period = 10000000LL;
		long long busy = period * atoll(argv[3]) / 100;
		while (now_ns() < end) {
			long long t0 = now_ns();
			while (now_ns() < t0 + busy)
				;
			if (period > busy)
				sleep_ns(period - busy);
		}
		return 0;
	}
	if (!strcmp(argv[1], "alloc")) {
		size_t n = (size_t)atoll(argv[2]) << 20;
		char *p = malloc(n);
		if (!p)
			return 1;
		for (size_t i = 0; i < n; i += 4096)
			p[i] = 1;
		sleep_ns(atoll(argv[3]) * 1000000LL);
		return p[n - 4096] == 1 ? 0 : 1;
	}
	if (!strcmp(argv[1], "write")) {
		static char buf[1 << 20];
		int fd = open(argv[3], O_CREAT | O_TRUNC | O_WRONLY, 0600);
		if (fd < 0)
			return 1;
		memset(buf, 'x', sizeof(buf));
		for (long i = 0; i < atol(argv[2]); i++)
			if (write(fd, buf, sizeof(buf)) != sizeof(buf))
				return 1;
		if (fsync(fd))
			return 1;
		close(fd);
		unlink(argv[3]);
		return 0;
	}
	return 2;
}
