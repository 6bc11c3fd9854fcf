// `patrol dashboard`: the live web dashboard (web/), served on 127.0.0.1 as a client of the
// agent's local API. It prints a one-time URL; the browser that opens it gets a session cookie,
// every other request gets 401.
import type { Command } from 'commander';
import { ApiClient } from './client.js';
import { parseIntArg } from './parse.js';
import { DEFAULT_DASHBOARD_PORT, startDashboard } from './dashboard/server.js';
import { openBrowser } from './dashboard/open.js';

export interface DashboardOptions {
  port: number;
  open?: boolean;
  socket?: string;
}

export function registerDashboard(program: Command): void {
  program
    .command('dashboard')
    .description('serve the live web dashboard on 127.0.0.1 (prints a one-time URL)')
    .option('--port <port>', `port on 127.0.0.1 (0: any free port)`, parseIntArg('--port', 0, 65535), DEFAULT_DASHBOARD_PORT)
    .option('--open', 'start a browser on the URL (where one exists)')
    .option('--socket <path>', 'agent API socket (default: $PATROL_SOCKET, else /run/patrol/patrol.sock)')
    .action(async (opts: DashboardOptions) => {
      await runDashboard(opts);
    });
}

export async function runDashboard(opts: DashboardOptions, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<void> {
  const client = new ApiClient(opts.socket);
  // the agent must answer now: a clear line beats a dashboard full of errors
  const health = await client.get<{ version: string }>('/health');
  const d = await startDashboard({ socket: client.socket, port: opts.port });
  err.write(`patrol: dashboard for the agent at ${client.socket} (version ${health.version}) on http://127.0.0.1:${d.port}/\n`);
  err.write('patrol: open this URL once; it gives that browser a session cookie (Ctrl-C stops the dashboard):\n');
  out.write(`${d.url}\n`);
  if (opts.open) {
    const r = openBrowser(d.url);
    err.write(r.opened ? `patrol: started ${r.with}\n` : `patrol: --open: ${r.why}; open the URL above yourself (remotely: ssh -L ${d.port}:127.0.0.1:${d.port} this-host)\n`);
  }
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await d.close();
}
