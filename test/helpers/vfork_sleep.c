/* Test helper: the parent of a vfork() sits in D (TASK_KILLABLE) until the child execs or
 * exits; the child sleeps first, so the parent's D lasts as long as argv[1] milliseconds. */
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long ms = argc > 1 ? atol(argv[1]) : 400;
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	pid_t child = vfork();

	if (child == 0) {
		nanosleep(&ts, NULL);
		_exit(0);
	}
	if (child < 0)
		return 1;
	waitpid(child, NULL, 0);
	return 0;
}
