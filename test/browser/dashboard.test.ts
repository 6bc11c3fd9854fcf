// The dashboard in a real browser (Debian's Chromium through playwright-core) against a real
// agent: auth, every page with live data, failures with their cause, hostile process text shown
// as text, and the processes page with 2,000 extra idle processes. Each page is written as a PNG
// under test-output/dashboard/ for people to look at.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bpfEnabled, bpfRequired, sleep } from '../bpf/helpers.js';
import { CHROMIUM, SHOTS, apiGet, launchChromium, startAgent, startDashboard, until, type Agent, type Dashboard } from './helpers.js';

const enabled = bpfEnabled && (bpfRequired || existsSync(CHROMIUM));
const HELPERS = fileURLToPath(new URL('../helpers', import.meta.url));
const tag = String(process.pid % 100000);
const SEGV = `psegv${tag}`;

describe.skipIf(!enabled)('patrol dashboard in Chromium (real agent)', () => {
  let agent: Agent;
  let dash: Dashboard;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  const children: ChildProcess[] = [];
  const groups = new Set<ChildProcess>();
  const dialogs: string[] = [];
  const problems: string[] = [];

  /** a process of ours, killed at the end */
  const start = (cmd: string, args: string[], opts: { detached?: boolean } = {}): ChildProcess => {
    const c = spawn(cmd, args, { stdio: 'ignore', ...opts });
    children.push(c);
    if (opts.detached) groups.add(c);
    return c;
  };
  /** a fresh page for the route (the same hash again would not navigate) */
  const go = async (route: string) => {
    await page.goto('about:blank');
    await page.goto(`${dash.base}/#${route}`);
    await page.waitForSelector(`main [data-page]`);
  };
  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    agent = await startAgent(`check segv { every 1s; critical count(exit where signal == 11 and comm == "${SEGV}", 1m) > 0; }\ncheck zombies { every 5s; warning unless zombie_count() == 0 for 5s; }\n`);
    copyFileSync('/bin/sleep', join(agent.dir, SEGV));
    dash = await startDashboard(agent.socket);
    browser = await launchChromium();
    ctx = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    page = await ctx.newPage();
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (/Content.Security.Policy|Refused to/i.test(m.text())) problems.push(`csp: ${m.text()}`);
    });
    const r = await page.goto(dash.url);
    expect(r?.status()).toBe(200);
    expect(page.url()).toBe(`${dash.base}/`);
  }, 90_000);

  afterAll(async () => {
    for (const c of children) {
      try {
        // detached ones lead a process group: their children go too
        if (c.pid) process.kill(groups.has(c) ? -c.pid : c.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await browser?.close();
    await dash?.stop();
    await agent?.stop();
  });

  it('auth: the one-time URL gave this browser an HttpOnly cookie; without it, pages and API are 401', async () => {
    const cookies = await ctx.cookies();
    expect(cookies).toEqual([expect.objectContaining({ name: 'patrol_dashboard', httpOnly: true, sameSite: 'Strict' })]);
    expect(await page.evaluate(() => document.cookie)).toBe('');
    const other = await browser.newContext();
    try {
      const p = await other.newPage();
      for (const path of ['/', '/app.js', '/api/v1/health', '/api/v1/processes', '/#/health']) {
        expect((await p.goto(dash.base + path))?.status(), path).toBe(401);
      }
      // the token is spent: a second browser gets nothing from the URL
      expect((await p.goto(dash.url))?.status()).toBe(401);
      expect(await p.content()).toContain('already used');
    } finally {
      await other.close();
    }
    const plain = await fetch(`${dash.base}/api/v1/stats`);
    expect(plain.status).toBe(401);
    expect(plain.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
  });

  it('processes: a process the test starts is in the table within 2 s; its detail page by exec_id', async () => {
    await go('/processes');
    await page.waitForSelector('[data-page=processes][data-ready=true]', { timeout: 10_000 });
    const marker = `pdash-${tag}-${Date.now()}`;
    await page.fill('#proc-filter', marker);
    const t0 = Date.now();
    const child = start('perl', ['-e', 'sleep 60', marker]);
    const row = page.locator('.vrow', { hasText: marker });
    await row.first().waitFor({ timeout: 6000 });
    const ms = Date.now() - t0;
    // one poll (1 s) plus one sweep on a quiet machine; the bound only catches a stalled page
    // (speed is bench/dashboard.mjs's figure, not a timed test's)
    expect(ms).toBeLessThan(6000);
    expect(await row.first().locator('.vtd').first().textContent()).toBe(String(child.pid));
    await sleep(2500); // two sweeps: sparklines and charts have samples
    await page.fill('#proc-filter', '');
    await page.fill('#proc-filter', marker);
    await shot('processes');
    await row.first().click();
    await page.waitForSelector('[data-page=process] #proc-comm');
    const execId = await page.getAttribute('[data-page=process]', 'data-exec-id');
    const api = (await apiGet(agent.socket, `/v1/processes/${execId}`)).body;
    expect(api.process.pid).toBe(child.pid);
    expect(await page.textContent('#proc-comm')).toBe('perl');
    expect(await page.textContent('#proc-args')).toBe(`perl -e 'sleep 60' ${marker}`);
    // ancestry: this test runner is the parent
    expect(await page.textContent('.ancestry')).toContain(`(${process.pid})`);
    // the states the agent observed (a sleeping perl), drawn on the timeline
    await until('observed states', async () => (await apiGet(agent.socket, `/v1/processes/${execId}`)).body.states.some((x: { state: string }) => x.state === 'S'), 5000);
    await until('the state timeline', async () => (await page.locator('.timeline-bar .seg[data-state=S]').count()) > 0);
    await until('the CPU chart', async () => (await page.locator('.chart canvas').count()) >= 3);
    await sleep(500);
    await shot('process');
    child.kill('SIGKILL');
    await until('the exit on the detail page', async () => (await page.textContent('#proc-exit').catch(() => null)) === 'SIGKILL', 5000);
  });

  it('live events: an exec within 2 s; pause holds the view, resume shows what came; bounded rows', async () => {
    await go('/events');
    await until('the stream', async () => (await page.textContent('#events-status'))?.includes('live'));
    const m1 = `pev1-${tag}-${Date.now()}`;
    const t0 = Date.now();
    start('/bin/true', [m1]);
    await page.locator('#event-rows tr[data-type=exec]', { hasText: m1 }).waitFor({ timeout: 4000 });
    expect(Date.now() - t0).toBeLessThan(2000);

    await page.click('#ev-pause');
    const m2 = `pev2-${tag}-${Date.now()}`;
    const c2 = start('/bin/true', [m2]);
    // the agent has applied its exec (so the stream carried it), and the page counted it
    await until('the agent saw it', async () => (await apiGet(agent.socket, '/v1/processes?comm=true')).body.processes.some((p: { pid: number; args: string[] | null }) => p.pid === c2.pid && p.args?.includes(m2)), 5000);
    await until('counted while paused', async () => /paused: [1-9]\d* new/.test((await page.textContent('#events-counters')) ?? ''), 4000);
    await sleep(500);
    expect(await page.locator('#event-rows tr', { hasText: m2 }).count()).toBe(0);
    await page.click('#ev-pause');
    await page.locator('#event-rows tr[data-type=exec]', { hasText: m2 }).waitFor({ timeout: 2000 });

    // a burst of ~1,600 events: the page keeps the last 500 rows
    const before = Number(await page.getAttribute('[data-page=events]', 'data-received'));
    start('sh', ['-c', 'for i in $(seq 400); do /bin/true; done']);
    await until('the burst', async () => Number(await page.getAttribute('[data-page=events]', 'data-received')) - before >= 1500, 20_000, 100);
    await sleep(300);
    expect(await page.locator('#event-rows tr').count()).toBe(500);
    await shot('events');
  });

  it('failures show their cause: SIGSEGV is a failed event, and the alert it raised explains it', async () => {
    await go('/events');
    await page.check('#ev-failed');
    await until('the stream', async () => (await page.textContent('#events-status'))?.includes('live'));
    const ok = start('/bin/true', [`pok-${tag}`]);
    const victim = start(join(agent.dir, SEGV), ['60']);
    await sleep(300);
    const t0 = Date.now();
    victim.kill('SIGSEGV');
    const row = page.locator(`#event-rows tr.failed[data-type=exit][data-pid="${victim.pid}"]`);
    await row.waitFor({ timeout: 4000 });
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(await row.textContent()).toContain('SIGSEGV');
    expect(await page.locator(`#event-rows tr[data-pid="${ok.pid}"]`).count()).toBe(0);
    await shot('events-failed');

    await go('/checks');
    const alert = page.locator('li[data-check=segv].firing');
    await alert.first().waitFor({ timeout: 15_000 });
    await until('the check is critical', async () => (await page.locator('tr[data-check=segv] .badge').textContent()) === 'critical', 5000);
    // on a busy machine other causes (crash loops) may rank above it: it can be folded
    const cause = alert.first().locator('li.cause[data-cause=segfault]', { hasText: `pid ${victim.pid} ` });
    await cause.waitFor({ state: 'attached', timeout: 3000 });
    expect(await cause.locator('.explanation').textContent()).toContain(`pid ${victim.pid} (${SEGV}`);
    expect(await cause.locator('.explanation').textContent()).toContain('SIGSEGV');
    expect(await cause.locator('ol.evidence li').count()).toBeGreaterThanOrEqual(2);
    // explain now: recomputed by the agent
    await alert.first().locator('button', { hasText: 'explain now' }).click();
    await alert.first().locator('.live-explain li.cause[data-cause=segfault]', { hasText: `pid ${victim.pid} ` }).first().waitFor({ state: 'attached', timeout: 5000 });
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot('checks');
  });

  it('zombies and D: who is stuck, for how long, and the parent to blame', async () => {
    // the child exits at once; its parent (now `sleep`) never waits for it
    const parent = start('sh', ['-c', 'sleep 0.1 & exec sleep 60']);
    const bin = join(agent.dir, 'vfork_sleep');
    execFileSync('cc', ['-O0', '-o', bin, join(HELPERS, 'vfork_sleep.c')]);
    const d = start(bin, ['8000']);
    await go('/zombies');
    const z = page.locator('#zombies tr', { hasText: `sleep (${parent.pid})` });
    await z.first().waitFor({ timeout: 5000 });
    expect(await z.first().locator('td.blame').textContent()).toBe(`sleep (${parent.pid})`);
    expect(await page.locator('#zombie-parents tr', { hasText: 'sleep' }).count()).toBeGreaterThanOrEqual(1);
    await page.locator(`#stuck-d tr[data-pid="${d.pid}"]`).waitFor({ timeout: 8000 });
    await shot('zombies');
    // the zombie is in the process table too, as Z
    await go('/processes');
    await page.selectOption('#proc-state', 'Z');
    await page.locator('.vrow', { hasText: 'sleep' }).first().waitFor({ timeout: 3000 });
  });

  it('hostile process text is shown as text: no markup, no script, escapes visible', async () => {
    const img = '<img src=x onerror=alert(1)>';
    const esc = 'esc\x1b[31mred';
    copyFileSync('/usr/bin/perl', join(agent.dir, img));
    copyFileSync('/usr/bin/perl', join(agent.dir, esc));
    const a = start(join(agent.dir, img), ['-e', 'sleep 60', '<script>window.__xss=1;alert(2)</script>']);
    const b = start(join(agent.dir, esc), ['-e', 'sleep 60', 'title\x1b]0;pwned\x07']);
    await go('/processes');
    await page.fill('#proc-filter', 'onerror');
    const rowA = page.locator('.vrow', { hasText: '<img src=x oner' });
    await rowA.first().waitFor({ timeout: 4000 });
    expect(await rowA.first().locator('.comm').textContent()).toBe('<img src=x oner');
    expect(await rowA.first().locator('.vtd').last().textContent()).toContain(`'<script>window.__xss=1;alert(2)</script>'`);
    await shot('hostile');
    await page.fill('#proc-filter', '\\x1b[31mred');
    const rowB = page.locator('.vrow', { hasText: 'esc\\x1b[31mred' });
    await rowB.first().waitFor({ timeout: 4000 });
    expect(await rowB.first().locator('.vtd').last().textContent()).toContain('title\\x1b]0;pwned\\x07');
    await go(`/process/${(await apiGet(agent.socket, `/v1/processes?pid=${a.pid}`)).body.processes[0].exec_id}`);
    await until('detail', async () => (await page.textContent('#proc-comm').catch(() => null)) === '<img src=x oner');
    await go('/events');
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('script:not([src])').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
    expect(dialogs).toEqual([]);
    expect(problems).toEqual([]);
    a.kill('SIGKILL');
    b.kill('SIGKILL');
  });

  it('health: status, loss accounting with its identity, programs attached, versions, fleet', async () => {
    await go('/health');
    await page.waitForSelector('#identity');
    expect(await page.textContent('#health-status')).toMatch(/ok|degraded/);
    expect(await page.textContent('#identity')).toContain('✓');
    expect(await page.locator('[data-section=programs] li').count()).toBeGreaterThanOrEqual(5);
    expect(await page.textContent('[data-section=loss] table')).toContain('exec_failed');
    expect(await page.textContent('[data-section=versions]')).toMatch(/2 checks from 1 files/);
    expect(await page.textContent('[data-section=fleet]')).toContain('not available');
    await shot('health');
  });

  it('the node strip: CPU, memory, load, pressure and disk over 10 s / 1 m / 5 m', async () => {
    await go('/health');
    for (const w of ['10s', '5m', '1m']) {
      await page.click(`.strip button[data-window="${w}"]`);
      await until(`window ${w}`, async () => (await page.getAttribute(`.strip button[data-window="${w}"]`, 'class'))?.includes('on'));
    }
    await until('figures', async () => /%$/.test((await page.textContent('[data-metric=cpu] .value')) ?? ''));
    expect(await page.textContent('[data-metric=memory] .value')).toMatch(/%$/);
    expect(await page.textContent('[data-metric=load] .value')).toMatch(/^\d+\.\d\d$/);
    expect(await page.locator('.strip canvas').count()).toBeGreaterThanOrEqual(5);
  });

  it('a hidden tab polls nothing; shown again, each poller catches up with one request', async () => {
    await go('/processes');
    await page.waitForSelector('[data-page=processes][data-ready=true]');
    await page.evaluate(() => performance.setResourceTimingBufferSize(100_000)); // not capped at 250
    const apiCalls = () => page.evaluate(() => performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/v1/')).length);
    const setHidden = (hidden: boolean) =>
      page.evaluate((h) => {
        Object.defineProperty(document, 'hidden', { value: h, configurable: true });
        Object.defineProperty(document, 'visibilityState', { value: h ? 'hidden' : 'visible', configurable: true });
        document.dispatchEvent(new Event('visibilitychange'));
      }, hidden);
    await setHidden(true);
    await sleep(1500); // a request in flight when hidden may still finish
    const n0 = await apiCalls();
    await sleep(3000);
    expect(await apiCalls()).toBe(n0);
    await setHidden(false);
    await until('polling again', async () => (await apiCalls()) > n0, 3000);
    await sleep(300);
    // the strip, the processes and the windows: one round, not three seconds' worth
    expect((await apiCalls()) - n0).toBeLessThanOrEqual(5);
  });

  it('with 2,000 extra idle processes the process page renders in < 1 s; its heap stays bounded', async () => {
    const before = (await apiGet(agent.socket, '/v1/processes?lifecycle=live&limit=1')).body.total as number;
    // forks without exec: the quickest way to 2,000 idle processes (one process group)
    const sh = start('perl', ['-e', 'for (1..2000) { if (!fork) { sleep 600; exit } } sleep 600'], { detached: true });
    await until('2,000 idle processes in the agent', async () => (await apiGet(agent.socket, `/v1/processes?pid=${sh.pid}&lifecycle=live&limit=1`)).body.total >= 2001, 60_000, 250);
    await sleep(1500); // swept: they have CPU and RSS figures
    const p2 = await ctx.newPage();
    p2.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    p2.on('console', (m) => {
      if (/Content.Security.Policy|Refused to/i.test(m.text())) problems.push(`csp: ${m.text()}`);
    });
    const figures = async () => JSON.stringify(await p2.evaluate(() => ({ ...(document.querySelector('[data-page=processes]') as HTMLElement).dataset })));
    try {
      // a cold load (a new renderer process, the bundle, then the data): reported
      const c0 = Date.now();
      await p2.goto(`${dash.base}/#/processes`);
      await p2.waitForSelector('[data-page=processes][data-ready=true]', { timeout: 10_000 });
      const cold = Date.now() - c0;
      // eslint-disable-next-line no-console
      console.log(`cold load of the processes page: ${cold} ms ${await figures()}`);
      // the page itself, as a user goes to it from another page of the app: < 1 s
      await p2.evaluate(() => (location.hash = '#/health'));
      await p2.waitForSelector('[data-page=health] #identity');
      const t0 = Date.now();
      await p2.evaluate(() => (location.hash = '#/processes'));
      await p2.waitForSelector('[data-page=processes][data-ready=true]', { timeout: 10_000 });
      const ms = Date.now() - t0;
      const rows = Number(await p2.getAttribute('[data-page=processes]', 'data-rows'));
      expect(rows).toBeGreaterThanOrEqual(2000);
      expect(rows).toBeGreaterThanOrEqual(before);
      // eslint-disable-next-line no-console
      console.log(`processes page with ${rows} rows: rendered ${ms} ms after navigating to it ${await figures()}`);
      // < 1 s on a quiet machine (bench/dashboard.mjs has the figures); this bound only catches
      // a page that stalls under a shared CI machine's load
      expect(ms).toBeLessThan(10_000);
      // sort and scroll stay quick with all of them
      await p2.click('.vth[data-key=pid]');
      expect(Number(await p2.getAttribute('[data-page=processes]', 'data-render-ms'))).toBeLessThan(2000);
      await p2.screenshot({ path: join(SHOTS, 'processes-2000.png') });

      // an hour sped up: polls every 100 ms instead of 1 s, heap measured after forced GCs
      await p2.evaluate(() => localStorage.setItem('patrol.pollMs', '100'));
      await p2.reload();
      await p2.waitForSelector('[data-page=processes][data-ready=true]');
      const cdp = await ctx.newCDPSession(p2);
      const heap = async () => {
        await cdp.send('HeapProfiler.collectGarbage');
        return (await cdp.send('Runtime.getHeapUsage')).usedSize;
      };
      await sleep(3000);
      const h0 = await heap();
      await sleep(12_000); // ~120 polls of 2,000+ processes
      const h1 = await heap();
      // eslint-disable-next-line no-console
      console.log(`heap after GC: ${(h0 / 1048576).toFixed(1)} MiB → ${(h1 / 1048576).toFixed(1)} MiB over ~120 polls`);
      expect(h1 - h0).toBeLessThan(4 << 20);
      await p2.evaluate(() => localStorage.removeItem('patrol.pollMs'));
    } finally {
      await p2.close();
      try {
        process.kill(-sh.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }, 180_000);

  it('no page threw, no Content-Security-Policy violation, no dialog, on any page visited', () => {
    expect(problems).toEqual([]);
    expect(dialogs).toEqual([]);
  });
});
