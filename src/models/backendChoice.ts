/** Backend names, without loading TensorFlow.js (the CLI and the manifest need them at start-up). */
export const BACKEND_CHOICES = ['auto', 'fused', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

export function isBackendChoice(s: string): s is BackendChoice {
  return (BACKEND_CHOICES as readonly string[]).includes(s);
}

/** Normalises a recorded backend name ('tensorflow-gpu', 'fused-linear-v1') back to the choice that loads it. */
export function choiceFor(recorded: string): BackendChoice {
  if (recorded.startsWith('fused')) return 'fused';
  return recorded.startsWith('tensorflow') ? 'tensorflow' : isBackendChoice(recorded) ? recorded : 'auto';
}

/**
 * Whether a job runs on the fused typed-array kernel rather than TensorFlow.js: the linear model
 * (hidden 0) under `auto` or `fused`. The hidden-layer model and an explicit tfjs backend use tfjs.
 */
export function usesFusedKernel(choice: string, hidden: number): boolean {
  return hidden === 0 && (choice === 'auto' || choice === 'fused');
}
