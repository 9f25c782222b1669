import path from 'node:path';
import { RuleTester } from 'eslint';
import tseslint from 'typescript-eslint';
import layout from '../../../eslint-slice-boundaries';

const lambdas = (file: string) => path.join(__dirname, '../../../lambdas', file);
const tester = new RuleTester({ languageOptions: { parser: tseslint.parser, ecmaVersion: 2022, sourceType: 'module' } });

tester.run('slice-boundaries', layout.rules['slice-boundaries'], {
  valid: [
    { name: 'a slice imports platform internals', filename: lambdas('purchases/domain/a.ts'), code: "import { keys } from '../../platform/dynamodb-table';" },
    { name: 'a slice imports a store module', filename: lambdas('purchases/domain/a.ts'), code: "import type { AppleFacts } from '../../stores/apple/facts';" },
    { name: 'a slice imports another slice through its index', filename: lambdas('lifecycle/domain/a.ts'), code: "import { createRuntime } from '../../purchases';" },
    { name: 'a slice imports another slice index.ts by name', filename: lambdas('lifecycle/domain/a.ts'), code: "import { x } from '../../purchases/index';" },
    { name: 'a handler imports its own adapters', filename: lambdas('webhooks/handlers/a.ts'), code: "import { q } from '../adapters/sqs-delivery-queue';" },
    { name: 'stores import platform', filename: lambdas('stores/apple/adapters/a.ts'), code: "import { callAws } from '../../../platform/aws-errors';" },
    { name: 'events import stores', filename: lambdas('events/schemas.ts'), code: "import { s } from '../stores/store';" },
    { name: 'packages are not checked', filename: lambdas('platform/a.ts'), code: "import { z } from 'zod';" },
  ],
  invalid: [
    { name: 'deep import into another slice', filename: lambdas('lifecycle/domain/a.ts'), code: "import { f } from '../../purchases/domain/finalize-synchronization';", errors: 1 },
    { name: 'domain importing its adapters', filename: lambdas('purchases/domain/a.ts'), code: "import { r } from '../adapters/dynamodb-synchronization-repository';", errors: 1 },
    { name: 'platform importing the app', filename: lambdas('platform/a.ts'), code: "import type { Store } from '../events/vocabulary';", errors: 1 },
    { name: 'stores importing a slice', filename: lambdas('stores/google/a.ts'), code: "import { p } from '../../tenants';", errors: 1 },
    { name: 'events importing a slice', filename: lambdas('events/a.ts'), code: "import { p } from '../purchases';", errors: 1 },
    { name: 're-export from another slice internals', filename: lambdas('openapi/a.ts'), code: "export { AppleRegisterBody } from '../purchases/schemas';", errors: 1 },
  ],
});
