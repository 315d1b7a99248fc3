#!/usr/bin/env node
// Runs the compiled CLI in dist/ (`npm install` and `npm pack` build it through the `prepare` script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write(`kvpa: ${fileURLToPath(entry)} is missing; build it with \`npm run build\`\n`);
  process.exit(1);
}
// `kvpa decide … | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
