// The dashboard: a header with the pages, the node strip, and the page of the current hash
// route (#/processes, #/process/<exec_id>, #/zombies, #/events, #/checks, #/health).
import './style.css';
import { onConnection } from './api.js';
import { h, fill } from './dom.js';
import type { Page } from './page.js';
import { NodeStrip } from './strip.js';
import { ProcessesPage } from './pages/processes.js';
import { ProcessPage } from './pages/process.js';
import { ZombiesPage } from './pages/zombies.js';
import { EventsPage } from './pages/events.js';
import { ChecksPage } from './pages/checks.js';
import { HealthPage } from './pages/health.js';

const NAV: [string, string][] = [
  ['/processes', 'Processes'],
  ['/zombies', 'Zombies & D'],
  ['/events', 'Live events'],
  ['/checks', 'Checks & alerts'],
  ['/health', 'Health'],
];

function route(hash: string): { nav: string; make: () => Page } {
  const path = hash.replace(/^#/, '') || '/processes';
  const m = /^\/process\/([0-9a-f]{16})$/.exec(path);
  if (m) return { nav: '/processes', make: () => new ProcessPage(m[1]!) };
  switch (path) {
    case '/zombies':
      return { nav: path, make: () => new ZombiesPage() };
    case '/events':
      return { nav: path, make: () => new EventsPage() };
    case '/checks':
      return { nav: path, make: () => new ChecksPage() };
    case '/health':
      return { nav: path, make: () => new HealthPage() };
    default:
      return { nav: '/processes', make: () => new ProcessesPage() };
  }
}

const banner = h('div.banner', { role: 'status', hidden: true });
const links = new Map<string, HTMLAnchorElement>();
const nav = h('nav', null, ...NAV.map(([r, label]) => {
  const a = h('a', { href: `#${r}`, 'data-route': r }, label);
  links.set(r, a);
  return a;
}));
const main = h('main', { id: 'page' });
const strip = new NodeStrip();
document.body.append(h('header', null, h('a.brand', { href: '#/processes' }, 'patrol'), nav), banner, strip.el, main);

onConnection(({ ok, message }) => {
  banner.hidden = ok;
  if (!ok) banner.textContent = message;
});

let current: Page | null = null;
function show(): void {
  current?.stop();
  const r = route(location.hash);
  for (const [k, a] of links) a.classList.toggle('on', k === r.nav);
  current = r.make();
  document.title = `${current.title} · patrol`;
  fill(main, current.el);
  current.start();
}

window.addEventListener('hashchange', show);
strip.start();
show();
