import { describe, expect, it } from 'vitest';
import { KernelFeatureError, kernelVersion, probeKernel, requireFeature } from '../../src/kernel/index.js';

describe('requireFeature', () => {
  it('names bpf_loop and 5.17 on an older kernel', () => {
    let err: unknown;
    try {
      requireFeature('bpfLoop', kernelVersion('5.15.0-91-generic'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KernelFeatureError);
    expect((err as KernelFeatureError).code).toBe('E_KERNEL_FEATURE');
    expect((err as KernelFeatureError).feature).toBe('bpfLoop');
    expect((err as Error).message).toBe(
      'this kernel (5.15.0-91-generic) lacks the bpf_loop helper (bench_produce, the benchmark record generator); patrol needs Linux 5.17 or newer',
    );
  });

  it('accepts the first kernel that has the feature and later ones', () => {
    expect(() => requireFeature('bpfLoop', kernelVersion('5.17.0'))).not.toThrow();
    expect(() => requireFeature('bpfLoop', kernelVersion('6.1.0'))).not.toThrow();
    expect(() => requireFeature('taskStorage', kernelVersion('5.10.200'))).toThrow(/5\.11 or newer/);
  });

  it('still gates the sensors in probeKernel', () => {
    const caps = 1n << 21n; // CAP_SYS_ADMIN
    expect(() => probeKernel({ caps, btfPath: '/proc/self/status', kernel: kernelVersion('5.4.0') })).toThrow(KernelFeatureError);
  });
});
