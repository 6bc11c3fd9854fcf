// SPDX-License-Identifier: Apache-2.0
/* forkexec: a cheap exec load generator for the patrol benchmarks.
 *
 * Each of JOBS worker processes loops fork() + execve(PATH, ARGV) + waitpid(), either paced at
 * RATE/JOBS execs per second (absolute schedule, CLOCK_MONOTONIC) or flat out (RATE 0), for a
 * duration or a total count. The parent prints one JSON line on stdout:
 *   {"execs":N,"failed":F,"elapsed_s":T,"rate":R,"target_rate":RATE,"jobs":J,"late":L}
 * late = paced execs started more than 1 ms after their slot (the generator fell behind).
 *
 * usage: forkexec [-r RATE] [-d SECONDS | -n COUNT] [-j JOBS] [-e PATH] [-- ARGV...]
 *   default: -r 0 -d 5 -j 1 -e /bin/true, argv = { basename(PATH) }
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct shared {
	volatile uint64_t execs[64];
	volatile uint64_t failed[64];
	volatile uint64_t late[64];
	volatile int stop;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = { .tv_sec = t / 1000000000ull, .tv_nsec = t % 1000000000ull };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void worker(struct shared *sh, int id, double rate, uint64_t count, uint64_t deadline,
		   const char *path, char **argv)
{
	uint64_t period = rate > 0 ? (uint64_t)(1e9 / rate) : 0;
	uint64_t next = now_ns();
	uint64_t n = 0;

	while (!sh->stop) {
		if (count && n >= count)
			break;
		if (deadline && now_ns() >= deadline)
			break;
		if (period) {
			uint64_t t = now_ns();

			if (t < next)
				sleep_until(next);
			else if (t - next > 1000000)
				sh->late[id]++;
			next += period;
			if (deadline && next > deadline + period)
				break;
		}
		pid_t pid = fork();
		if (pid < 0) {
			sh->failed[id]++;
			continue;
		}
		if (pid == 0) {
			execve(path, argv, environ);
			_exit(127);
		}
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
			sh->failed[id]++;
		else
			sh->execs[id]++;
		n++;
	}
}

int main(int argc, char **argv)
{
	double rate = 0, dur = 5;
	uint64_t count = 0;
	int jobs = 1, opt;
	const char *path = "/bin/true";

	while ((opt = getopt(argc, argv, "r:d:n:j:e:")) != -1) {
		switch (opt) {
		case 'r': rate = atof(optarg); break;
		case 'd': dur = atof(optarg); break;
		case 'n': count = strtoull(optarg, NULL, 10); dur = 0; break;
		case 'j': jobs = atoi(optarg); break;
		case 'e': path = optarg; break;
		default:
			fprintf(stderr, "usage: forkexec [-r RATE] [-d SECONDS | -n COUNT] [-j JOBS] [-e PATH] [-- ARGV...]\n");
			return 2;
		}
	}
	if (jobs < 1 || jobs > 64) {
		fprintf(stderr, "forkexec: -j must be 1..64\n");
		return 2;
	}
	char *defargv[2] = { NULL, NULL };
	char **xargv;
	if (optind < argc) {
		xargv = &argv[optind];
	} else {
		const char *b = strrchr(path, '/');
		defargv[0] = (char *)(b ? b + 1 : path);
		xargv = defargv;
	}

	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	memset((void *)sh, 0, sizeof(*sh));
	uint64_t t0 = now_ns();
	uint64_t deadline = dur > 0 ? t0 + (uint64_t)(dur * 1e9) : 0;
	pid_t kids[64];
	for (int j = 0; j < jobs; j++) {
		uint64_t c = count ? count / jobs + (j < (int)(count % jobs)) : 0;
		kids[j] = fork();
		if (kids[j] == 0) {
			/* a benchmark that stops the load kills this process: its workers go with it */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() == 1)
				_exit(0);
			worker(sh, j, rate / jobs, c, deadline, path, xargv);
			_exit(0);
		}
	}
	for (int j = 0; j < jobs; j++)
		waitpid(kids[j], NULL, 0);
	double el = (now_ns() - t0) / 1e9;
	uint64_t execs = 0, failed = 0, late = 0;
	for (int j = 0; j < jobs; j++) {
		execs += sh->execs[j];
		failed += sh->failed[j];
		late += sh->late[j];
	}
	printf("{\"execs\":%llu,\"failed\":%llu,\"elapsed_s\":%.6f,\"rate\":%.1f,\"target_rate\":%.1f,\"jobs\":%d,\"late\":%llu}\n",
	       (unsigned long long)execs, (unsigned long long)failed, el, execs / el, rate, jobs,
	       (unsigned long long)late);
	return failed ? 1 : 0;
}
