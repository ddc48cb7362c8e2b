import type { Argv } from 'yargs';
import { COMMAND_TEXT } from './text.js';
import { emit, note } from '../output.js';
import { interruptOperations } from '../../state/lock.js';
export function serveCommand(y: Argv): Argv {
  return y.command(
    COMMAND_TEXT.serve.command,
    COMMAND_TEXT.serve.describe,
    (y) =>
      y
        .option('workdir', { type: 'string', default: '.', describe: 'Workspace folder to serve (trained)' })
        .option('host', { type: 'string', default: '127.0.0.1', describe: 'Interface to listen on (default: this machine only)' })
        .option('port', { type: 'number', default: 0, describe: 'TCP port (default 0: any free port, printed at start)' })
        .option('json', { type: 'boolean', default: false, describe: 'Print {"url", "workdir"} as one JSON line when listening' })
        .option('quiet', { type: 'boolean', default: false, describe: 'No log line per request on stderr' })
        .example('$0 serve --workdir dv --port 7457', 'Serve deletions for dv at http://127.0.0.1:7457')
        .example('$0 serve --workdir dv --json', 'Any free port; prints {"url", "workdir"} for a script, which then POSTs {"ids": [...]} to URL/delete or {"texts": [...]} to URL/predict'),
    async (a) => {
      const { serve } = await import('../../app/serve.js');
      const service = await serve({ workdir: a.workdir, host: a.host, port: a.port, onRequest: (line) => note(a, `[${new Date().toISOString()}] ${line}`) });
      // The first line on stdout is where to send requests; scripts read it (with --port 0, it is the only way to know).
      if (a.json) process.stdout.write(JSON.stringify({ url: service.url, workdir: service.workdir }) + '\n');
      else emit(a, null, () => `${service.url} serving deletions and predictions for ${service.workdir} (POST /delete, POST /predict, GET /health; Ctrl-C stops)`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      // A second signal rolls the deletion in progress back at its next check before the commit (as
      // Ctrl-C does to sisa delete; its request is kept pending and applied by the next deletion); a third
      // ends the process at once, leaving it to 'sisa recover' as after any kill.
      let signals = 1;
      const again = () => {
        if (++signals === 2) {
          note(a, 'stopping now: rolling back the deletion in progress (a third signal kills the process)');
          interruptOperations();
        } else process.exit(130);
      };
      process.on('SIGINT', again);
      process.on('SIGTERM', again);
      note(a, 'stopping: finishing the request in progress, refusing new ones');
      await service.close();
    },
  );
}
