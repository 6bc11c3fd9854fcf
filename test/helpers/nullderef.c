/* Dereferences NULL (the segfault test). volatile: the compiler must not fold the store away. */
int main(void) {
  volatile int *p = 0;
  *p = 42;
  return 0;
}
