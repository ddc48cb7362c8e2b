import type { Argv } from 'yargs';
import { stateError } from '../../util/errors.js';
import { emit, fmt, table } from '../output.js';
import { common, warnIfInterrupted } from '../flags.js';
export function fairnessCommand(y: Argv): Argv {
  return y.command(
      'fairness <action>',
      'Fit the equalized-odds post-processors on the calibration split (done automatically after train and delete)',
      (y) =>
        common(y)
          .positional('action', { choices: ['fit', 'show'] as const, demandOption: true, describe: 'fit: fit the post-processors now; show: print the fitted ones' })
          .option('attribute', { type: 'string', describe: "Sensitive attribute (default 'any')" })
          .option('eo-tolerance', { type: 'number', describe: 'Allowed |ΔTPR| and |ΔFPR| between groups (default 0)' })
          .example('$0 fairness fit --workdir dv', 'Refit on the calibration split (after ingest --calibration 0.2 --group-terms builtin)')
          .example('$0 fairness show --json --workdir dv', 'The fitted tables as JSON'),
      async (a) => {
        const { fitFairness, isStale, loadFit } = await import('../../app/fairnessFit.js');
        const { loadState } = await import('../../state/manifest.js');
        const { workspace } = await import('../../state/workspace.js');
        const ws = workspace(a.workdir);
        if (a.action === 'show') await warnIfInterrupted(a.workdir);
        const fit = a.action === 'fit' ? await fitFairness({ workdir: a.workdir, attribute: a.attribute, tolerance: a['eo-tolerance'], wait: a.wait }) : await loadFit(ws);
        if (!fit) throw stateError("no fitted fairness post-processor; run 'sisa fairness fit'");
        const stale = isStale(fit, await loadState(ws));
        emit(a, { ...fit, stale }, () =>
          [
            `fairness post-processors for attribute '${fit.attribute}', tolerance ${fit.tolerance}, fitted ${fit.fittedAt} on ${fit.calibrationRows} calibration rows${stale ? ' (STALE: models changed since)' : ''}`,
            table(['method', 'expected calibration error'], fit.methods.map((m) => [m.method, fmt.num(m.lpError, 4)])),
            ...fit.methods.flatMap((m) => (m.notes ?? []).map((n) => `note: ${m.method}: ${n}`)),
          ].join('\n'),
        );
      },
  );
}
