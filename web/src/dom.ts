// DOM building without markup: every text goes in through textContent (never innerHTML), and
// text from processes (comm, args, paths, log lines) goes through show(), which makes control
// characters, bidi overrides and the like visible as escapes, as the CLI does in a terminal.
import { term } from '../../src/shared/terminal.js';

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

/** Process-supplied text, safe to look at: "\x1b[31m" instead of an invisible escape. */
export const show = (s: string | null | undefined): string => term(s);

/** h('td.num', {title: 'x'}, 'text', child): an element; `tag.cls1.cls2` sets classes. */
export function h<K extends keyof HTMLElementTagNameMap>(spec: K | `${K}.${string}`, attrs?: Attrs | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const [tag, ...classes] = spec.split('.') as [K, ...string[]];
  const el = document.createElement(tag);
  if (classes.length) el.className = classes.join(' ');
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
      else if (k === 'class') el.className = `${el.className} ${String(v)}`.trim();
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, ...children);
  return el;
}

export function append(el: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

/** Replaces the children of `el`. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, ...children);
}

/** Sets textContent only when it changed (no layout work for equal text). */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

/** A link inside the app (hash routes). */
export function link(route: string, ...children: Child[]): HTMLAnchorElement {
  return h('a', { href: `#${route}` }, ...children);
}

/** A link to a process's detail page, or plain text when the exec_id is unknown. */
export function procLink(execId: string | null | undefined, text: string): HTMLElement {
  // only an exec_id's shape ever reaches an href
  return execId && /^[0-9a-f]{16}$/.test(execId) ? link(`/process/${execId}`, text) : h('span', null, text);
}

/** A section with a heading. */
export function section(title: string, ...children: Child[]): HTMLElement {
  return h('section.card', null, h('h2', null, title), ...children);
}

/** A "not available" note, for figures the agent does not have (yet). */
export function na(why: string): HTMLElement {
  return h('p.na', null, `not available: ${why}`);
}

/** A table from a header row and rows of cells. */
export function table(head: string[], rows: Child[][], cls = ''): HTMLTableElement {
  return h(
    'table',
    cls ? { class: cls } : null,
    h('thead', null, h('tr', null, ...head.map((x) => h('th', null, x)))),
    h('tbody', null, ...rows.map((r) => h('tr', null, ...r.map((c) => (c instanceof HTMLTableCellElement ? c : h('td', null, c)))))),
  );
}

/** Key/value pairs as a definition list. */
export function kv(pairs: [string, Child][]): HTMLDListElement {
  const dl = h('dl.kv');
  for (const [k, v] of pairs) append(dl, h('dt', null, k), h('dd', null, v ?? '—'));
  return dl;
}

const built = new WeakMap<Element, string>();
/** fill(), only when `key` (what the content is made of) changed since the last time: text the
 *  user is selecting or a <details> they opened survives a poll that brought nothing new. */
export function fillKeyed(el: Element, key: string, build: () => Child[]): void {
  if (built.get(el) === key) return;
  built.set(el, key);
  fill(el, ...build());
}
