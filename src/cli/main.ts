// patrol CLI entry. Every failure ends in one clear line on stderr (stack only with PATROL_DEBUG=1).
import { Command, CommanderError } from 'commander';
import { PatrolError } from '../shared/errors.js';
import { registerTrace } from './trace.js';
import { registerStatus } from './status.js';
import { registerPs } from './ps.js';
import { registerEvents } from './events.js';
import { registerZombies } from './zombies.js';
import { registerTop } from './top.js';
import { registerAgent } from './agent.js';
import { registerRules } from './rules.js';
import { registerExplain } from './explain.js';
import { registerCheck } from './check.js';
import { registerRecord } from './record.js';
import { registerResults } from './results.js';
import { registerReload } from './reload.js';
import { registerDashboard } from './dashboard.js';
import { registerCompletion } from './completion.js';
import { registerFleet } from './fleet.js';
import { VERSION } from '../shared/version.js';

// `patrol results | head`: the reader went away; that ends the command, quietly, like any Unix
// tool (not an unhandled 'error' with a stack trace).
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const program = new Command();
program
  .name('patrol')
  .description('automated inspection and millisecond process monitoring for Linux nodes (eBPF)')
  .version(VERSION)
  .showHelpAfterError('(run patrol --help for usage)')
  .exitOverride();
registerAgent(program);
registerTrace(program);
registerStatus(program);
registerPs(program);
registerEvents(program);
registerZombies(program);
registerRules(program);
registerExplain(program);
registerCheck(program);
registerRecord(program);
registerResults(program);
registerReload(program);
registerTop(program);
registerDashboard(program);
registerCompletion(program);
registerFleet(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode);
  const msg = e instanceof PatrolError ? e.message : (e as Error)?.message ?? String(e);
  process.stderr.write(`patrol: ${msg}\n`);
  if (process.env.PATROL_DEBUG === '1' && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  process.exit(e instanceof PatrolError && e.code === 'E_USAGE' ? 2 : 1);
}
