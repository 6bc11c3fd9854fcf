// Local HTTP API of the agent (docs/api.md). The agent implements AgentView and calls startApi.
export { startApi, formatValidation, TREE_MAX_DEPTH, type ApiOptions, type ApiHandle, type ApiAddresses } from './server.js';
export type { AgentView, AgentStats, AccountingStats, EventListener, ResourcesView } from './view.js';
export { EventHub, ClientStream, isFailure, type EventFilter } from './events.js';
export { probeSocket, prepareSocketPath } from './socket.js';
export { DEFAULT_SOCKET, DEFAULT_TCP_HOST, DEFAULT_EVENTS_BUFFER_BYTES, API_PREFIX, defaultSocket } from './defaults.js';
export * from './json.js';
export type { ExplainView, ExplainJson, ExplainRecentJson, CauseJson, EvidenceJson, AlertJson, RulesJson, RuleProfileJson } from './explain.js';
export { registerCheckRoutes, type ChecksView, type CheckRunJson, type AlertJson as CheckAlertJson, type ChecksStatusJson } from './checks.js';
export type { ReloadReplyJson, ReloadStatusJson } from './view.js';
export { reloadRoute, statusRoute } from './reload.js';
export { registerHistoryRoutes, type NodeJson, type HistoryJson } from './history.js';
export { nodeRoute, historyRoute, HISTORY_MAX_IDS } from './schemas.js';
export { registerFleetRoutes, type FleetView, type FleetSummaryJson } from './fleet.js';
