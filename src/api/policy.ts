/**
 * Policy presets (policies/*.yaml): reusable pool behaviour, validated by the same field schemas as
 * the PodAutoscaler. A preset has behaviour for every pool and optional per-pool entries, matched by
 * pool name; a per-pool entry may start from another preset (`policy:`).
 */
import { z } from 'zod';
import { API_GROUP, API_VERSION, behaviorShape } from './podautoscaler.ts';

export const POLICY_KIND = 'ScalingPolicy';

export const PoolPolicySchema = z
  .strictObject({
    policy: z
      .string()
      .min(1)
      .optional()
      .describe('Start from this preset’s behaviour for the pool, then apply the fields here.'),
    ...behaviorShape,
  })
  .describe('Behaviour for one pool name.');

export const PolicySchema = z.strictObject({
  apiVersion: z.literal(`${API_GROUP}/${API_VERSION}`),
  kind: z.literal(POLICY_KIND),
  metadata: z.strictObject({
    name: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
      .max(63),
  }),
  spec: z.strictObject({
    description: z.string().min(1).describe('What the preset is for and what it assumes.'),
    behavior: z.strictObject(behaviorShape).optional().describe('Applies to every pool.'),
    pools: z
      .record(z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/), PoolPolicySchema)
      .optional()
      .describe('Per pool name (prefill, decode, …); applied after behavior.'),
  }),
});
export type Policy = z.infer<typeof PolicySchema>;
export type PoolPolicy = z.infer<typeof PoolPolicySchema>;
