/* Marker workload for the sensor reload tests (test/bpf/reload-sensors.test.ts):
 *   reload_load RATE MS TAG   runs ~RATE marked processes per second for MS ms (or until
 *                             SIGTERM), then waits for every one of them to be reaped, prints
 *                             how many it started, and exits.
 *   reload_load leaf TAG N    a marked process: exits at once (exit code N % 3)
 *   reload_load reaper TAG N  a child subreaper: runs "orphan TAG N+1", reaps every descendant
 *                             left to it, then exits
 *   reload_load orphan TAG N  forks a child that outlives it (reparented to the reaper: an
 *                             orphan), then exits; the child execs "leaf TAG N+1" once it has
 *                             its new parent
 * Every marked process execs once, with TAG and a unique N in its arguments, so the test finds
 * each one by its exec and checks its fork, exec, exit and reap. Of every ten: one is reaped
 * only after 300 ms (a zombie across a reload, blamed on this process), one sleeps 20-120 ms
 * between its fork and its exec (the exec often lands after a generation flip), one leaves an
 * orphan behind. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char self[4096];
static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void exec_leaf(const char *tag, long n)
{
	char num[32];
	snprintf(num, sizeof num, "%ld", n);
	execl(self, "reload_load", "leaf", tag, num, (char *)NULL);
	_exit(127);
}

struct child {
	pid_t pid;
	int zombie;         /* reap 300 ms after it exits */
	long long reap_at;  /* 0: as soon as it exits */
};

int main(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	if (!strcmp(argv[1], "leaf"))
		return atoi(argv[3]) % 3;
	ssize_t r = readlink("/proc/self/exe", self, sizeof self - 1);
	if (r <= 0)
		return 2;
	self[r] = 0;
	if (!strcmp(argv[1], "reaper")) {
		char num[32];
		prctl(PR_SET_CHILD_SUBREAPER, 1);
		snprintf(num, sizeof num, "%ld", atol(argv[3]) + 1);
		pid_t c = fork();
		if (c == 0) {
			execl(self, "reload_load", "orphan", argv[2], num, (char *)NULL);
			_exit(127);
		}
		while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
			;
		return 0;
	}
	if (!strcmp(argv[1], "orphan")) {
		pid_t parent = getpid();
		pid_t c = fork();
		if (c == 0) {
			/* an orphan: wait (up to 5 s) for the parent to be gone and this one reparented */
			for (int i = 0; i < 1000 && getppid() == parent; i++)
				sleep_ms(5);
			sleep_ms(20);
			exec_leaf(argv[2], atol(argv[3]) + 1);
		}
		return 0;
	}

	signal(SIGTERM, on_term);
	long rate = atol(argv[1]), ms = atol(argv[2]);
	const char *tag = argv[3];
	struct child *kids = calloc((size_t)(rate * ms / 1000 + 16) * 2, sizeof *kids);
	size_t nk = 0, live = 0;
	long long start = now_ms(), period_us = 1000000 / rate;
	long n = 0;
	for (long i = 0;; i++) {
		long long t = now_ms();
		if (t - start >= ms || stop)
			break;
		/* keep the rate: catch up on ticks the scheduler took from us, without bursting */
		long long due = start + i * period_us / 1000;
		if (due > t)
			sleep_ms(due - t);
		int kind = i % 10;
		n += 4; /* a reaper takes n, its orphan's parent n + 1, the orphan n + 2 */
		pid_t p = fork();
		if (p == 0) {
			char num[32];
			signal(SIGTERM, SIG_DFL);
			snprintf(num, sizeof num, "%ld", n);
			if (kind == 7) {
				sleep_ms(20 + n % 100);
				exec_leaf(tag, n);
			} else if (kind == 8)
				execl(self, "reload_load", "reaper", tag, num, (char *)NULL);
			else
				exec_leaf(tag, n);
			_exit(127);
		}
		if (p > 0) {
			kids[nk].pid = p;
			kids[nk].zombie = kind == 6;
			kids[nk].reap_at = 0;
			nk++;
			live++;
		}
		/* reap what is due; WNOHANG: a child not done yet is tried again next tick */
		for (size_t k = 0; k < nk; k++) {
			if (kids[k].pid <= 0 || kids[k].reap_at > now_ms())
				continue;
			if (kids[k].zombie && kids[k].reap_at == 0) {
				/* exited yet? (WNOWAIT: it stays a zombie) then reap it 300 ms from now */
				siginfo_t si = { 0 };
				if (waitid(P_PID, kids[k].pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == kids[k].pid)
					kids[k].reap_at = now_ms() + 300;
				continue;
			}
			if (waitpid(kids[k].pid, NULL, WNOHANG) == kids[k].pid) {
				kids[k].pid = 0;
				live--;
			}
		}
		/* compact now and then */
		if (nk > 4096 && live < nk / 4) {
			size_t w = 0;
			for (size_t k = 0; k < nk; k++)
				if (kids[k].pid > 0)
					kids[w++] = kids[k];
			nk = w;
		}
	}
	for (size_t k = 0; k < nk; k++) {
		if (kids[k].pid <= 0)
			continue;
		if (kids[k].zombie && kids[k].reap_at == 0) {
			siginfo_t si = { 0 };
			waitid(P_PID, kids[k].pid, &si, WEXITED | WNOWAIT);
			kids[k].reap_at = now_ms() + 300;
		}
		long long wait = kids[k].reap_at - now_ms();
		if (wait > 0)
			sleep_ms(wait);
		waitpid(kids[k].pid, NULL, 0);
	}
	printf("%ld\n", n / 4);
	return 0;
}
