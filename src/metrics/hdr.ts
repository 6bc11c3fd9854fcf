// hdr-histogram-js's JavaScript histograms, loaded alone. The package's index also loads its
// WebAssembly build (a base64 module, pako and the AssemblyScript loader) and the log
// reader/writer, ~1.3 MB of heap in every agent that never uses them (bench/README.md,
// "Session 22"). `buildHistogram` is the package's own `build` for the JS histograms: the
// same classes, bounds and auto-resize.
import { createRequire } from 'node:module';
import type { Histogram } from 'hdr-histogram-js';

// required, not imported: a CommonJS module's `exports.default` is what every loader (Node's ESM
// and vitest's alike) hands back from require
const require = createRequire(import.meta.url);
const { default: PackedHistogram } = require('hdr-histogram-js/dist/PackedHistogram.js') as typeof import('hdr-histogram-js/dist/PackedHistogram.js');
const { default: Int32Histogram } = require('hdr-histogram-js/dist/Int32Histogram.js') as typeof import('hdr-histogram-js/dist/Int32Histogram.js');

export type { Histogram };

/** `hdr.build({ bitBucketSize, numberOfSignificantValueDigits, autoResize: true })` */
export function buildHistogram(bitBucketSize: 'packed' | 32, numberOfSignificantValueDigits: 1 | 2 | 3 | 4 | 5): Histogram {
  const H = bitBucketSize === 'packed' ? PackedHistogram : Int32Histogram;
  // the builder's defaults: lowest discernible value 1, highest trackable 2 (auto-resized)
  const h = new H(1, 2, numberOfSignificantValueDigits);
  h.autoResize = true;
  return h;
}
