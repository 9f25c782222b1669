import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { verdictOf, type ScenarioResult } from './scenario';

export interface ResilienceReport {
  startedAt: string;
  durationSeconds: number;
  quick: boolean;
  /** The Step Functions workflow type every scenario ran (`--workflow-type`). */
  workflowType: 'STANDARD' | 'EXPRESS';
  machine: Record<string, unknown>;
  scenarios: (ScenarioResult & { verdict: 'PASS' | 'FAIL' })[];
  verdict: 'PASS' | 'FAIL';
}

/** A plain text table: right-aligned numbers, left-aligned text. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.every((r) => typeof r[i] === 'number' || /^[\d,.]+$|^-$/.test(String(r[i]))));
  const line = (r: string[]) => r.map((c, i) => (numeric[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(cells[0] ?? []), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

function formatScenario(s: ScenarioResult & { verdict: string }): string {
  const lines = [`## ${s.name} — ${s.title}  [${s.verdict}, ${s.durationSeconds} s]`];
  if (s.error) lines.push(`  runner error: ${s.error}`);
  const r = s.reconciliation;
  if (r) {
    lines.push(
      `  accepted ${r.accepted}, finalized ${r.finalized}, published ${r.published}, delivered ${r.delivered ?? 'n/a'}; ` +
        `lost ${r.lost}, duplicated ${r.duplicated}, stuck ${r.stuck}, unexpected results ${r.unexpectedResults}` +
        (r.redeliveries ? `, same-id redeliveries ${r.redeliveries}` : '') +
        (r.unaccountedEvents ? `, events of unaccepted ids ${r.unaccountedEvents}` : ''),
    );
    for (const f of r.findings.slice(0, 8)) lines.push(`  finding: ${JSON.stringify(f)}`);
  }
  if (s.name.startsWith('lifecycle') && !s.error) lines.push(...formatLifecycle(s.details));
  for (const c of s.checks) lines.push(`  [${c.pass ? 'ok' : 'FAIL'}] ${c.name}: ${c.detail}`);
  for (const [k, v] of Object.entries(s.details)) {
    const text = JSON.stringify(v);
    lines.push(`  ${k}: ${text.length > 600 ? `${text.slice(0, 600)}…` : text}`);
  }
  return lines.join('\n');
}

/** A lifecycle scenario's headline, for the store it ran: what was done to the notifications, and what drifted. */
export function formatLifecycle(d: Record<string, unknown>): string[] {
  const n = (source: Record<string, unknown>, key: string) => (typeof source[key] === 'number' ? String(source[key]) : '?');
  const lines = [`  seed ${n(d, 'seed')}; wall time ${n(d, 'wallSeconds')} s`];
  for (const store of ['apple', 'google']) {
    const h = d[store];
    if (h === null || typeof h !== 'object') continue;
    const f = h as Record<string, unknown>;
    const cost = (f.costPerMillionNotificationsUsd ?? {}) as { standard?: number; express?: number };
    const google = f.googleDrift as { awaitingRecheck: number; unknown: number; unexplained: number } | undefined;
    lines.push(
      `  ${store}: actions ${JSON.stringify(f.actions ?? {})}`,
      `    one reconciliation: ${JSON.stringify(f.reconciliationReport ?? {})}, corrected ${n(f, 'reconciliationCorrected')} in ${n(f, 'reconciliationSeconds')} s`,
      `    notifications: dropped ${n(f, 'dropped')}, duplicates resent ${n(f, 'duplicatesResent')}, out of order resent ${n(f, 'outOfOrderResent')} (${n(f, 'outOfOrderLateFirstDeliveries')} of them dropped before)`,
      `    drift ${n(f, 'drift')} (before the reconciliation ${n(f, 'driftBeforeReconciliation')})` +
        (google ? `: ${google.unexplained} unexplained, ${google.awaitingRecheck} awaiting the period-end re-check, ${google.unknown} plan-change tokens unknown to the service` : '') +
        `; duplicate events ${n(f, 'duplicateEvents')}, lost ${n(f, 'lost')} of ${n(f, 'noticesAccepted')} accepted notifications`,
      `    cost: $${cost.standard ?? '?'} per million notifications on STANDARD, $${cost.express ?? '?'} on EXPRESS`,
    );
  }
  return lines;
}

export function formatReport(report: ResilienceReport): string {
  const parts = report.scenarios.map(formatScenario);
  parts.push(
    table(
      ['scenario', 'requests', 'accepted', 'lost', 'duplicated', 'stuck', 'unexpected', 'checks', 'verdict'],
      report.scenarios.map((s) => [
        s.name,
        s.requests,
        s.accepted,
        s.reconciliation ? s.reconciliation.lost : '-',
        s.reconciliation ? s.reconciliation.duplicated : '-',
        s.reconciliation ? s.reconciliation.stuck : '-',
        s.reconciliation ? s.reconciliation.unexpectedResults : '-',
        `${s.checks.filter((c) => c.pass).length}/${s.checks.length}`,
        s.verdict,
      ]),
    ),
  );
  parts.push(`overall: ${report.verdict} (${report.durationSeconds} s, workflow type ${report.workflowType})`);
  return parts.join('\n\n');
}

export function buildReport(base: Omit<ResilienceReport, 'scenarios' | 'verdict'>, results: ScenarioResult[]): ResilienceReport {
  const scenarios = results.map((r) => ({ ...r, verdict: verdictOf(r) }));
  return { ...base, scenarios, verdict: scenarios.every((s) => s.verdict === 'PASS') ? 'PASS' : 'FAIL' };
}

/** `resilience-latest.json` and `resilience-<date>.json`, written through a rename (as bench/report.ts does). */
export function saveReport(report: ResilienceReport, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const json = `${JSON.stringify(report, null, 2)}\n`;
  // EXPRESS (the default) keeps the files' historical names; STANDARD's results are saved beside them.
  const suffix = report.workflowType === 'EXPRESS' ? '' : `-${report.workflowType.toLowerCase()}`;
  const files = [join(dir, `resilience${suffix}-latest.json`), join(dir, `resilience${suffix}-${report.startedAt.slice(0, 10)}.json`)];
  for (const file of files) {
    writeFileSync(`${file}.tmp`, json);
    renameSync(`${file}.tmp`, file);
  }
  return files;
}
