// Moved to src/shared (the API parses durations too); kept so app imports stay short.
export * from '../shared/duration.js';
