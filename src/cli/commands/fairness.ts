import type { Argv } from 'yargs';
import { COMMAND_TEXT } from './text.js';
import { stateError, usageError } from '../../util/errors.js';
import { FAIR_CONSTRAINTS, FAIR_OBJECTIVES, type FairConstraint, type FairObjective } from '../../fairness/lp.js';
import { FAIR_DECISIONS, type FairDecision } from '../../fairness/postprocess.js';
import { emit, fmt, table } from '../output.js';
import { common, warnIfInterrupted } from '../flags.js';
export function fairnessCommand(y: Argv): Argv {
  return y.command(
      COMMAND_TEXT.fairness.command,
      COMMAND_TEXT.fairness.describe,
      (y) =>
        common(y)
          .positional('action', { choices: ['fit', 'show'] as const, demandOption: true, describe: 'fit: fit the post-processors now; show: print the fitted ones' })
          .option('attribute', { type: 'string', describe: "Sensitive attribute (default 'any')" })
          .option('constraint', { choices: FAIR_CONSTRAINTS, describe: 'Rates held equal between groups: TPR and FPR, TPR, FPR, or selection rate (default equalized-odds)' })
          .option('eo-tolerance', { type: 'string', describe: "Allowed max - min of each constrained rate between groups (default 0), or 'auto': the smallest ε of 0, 0.02, 0.05, 0.1 whose out-of-fold violation is within its bootstrap noise" })
          .option('cv', { type: 'number', describe: 'Cross-fit on the calibration split with K folds: out-of-fold accuracy and constraint gap per method and ε (0, 0.02, 0.05, 0.1)' })
          .option('objective', { choices: FAIR_OBJECTIVES, describe: 'What the fit minimises: errors, (FPR + FNR) / 2, or cost with --fn-cost and --fp-cost (default accuracy)' })
          .option('fn-cost', { type: 'number', describe: 'With --objective cost: the cost of a missed toxic comment (> 0)' })
          .option('fp-cost', { type: 'number', describe: 'With --objective cost: the cost of a wrongly flagged clean comment (> 0)' })
          .option('decision', { choices: FAIR_DECISIONS, describe: 'randomized: the exact LP optimum, drawn per record id; threshold: one vote-count threshold per group, no randomness (default randomized)' })
          .option('min-group', { type: 'number', describe: 'Groups with fewer calibration positives or negatives than this are not constrained (default 30)' })
          .example('$0 fairness fit --workdir dv', 'Refit on the calibration split (after ingest --calibration 0.2 --group-terms builtin)')
          .example('$0 fairness fit --constraint fpr-parity --objective cost --fn-cost 5 --fp-cost 1 --workdir dv', 'Equal false-flag rates, a missed toxic comment costing 5 wrongly hidden ones')
          .example('$0 fairness show --json --workdir dv', 'The fitted tables as JSON')
          .epilogue("A choice not given keeps the stored fit's (printed by 'sisa fairness show'), as the refit after train and delete does; the defaults above are a first fit's."),
      async (a) => {
        const { fitFairness, isStale, loadFit } = await import('../../app/fairnessFit.js');
        const tol = a['eo-tolerance'];
        const auto = tol === 'auto';
        if (tol !== undefined && !auto && !/^\s*[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?\s*$/i.test(tol)) throw usageError(`--eo-tolerance must be a number in [0, 1] or 'auto', got '${tol}'`);
        const { loadState } = await import('../../state/manifest.js');
        const { workspace } = await import('../../state/workspace.js');
        const ws = workspace(a.workdir);
        if (a.action === 'show') await warnIfInterrupted(a.workdir);
        const fit =
          a.action === 'fit'
            ? await fitFairness({
                workdir: a.workdir,
                attribute: a.attribute,
                tolerance: tol === undefined || auto ? undefined : Number(tol),
                autoTolerance: auto || undefined,
                cv: a.cv,
                constraint: a.constraint as FairConstraint | undefined,
                objective: a.objective as FairObjective | undefined,
                fnCost: a['fn-cost'],
                fpCost: a['fp-cost'],
                minGroup: a['min-group'],
                decision: a.decision as FairDecision | undefined,
                wait: a.wait,
              })
            : await loadFit(ws);
        if (!fit) throw stateError("no fitted fairness post-processor; run 'sisa fairness fit'");
        const stale = isStale(fit, await loadState(ws));
        const objective = fit.objective === 'cost' ? `cost (missed toxic ${fit.fnCost}, false flag ${fit.fpCost})` : fit.objective;
        const groups = fit.groups ?? [];
        emit(a, { ...fit, stale }, () =>
          [
            `fairness post-processors for attribute '${fit.attribute}': ${fit.constraint} within ${fit.tolerance}, minimising ${objective}, ${fit.decision} decisions; fitted ${fit.fittedAt} on ${fit.calibrationRows} calibration rows${stale ? ' (STALE: models changed since)' : ''}`,
            ...(groups.length
              ? [table(['group', 'positives', 'negatives', 'constrained'], groups.map((g) => [g.name, String(g.positives), String(g.negatives), g.constrained ? 'yes' : 'no']))]
              : ['calibration group counts: not recorded (fitted by an older sisa)']),
            ...groups.filter((g) => !g.constrained).map((g) => `warning: group '${g.name}' is not constrained: ${g.reason}; its decisions are fitted for the objective only`),
            table(['method', 'expected calibration error', `${fit.constraint} gap on calibration`], fit.methods.map((m) => [m.method, fmt.num(m.lpError, 4), m.calibrationGap === undefined ? '-' : fmt.num(m.calibrationGap, 4)])),
            ...cvLines(fit),
            ...thresholdLines(fit),
            ...fit.methods.flatMap((m) => (m.notes ?? []).map((n) => `note: ${m.method}: ${n}`)),
          ].join('\n'),
        );
      },
  );
}

/** For threshold fits, what each group's votes threshold is, in words a moderator reads. */
function thresholdLines(fit: { decision: string; methods: { method: string; tables: number[][][] }[]; groups?: { name: string }[] }): string[] {
  if (fit.decision !== 'threshold') return [];
  const votes = fit.methods.find((m) => m.method === 'votes')?.tables[0];
  if (!votes) return [];
  return votes.map((row, g) => {
    const t = row.indexOf(1);
    const name = fit.groups?.[g]?.name ?? `group ${g}`;
    return `votes threshold for '${name}': ${t < 0 ? 'never flag' : t === 0 ? 'always flag' : `flag at ${t} or more of ${row.length - 1} votes`}`;
  });
}

/** The cross-fit table: out-of-fold accuracy and gap per method and ε, and which ε auto chose. */
function cvLines(fit: { constraint: string; cv?: { folds: number; rows: { method: string; tolerance: number; accuracy: number; gap: number; violation: number; noise: number }[]; chosenTolerance?: number } }): string[] {
  if (!fit.cv) return [];
  return [
    `cross-fitted on the calibration split, ${fit.cv.folds} folds (out-of-fold decisions; noise = bootstrap standard deviation of the gap):`,
    table(['method', 'ε', 'accuracy', `${fit.constraint} gap`, 'violation', 'noise'], fit.cv.rows.map((r) => [r.method, String(r.tolerance), fmt.num(r.accuracy, 4), fmt.num(r.gap, 4), fmt.num(r.violation, 4), fmt.num(r.noise, 4)])),
    ...(fit.cv.chosenTolerance !== undefined ? [`--eo-tolerance auto chose ε = ${fit.cv.chosenTolerance}: the smallest at which votes' out-of-fold violation is within its noise`] : []),
  ];
}
