import type { Argv } from 'yargs';
import { COMMAND_TEXT } from './text.js';
import { emit } from '../output.js';
import { list, common, warnIfInterrupted } from '../flags.js';
export function reportCommand(y: Argv): Argv {
  return y.command(
      COMMAND_TEXT.report.command,
      COMMAND_TEXT.report.describe,
      (y) =>
        common(y)
          .option('out', { type: 'string', describe: 'Output folder (default DIR/report)' })
          .option('attribute', { type: 'string', describe: "Sensitive attribute (default 'any')" })
          .option('eo-tolerance', { type: 'number', describe: 'Allowed |ΔTPR|, |ΔFPR| for the post-processors (default 0)' })
          .option('resplits', { type: 'number', default: 0, describe: 'Average over N seeded re-draws of the calibration/test partition' })
          .option('baseline', { type: 'boolean', default: false, describe: 'Also train and report a monolithic model on all training data' })
          .option('resamples', { type: 'number', default: 500, describe: 'Bootstrap resamples for the 95% intervals' })
          .option('eval', { type: 'string', describe: 'Also report on this labelled file (e.g. another data set)' })
          .option('eval-text-col', { type: 'string', describe: 'Text column of the --eval file' })
          .option('eval-label-col', { type: 'string', describe: 'Label column of the --eval file' })
          .option('eval-positive-values', { type: 'string', describe: 'Comma-separated label values of the --eval file that mean toxic' })
          .option('eval-label-threshold', { type: 'number', describe: 'Fractional labels of the --eval file: toxic when label >= threshold' })
          .example('$0 report --workdir dv', 'Write report.json, report.md and report.html in dv/report')
          .example('$0 report --baseline --resplits 5 --workdir dv', 'Add a monolithic model and average over 5 re-drawn splits'),
      async (a) => {
        await warnIfInterrupted(a.workdir);
        const { reportMarkdown, writeReport } = await import('../../app/report.js');
        const { report, files } = await writeReport({
          workdir: a.workdir,
          out: a.out,
          attribute: a.attribute,
          tolerance: a['eo-tolerance'],
          resplits: a.resplits,
          baseline: a.baseline,
          resamples: a.resamples,
          evalFile: a.eval,
          evalColumns: { textCol: a['eval-text-col'], labelCol: a['eval-label-col'], positiveValues: list(a['eval-positive-values']), labelThreshold: a['eval-label-threshold'] },
        });
        emit(a, { ...report, files }, () => reportMarkdown(report) + `\nwrote ${files.join(', ')}`);
      },
  );
}
