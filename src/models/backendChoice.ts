/** Backend names, without loading TensorFlow.js (the CLI and the manifest need them at start-up). */
export const BACKEND_CHOICES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

export function isBackendChoice(s: string): s is BackendChoice {
  return (BACKEND_CHOICES as readonly string[]).includes(s);
}

/** Normalises a recorded backend name ('tensorflow-gpu') back to the choice that loads it. */
export function choiceFor(recorded: string): BackendChoice {
  return recorded.startsWith('tensorflow') ? 'tensorflow' : isBackendChoice(recorded) ? recorded : 'auto';
}
