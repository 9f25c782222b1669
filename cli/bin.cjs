#!/usr/bin/env node
'use strict';
// `npx iap-sync …`: run the TypeScript command line through tsx, without a build step.
require('tsx/cjs');
require('./main.ts').main();
