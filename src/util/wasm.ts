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

/** A compiled kernel; a missing or damaged file is an installation problem, said as such. */
export function compileKernel(url: URL, what: string): object {
  try {
    return new wasm.Module(readFileSync(url));
  } catch (err) {
    throw new SisaError('BACKEND', `sisa's ${what} kernel ${fileURLToPath(url)} is missing or damaged (${errorMessage(err)}); rebuild sisa: npm run build`, { cause: err });
  }
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
