/**
 * Run-time choice of the TensorFlow.js backend. The native backends (@tensorflow/tfjs-node-gpu,
 * @tensorflow/tfjs-node) are optional peer installs, loaded dynamically when present and never
 * required; the WebAssembly backend ships with sisa and is the default here; plain JS is the fallback.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tfcore from '@tensorflow/tfjs-core';
import { SisaError } from '../util/errors.js';

import { BACKEND_CHOICES, isBackendChoice } from './backendChoice.js';

export type Tf = typeof tfcore;
export { BACKEND_CHOICES, choiceFor, isBackendChoice, type BackendChoice } from './backendChoice.js';

export interface LoadedBackend {
  tf: Tf;
  /** What was actually used: 'tensorflow-gpu', 'tensorflow', 'wasm' or 'cpu'. Recorded in the manifest. */
  name: string;
  /** What else decides the arithmetic (see Runtime.versions): tfjs's version, the wasm build. */
  versions: Record<string, string>;
}

/** tfjs's version and, for WebAssembly, the build's version and whether it runs with SIMD and threads. */
function versionsOf(tf: Tf, name: string): Record<string, string> {
  const versions: Record<string, string> = { tfjs: String((tf as unknown as { version_core?: string }).version_core ?? 'unknown') };
  if (name === 'wasm') {
    const require = createRequire(import.meta.url);
    const wasmVersion = (require('@tensorflow/tfjs-backend-wasm/package.json') as { version: string }).version;
    const flag = (f: string) => {
      try {
        return Boolean(tf.env().getBool(f));
      } catch {
        return false;
      }
    };
    versions.wasm = `${wasmVersion} ${flag('WASM_HAS_SIMD_SUPPORT') ? 'simd' : 'nosimd'} ${flag('WASM_HAS_MULTITHREAD_SUPPORT') ? 'threads' : 'nothreads'}`;
  }
  return versions;
}

async function importOptional(name: string): Promise<Tf | null> {
  try {
    return (await import(name)) as Tf;
  } catch {
    return null;
  }
}

async function loadNative(): Promise<LoadedBackend | null> {
  for (const [pkg, name] of [
    ['@tensorflow/tfjs-node-gpu', 'tensorflow-gpu'],
    ['@tensorflow/tfjs-node', 'tensorflow'],
  ] as const) {
    const tf = await importOptional(pkg);
    if (tf && (await tf.setBackend('tensorflow'))) {
      await tf.ready();
      return { tf, name, versions: versionsOf(tf, name) };
    }
  }
  return null;
}

async function loadWasm(): Promise<LoadedBackend | null> {
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const require = createRequire(import.meta.url);
    const dist = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;
    wasm.setWasmPaths(dist);
    if (!(await tfcore.setBackend('wasm'))) return null;
    await tfcore.ready();
    return { tf: tfcore, name: 'wasm', versions: versionsOf(tfcore, 'wasm') };
  } catch {
    return null;
  }
}

async function loadCpu(): Promise<LoadedBackend> {
  await import('@tensorflow/tfjs-backend-cpu');
  await tfcore.setBackend('cpu');
  await tfcore.ready();
  return { tf: tfcore, name: 'cpu', versions: versionsOf(tfcore, 'cpu') };
}

export async function loadBackend(choice: string): Promise<LoadedBackend> {
  if (!isBackendChoice(choice)) throw new SisaError('USAGE', `--backend must be one of ${BACKEND_CHOICES.join(', ')}, got '${choice}'`);
  // tfjs prints advice and warnings on the console; sisa's stdout is for its own output.
  tfcore.env().set('PROD', true);
  let loaded: LoadedBackend | null = null;
  switch (choice) {
    case 'tensorflow':
      loaded = await loadNative();
      if (!loaded)
        throw new SisaError('BACKEND', "--backend tensorflow needs '@tensorflow/tfjs-node-gpu' or '@tensorflow/tfjs-node' installed (npm install @tensorflow/tfjs-node)");
      break;
    case 'wasm':
      loaded = await loadWasm();
      if (!loaded) throw new SisaError('BACKEND', '--backend wasm: the WebAssembly backend failed to initialise');
      break;
    case 'cpu':
      loaded = await loadCpu();
      break;
    case 'auto':
    case 'fused': // the fused kernel needs no tfjs; a caller that does need it (the hidden layer) gets auto's
      loaded = (await loadNative()) ?? (await loadWasm()) ?? (await loadCpu());
      break;
  }
  loaded.tf.env().set('PROD', true);
  return loaded;
}
