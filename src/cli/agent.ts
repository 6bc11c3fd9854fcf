// `patrol agent`: run the daemon in the foreground.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { DeepPartial, AgentConfig } from '../app/config.js';

interface AgentOptions {
  config?: string;
  printConfig?: boolean;
  socket?: string;
  db?: string;
  logLevel?: string;
  logFormat?: string;
  checks?: string;
}

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('run the agent: sensors, process table and states, store, and the local API (foreground)')
    .option('--config <file>', 'configuration file, YAML or JSON (default /etc/patrol/patrol.yaml if present)')
    .option('--print-config', 'print the effective configuration and exit')
    .option('--socket <path>', 'API unix socket (overrides api.socket)')
    .option('--db <path>', 'store file (overrides store.path)')
    .option('--log-level <level>', 'trace, debug, info, warn or error (overrides log.level)')
    .option('--log-format <format>', 'auto, json or pretty (overrides log.format)')
    .option('--checks <dir>', 'run the inspection checks in this directory (overrides checks.dir)')
    .action(async (opts: AgentOptions) => {
      const overrides: DeepPartial<AgentConfig> = {
        api: { socket: opts.socket ? resolve(opts.socket) : undefined },
        store: { path: opts.db ? resolve(opts.db) : undefined },
        ...(opts.checks ? { checks: { dir: resolve(opts.checks) } } : {}),
        log: { level: opts.logLevel as AgentConfig['log']['level'] | undefined, format: opts.logFormat as AgentConfig['log']['format'] | undefined },
      };
      const loadOpts = { ...(opts.config ? { path: resolve(opts.config) } : {}), overrides, overridesSource: 'flags' };
      // Loaded on demand: the other commands need neither the store nor the API server.
      const { configToYaml, loadConfig } = await import('../app/config.js');
      const { startAgent } = await import('../app/agent.js');
      if (opts.printConfig) {
        process.stdout.write(configToYaml(loadConfig(loadOpts)));
        return;
      }
      const agent = await startAgent(loadOpts);
      process.exitCode = await agent.done;
    });
}
