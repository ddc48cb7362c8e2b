/**
 * The runtime a model was trained on. Retraining from a checkpoint reproduces a full retrain weight for
 * weight only on the same runtime: another backend (or another kernel build) rounds differently, so the
 * "exact" in exact unlearning holds per runtime. Kept as one small type so that further parts (library
 * version, kernel id and version) can be added in one place and are compared everywhere at once.
 */
export interface Runtime {
  /** Backend name as the loaded backend reports it ('wasm', 'cpu', 'tensorflow', 'tensorflow-gpu'). */
  backend: string;
}

/** The runtime of a loaded backend (or of a recorded backend name). */
export function runtimeOf(backend: { name: string } | string): Runtime {
  return { backend: typeof backend === 'string' ? backend : backend.name };
}

export function sameRuntime(a: Runtime, b: Runtime): boolean {
  return a.backend === b.backend;
}

/** For error messages: `'wasm'`. */
export function describeRuntime(r: Runtime): string {
  return `'${r.backend}'`;
}
