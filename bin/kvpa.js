#!/usr/bin/env node
// Runs the TypeScript sources through tsx's loader, so `kvpa` needs no build step.
import { register } from 'tsx/esm/api';

register();
// `kvpa decide … | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
