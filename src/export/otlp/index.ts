// OTLP export (docs/otlp.md).
export * from './types.js';
export { OtlpExport, eventAttributes, identityAttributes, splitImage, otelName, type OtlpMetricSources, type OtlpOptions, type OtlpProcessRow, type OtlpStats, type PromMetricJson } from './exporter.js';
