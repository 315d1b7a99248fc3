/**
 * Built-in values for behaviour fields that neither the preset nor the PodAutoscaler sets. They are
 * Knative's config-autoscaler defaults (knative/serving pkg/autoscaler/config/config.go) where Knative has the
 * knob, and kvpa's own where it does not. Metrics have no built-in default: a pool must get them
 * from its preset or set them itself.
 */
export const DEFAULT_PRESET = 'default';

export const BUILTIN_BEHAVIOR = {
  stableWindowSeconds: 60,
  panicWindowPercentage: 10,
  panicThresholdPercentage: 200,
  maxScaleUpRate: 1000,
  maxScaleDownRate: 2,
  scaleDownDelaySeconds: 0,
  activationScale: 1,
  aggregation: 'linear',
  tickSeconds: 2,
  // About the typical cold start of a multi-node DeepSeek-R1 group (≈10 min typical, 30–60 slow; AIBrix's
  // samples/deepseek-r1 README says up to 20 min, KServe's dp-ep DeepSeek-R1 sample allows 80).
  startupTimeoutSeconds: 1200,
  // 25 % above demand: a group's capacity is measured or calibrated at the SLO, and bursts need room.
  headroomPercentage: 25,
  // The typical cold start (as above): plan for the demand expected when a group asked for now serves.
  horizonSeconds: 600,
  horizonMaxGrowthPercentage: 50,
  // The same hour one day and one week earlier: serving load follows the day and the week.
  seasonalLookbackSeconds: [86_400, 604_800],
  // A drain ends when the victims' requests finish; the timeout only bounds a stuck one. Long enough for a
  // 16K-token reasoning answer at an 80 ms TPOT (about 22 min), so nothing normal is cut.
  drainTimeoutSeconds: 1800,
  // A 16-GPU group that cannot be placed holds nothing and serves nothing: ask for what fits.
  capacityCheck: 'Enforce',
  missingData: {
    // Four 15 s Prometheus scrapes: one late scrape is not an outage.
    staleAfterSeconds: 60,
    // Half the ready groups must report, so one dead head pod cannot freeze the pool (aibrix#617).
    minQuorumPercentage: 50,
    fallbackAfterSeconds: 0,
    fallbackMinReplicas: 0,
  },
} as const;

export const DEFAULT_MIN_REPLICAS = 1;
