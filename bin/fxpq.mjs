#!/usr/bin/env node
// The `fxpq` launcher: runs the TypeScript CLI through tsx, so `npx fxpq` works right
// after `npm install` with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
