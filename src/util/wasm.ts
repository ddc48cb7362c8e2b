/**
 * Loading sisa's own WebAssembly kernels (built by `npm run build` next to the modules that load them).
 * Node's WebAssembly global is typed here for what sisa uses: the project compiles against ES2023 without
 * the DOM library, which is where TypeScript declares it.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { errorMessage, SisaError } from './errors.js';

export interface WasmMemory {
  buffer: ArrayBuffer;
  grow(pages: number): number;
}

interface Wasm {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: unknown };
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
}

const wasm = (globalThis as unknown as { WebAssembly: Wasm }).WebAssembly;

export const WASM_PAGE = 65536;

/** This thread's compiled kernels, by file URL (each file is compiled once per thread, or handed over). */
const compiled = new Map<string, object>();

/** A compiled kernel; a missing or damaged file is an installation problem, said as such. */
export function compileKernel(url: URL, what: string): object {
  const known = compiled.get(url.href);
  if (known) return known;
  let module: object;
  try {
    module = new wasm.Module(readFileSync(url));
  } catch (err) {
    throw new SisaError('BACKEND', `sisa's ${what} kernel ${fileURLToPath(url)} is missing or damaged (${errorMessage(err)}); rebuild sisa: npm run build`, { cause: err });
  }
  compiled.set(url.href, module);
  return module;
}

/** Compiled kernels by file URL, as a worker thread receives them in its workerData. */
export type CompiledKernels = Record<string, object>;

/**
 * The kernels this thread has compiled, to hand to a worker thread (see adoptKernels). A WebAssembly.Module
 * posted to another thread shares its machine code: the worker neither reads nor compiles the files, and
 * runs from its first call the code the engine has optimised here since (a kernel starts on baseline code
 * and is optimised as it runs hot), not baseline code of its own. Measured in a one-call prediction of
 * Davidson's texts: a scoring worker's first batch of 256 rows came back 74 ms after it was started.
 */
export function compiledKernels(): CompiledKernels {
  return Object.fromEntries(compiled);
}

/** Takes the kernels a parent thread compiled (compiledKernels), before this thread compiles any. */
export function adoptKernels(kernels: CompiledKernels | undefined): void {
  for (const [href, module] of Object.entries(kernels ?? {})) if (!compiled.has(href)) compiled.set(href, module);
}

export function newMemory(pages: number): WasmMemory {
  return new wasm.Memory({ initial: pages });
}

/**
 * A memory that worker threads can share (its buffer is a SharedArrayBuffer, and the object can be posted to
 * a worker). A shared memory must declare its maximum, which the process reserves as address space.
 */
export function newSharedMemory(pages: number, maximum: number): WasmMemory {
  return new wasm.Memory({ initial: pages, maximum, shared: true });
}

export function instantiate<T>(module: object, imports: Record<string, Record<string, unknown>>): T {
  return new wasm.Instance(module, imports).exports as T;
}
