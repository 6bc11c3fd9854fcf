// The ring consumer's hold (batchDelayUs) as LifecyclePipeline resolves it from its config.
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIFECYCLE, resolveBatchDelayUs } from '../../src/app/lifecycle.js';

describe('resolveBatchDelayUs', () => {
  it("holds 1 ms by default ('auto'): fewer, larger batches at low rates", () => {
    expect(DEFAULT_LIFECYCLE.batchDelayUs).toBe('auto');
    expect(resolveBatchDelayUs(DEFAULT_LIFECYCLE)).toBe(1000);
  });

  it("does not hold when the consumer runs realtime (latency first), unless told to", () => {
    expect(resolveBatchDelayUs({ batchDelayUs: 'auto', consumerRealtimePriority: 1 })).toBe(0);
    expect(resolveBatchDelayUs({ batchDelayUs: 250, consumerRealtimePriority: 1 })).toBe(250);
  });

  it('takes an explicit value as is, 0 included', () => {
    expect(resolveBatchDelayUs({ batchDelayUs: 0, consumerRealtimePriority: 0 })).toBe(0);
    expect(resolveBatchDelayUs({ batchDelayUs: 500, consumerRealtimePriority: 0 })).toBe(500);
  });
});
