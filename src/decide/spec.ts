/** Canonical decider specs: Knative's defaults, and kvpa's extensions on top of them. */
import type { DeciderExtensions, DeciderSpec } from './types.ts';

/** All extensions off: the core then reproduces Knative's KPA decision for decision. */
export const KNATIVE_EXTENSIONS: DeciderExtensions = {
  ratioEpsilon: 0,
  startupTimeoutSeconds: 0,
  restartHoldsRequested: false,
  holdOnMissingData: false,
  missingFallbackAfterSeconds: 0,
  fallbackMinReplicas: 0,
  horizonSeconds: 0,
  horizonMaxGrowth: 0,
  holdPeaks: false,
  slo: {},
};

export const KVPA_EXTENSIONS: DeciderExtensions = {
  ratioEpsilon: 1e-9,
  startupTimeoutSeconds: 1200,
  restartHoldsRequested: true,
  holdOnMissingData: true,
  missingFallbackAfterSeconds: 0,
  fallbackMinReplicas: 0,
  // A DeepSeek-R1 group's typical cold start (10 min, KServe and AIBrix samples); at most 1.5× today's demand.
  horizonSeconds: 600,
  horizonMaxGrowth: 0.5,
  holdPeaks: true,
  slo: {},
};

/** Knative's config-autoscaler defaults (knative/serving pkg/autoscaler/config/config.go), in groups. */
export const KNATIVE_DEFAULTS: DeciderSpec = {
  stableWindowSeconds: 60,
  panicThreshold: 2,
  maxScaleUpRate: 1000,
  maxScaleDownRate: 2,
  scaleDownDelaySeconds: 0,
  activationScale: 1,
  reachable: true,
  minReplicas: 0,
  maxReplicas: 0,
  tickSeconds: 2,
  extensions: KNATIVE_EXTENSIONS,
};
