// A page of the app: built on navigation, started when shown, stopped (polls and streams
// ended, charts destroyed) when the user goes elsewhere.
export interface Page {
  readonly el: HTMLElement;
  readonly title: string;
  start(): void;
  stop(): void;
}
