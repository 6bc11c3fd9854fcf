/* RSS shapes for the prediction tests.
 *   rss_shape grow START_MB MB_PER_S   maps and touches START_MB, then grows at MB_PER_S, paced
 *                                      by the clock (20 steps a second), until killed
 *   rss_shape saw MB PERIOD_MS         maps and touches MB, holds it half the period, unmaps it,
 *                                      waits the other half; forever
 * Anonymous mmap, so unmapping gives the memory back (RSS falls) and the OOM killer sees it. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static void *touch(size_t n) {
  void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) exit(3);
  memset(p, 1, n);
  return p;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  const size_t mb = 1 << 20;
  if (argc == 4 && strcmp(argv[1], "grow") == 0) {
    touch((size_t)atoi(argv[2]) * mb);
    double rate = atof(argv[3]) * mb, t0 = now_s(), done = 0;
    for (;;) {
      usleep(50000);
      size_t want = (size_t)((now_s() - t0) * rate - done) & ~(size_t)4095;
      if (want > 0) {
        touch(want);
        done += want;
      }
    }
  }
  if (argc == 4 && strcmp(argv[1], "saw") == 0) {
    size_t n = (size_t)atoi(argv[2]) * mb;
    useconds_t half = (useconds_t)atoi(argv[3]) * 500;
    for (;;) {
      void *p = touch(n);
      usleep(half);
      munmap(p, n);
      usleep(half);
    }
  }
  return 2;
}
