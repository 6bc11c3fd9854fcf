/* Allocates and touches memory in 4 MiB steps, 20 ms apart, until killed (the OOM test). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void) {
  for (;;) {
    char *p = malloc(4 << 20);
    if (!p) return 3;
    memset(p, 1, 4 << 20);
    usleep(20000);
  }
}
