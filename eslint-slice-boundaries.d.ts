import type { Rule } from 'eslint';

declare const plugin: { rules: { 'slice-boundaries': Rule.RuleModule } };
export default plugin;
