// Resource windows: per process, cgroup and node; top queries; Prometheus exposition.
export { Series, DEFAULT_SERIES_OPTIONS, type SeriesOptions, type WindowFigures } from './series.js';
export { KeyedWindows, MAX_TREND_WINDOWS, TREND_IDLE_MS, type KeyEntry, type KeyedOptions, type TrendArm } from './keyed.js';
export { ProcessWindows, MAX_SAMPLES_PER_WINDOW, DEFAULT_MAX_EXITED, endedWithSamplesBound, type ProcMetric, type ProcMeta, type Identify, type ProcIdentity, type ExitFacts } from './processes.js';
export { ExitedProcesses, ExitInput, recordFigures, type ExitedRecord } from './exited.js';
export { KEPT_PER_SLOT, MAX_CELLS_PER_SLOT, OTHER_COMM, type AggregateCell } from './exited-aggregates.js';
export { NodeWindows, type NodeMetric, type NodeSnapshot } from './node.js';
export { CgroupWindows, type CgroupMetric, type CgroupMeta } from './cgroups.js';
export { topRows, topGroups, type TopRow, type TopAggregate, type TopGroup, type TopQuery, type TopSort } from './top.js';
export { PatrolMetrics, seriesBound, type AgentHealth, type PrometheusSources } from './prometheus.js';
export { nsToMs } from './time.js';
export { nodeStrip, processHistory, type NodeStrip, type ProcessHistory, type Point, type Fig } from './history.js';
