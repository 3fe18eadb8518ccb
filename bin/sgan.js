#!/usr/bin/env node
// The `sgan` command. Runs the TypeScript sources through tsx so the CLI never lags behind lib/;
// dist/ (built by `npm run build` / `prepare`) is for notebooks, which import compiled code.
'use strict';
require('tsx/cjs');
require('../cli/main.ts').main(process.argv.slice(2));
