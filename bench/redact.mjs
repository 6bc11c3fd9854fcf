// argv redaction cost per exec (issue 17): the defaults plus one user pattern, over typical
// command lines that match nothing (the common case) and one that matches.
//   node bench/redact.mjs [iterations]
import { Redactor } from '../dist/export/redact.js';

const n = Number(process.argv[2] ?? 200_000);
const r = Redactor.fromConfig({ redact: ['(?i)(--password[= ])\\S+'], redactDefaults: true });
const cases = {
  '1 arg': ['/bin/true'],
  '6 args': ['/usr/bin/python3', '-m', 'http.server', '--bind', '127.0.0.1', '8080'],
  '20 args, 600 B': Array.from({ length: 20 }, (_, i) => `--option-${i}=value-${'x'.repeat(20)}`),
  'match': ['mysql', '--password=hunter2', '-u', 'root'],
};
for (const [name, argv] of Object.entries(cases)) {
  const args = argv.map((text) => ({ text }));
  for (let i = 0; i < 20_000; i++) r.argv(args); // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) r.argv(args);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  console.log(`${name.padEnd(16)} ${(ns / 1000).toFixed(2)} µs/exec`);
}
