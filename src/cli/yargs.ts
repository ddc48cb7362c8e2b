/**
 * yargs, loaded so that help text never breaks a word.
 *
 * yargs's ESM build lays help out with a stand-in for wrap-ansi that cuts lines at the column width
 * regardless of words ('every s' / 'lice'); its CommonJS build wraps at word boundaries. Same package,
 * same API: only the help layout differs, so the CLI loads the CommonJS build.
 *
 * One more layout flaw remains in cliui (the layout library of both builds): an option's tags
 * ('[number] [default: 8]') are right-aligned onto the description's last line when they fit, and when
 * they fit exactly no space is left between them ('shards S[number]'). The patch below asks for a gap of
 * two spaces and otherwise puts the tags on their own line, as cliui already does when they do not fit.
 */
import { createRequire } from 'node:module';

type YargsFactory = typeof import('yargs').default;

interface InlineLine {
  text: string;
  span?: boolean;
  hidden?: boolean;
}
interface CliuiInstance {
  wrap?: boolean;
  renderInline(source: string, previousLine: InlineLine): string;
}

const require = createRequire(import.meta.url);
// Resolve cliui from yargs's own location, so that the patched module is the one yargs uses.
const fromYargs = createRequire(require.resolve('yargs'));
const proto = Object.getPrototypeOf((fromYargs('cliui') as (o?: object) => CliuiInstance)({})) as CliuiInstance;
const renderInline = proto.renderInline;
const GAP = 2;
proto.renderInline = function (this: CliuiInstance, source: string, previousLine: InlineLine): string {
  const leading = /^ */.exec(source)![0].length;
  if (previousLine.span && this.wrap && leading < [...previousLine.text.trimEnd()].length + GAP) return source;
  return renderInline.call(this, source, previousLine);
};

export const yargs = require('yargs') as YargsFactory;
