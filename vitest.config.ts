import { defineConfig } from 'vitest/config';

// BPF tests load programs into the one shared kernel and measure loss under load, so test files
// run one at a time; unit tests are fast enough that this costs little.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
