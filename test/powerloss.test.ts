/**
 * The crash-point suite again, with each kill turned into a power loss (issue 9 item 5): what sisa had
 * not made durable when it died is forgotten before recover runs, so deleted data must not come back
 * and committed work must not be lost, whichever fsync a change forgets.
 */
import { crashSafetySuite } from './crash-suite.js';

crashSafetySuite({ powerLoss: true });
