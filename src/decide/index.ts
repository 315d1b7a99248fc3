/**
 * The decision core: pure KPA math over replica groups. Observations and the time come in as
 * arguments; the next state and an explained decision come out. No I/O, no clock.
 */
export * from './delay-window.ts';
export * from './kpa.ts';
export * from './signal-windows.ts';
export * from './spec.ts';
export * from './types.ts';
export * from './window.ts';
