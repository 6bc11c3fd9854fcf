// SPDX-License-Identifier: Apache-2.0
/* wakeprobe: the platform's floor for "wake a sleeping consumer". A waiter thread blocks in
 * epoll_wait on an eventfd; the main thread, RATE times a second, takes CLOCK_BOOTTIME and writes
 * the eventfd; the waiter takes the clock again when it runs. No BPF involved: this is what any
 * consumer that sleeps between events pays on this machine (vCPU halt/IPI cost on a VM).
 *
 * usage: wakeprobe [-r RATE] [-n SAMPLES] [-c WAITER_CPU] [-C WAKER_CPU]
 * prints {"samples":N,"merged":M,"p50_us":..,"p90_us":..,"p99_us":..,"max_us":..}
 */
#include "common.h"
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

static int efd, epfd, nsamples = 1000, waiter_cpu = -1;
static uint64_t *lat, merged;
static int nlat;
static volatile uint64_t sent_at;

static void pin(int cpu)
{
	cpu_set_t s;

	if (cpu < 0)
		return;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	sched_setaffinity(0, sizeof(s), &s);
}

static void *waiter(void *arg)
{
	struct epoll_event ev;
	uint64_t v;

	(void)arg;
	pin(waiter_cpu);
	/* One sample per wakeup. If the waiter ran so late that several writes piled up, one read
	 * takes them all: the sample is for the last write and the others are counted as merged,
	 * so the loop still ends after the last write. */
	for (uint64_t got = 0; got < (uint64_t)nsamples;) {
		while (epoll_wait(epfd, &ev, 1, -1) < 1)
			;
		uint64_t t = clock_ns(CLOCK_BOOTTIME);
		if (read(efd, &v, 8) != 8)
			continue;
		lat[nlat++] = t - sent_at;
		got += v;
		merged += v - 1;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	double rate = 100;
	int waker_cpu = -1, opt;

	while ((opt = getopt(argc, argv, "r:n:c:C:")) != -1) {
		switch (opt) {
		case 'r': rate = atof(optarg); break;
		case 'n': nsamples = atoi(optarg); break;
		case 'c': waiter_cpu = atoi(optarg); break;
		case 'C': waker_cpu = atoi(optarg); break;
		default: return 2;
		}
	}
	lat = calloc(nsamples, sizeof(*lat));
	efd = eventfd(0, EFD_NONBLOCK);
	epfd = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN };
	epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &ev);
	pthread_t th;
	pthread_create(&th, NULL, waiter, NULL);
	pin(waker_cpu);
	uint64_t period = (uint64_t)(1e9 / rate), next = clock_ns(CLOCK_MONOTONIC) + period;
	for (int i = 0; i < nsamples; i++) {
		struct timespec ts = { .tv_sec = next / 1000000000ull, .tv_nsec = next % 1000000000ull };
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		next += period;
		uint64_t one = 1;
		sent_at = clock_ns(CLOCK_BOOTTIME);
		if (write(efd, &one, 8) != 8)
			die("write", errno);
	}
	pthread_join(th, NULL);
	qsort(lat, nlat, sizeof(*lat), cmp_u64);
	printf("{\"samples\":%d,\"merged\":%llu,\"rate\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f}\n",
	       nlat, (unsigned long long)merged, rate, pct(lat, nlat, 50) / 1e3, pct(lat, nlat, 90) / 1e3,
	       pct(lat, nlat, 99) / 1e3, pct(lat, nlat, 100) / 1e3);
	return 0;
}
