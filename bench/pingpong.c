/* Pipe ping-pong between two processes: every round trip is two context switches on a busy
 * pair. Runs for argv[1] seconds and prints the context switches per second. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 3;
	int a[2], b[2];
	char c = 0;
	long n = 0;

	if (pipe(a) || pipe(b))
		return 1;
	pid_t child = fork();
	if (child == 0) {
		close(a[1]); /* or read() never sees EOF when the parent is done */
		close(b[0]);
		while (read(a[0], &c, 1) == 1)
			if (write(b[1], &c, 1) != 1)
				break;
		_exit(0);
	}
	close(a[0]);
	close(b[1]);
	double t0 = now(), end = t0 + secs;
	while (1) {
		if (write(a[1], &c, 1) != 1 || read(b[0], &c, 1) != 1)
			break;
		if ((++n & 1023) == 0 && now() > end)
			break;
	}
	double dt = now() - t0;
	close(a[1]);
	waitpid(child, NULL, 0);
	printf("{\"round_trips\":%ld,\"seconds\":%.3f,\"switches_per_s\":%.0f}\n", n, dt, 2 * n / dt);
	return 0;
}
