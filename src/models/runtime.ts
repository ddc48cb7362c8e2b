/**
 * The runtime a model was trained on. Retraining from a checkpoint reproduces a full retrain weight for
 * weight only on the same runtime: another backend, another TensorFlow.js release or another WebAssembly
 * build (SIMD, threads) may round differently, so the "exact" in exact unlearning holds per runtime. The
 * runtime is recorded with every model (manifest) and checkpoint, and compared in one place.
 *
 * Node's own version is not part of it: the fused kernel and tfjs's cpu/wasm kernels do IEEE-754 float32
 * arithmetic in a fixed order (Math.fround, typed arrays, wasm f32 ops), which V8 does not reorder.
 */
export interface Runtime {
  /** Backend name as the loaded backend reports it ('fused-linear-v1', 'wasm', 'cpu', 'tensorflow', 'tensorflow-gpu'). */
  backend: string;
  /**
   * What else decides the arithmetic, as name → version: `tfjs` (tfjs-core's version) for every tfjs
   * backend, and for WebAssembly `wasm` as '<version> simd|nosimd threads|nothreads'. Empty for the
   * fused kernel, whose version is in its backend name. Absent in manifests written before it existed.
   */
  versions?: Record<string, string>;
}

/** The runtime of a loaded backend (or of a recorded backend name, without versions). */
export function runtimeOf(backend: { name: string; versions?: Record<string, string> } | string): Runtime {
  if (typeof backend === 'string') return { backend };
  return backend.versions ? { backend: backend.name, versions: { ...backend.versions } } : { backend: backend.name };
}

/**
 * Same backend, and the same version of everything both sides recorded. A side that recorded no versions
 * (an old manifest, or a coordinator that has not loaded tfjs) compares by backend only.
 */
export function sameRuntime(a: Runtime, b: Runtime): boolean {
  if (a.backend !== b.backend) return false;
  if (!a.versions || !b.versions) return true;
  const keys = new Set([...Object.keys(a.versions), ...Object.keys(b.versions)]);
  return [...keys].every((k) => a.versions![k] === b.versions![k]);
}

/** For error messages: `'wasm' (tfjs 4.22.0, wasm 4.22.0 simd nothreads)`. */
export function describeRuntime(r: Runtime): string {
  const v = Object.entries(r.versions ?? {});
  return `'${r.backend}'${v.length ? ` (${v.map(([k, x]) => `${k} ${x}`).join(', ')})` : ''}`;
}
