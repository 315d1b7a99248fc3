/**
 * Writes synthetic per-request traces (`t_ms,input_tokens,output_tokens`) of shapes the development traces
 * lack, so a decision change can be checked on load it was not made on. Seeded and deterministic; nothing
 * here is fitted to a development trace. Run:
 *
 *   npx tsx bench/holdout-traces.ts [--out DIR] [--seed N]    # default out/holdout, seed 7
 *
 * Arrivals are a non-homogeneous Poisson process (Lewis–Shedler thinning), modulated by a slow log-normal
 * wander (a new level every 2 minutes, σ 0.08) so minute-scale load drifts as real traffic does. Lengths
 * are log-normal around each mix's mean:
 * - chat: prompts 1,500 (σ 0.9), outputs 300 (σ 1.0);
 * - reasoning (R1-like): prompts 1,200 (σ 0.9), outputs 3,500 (σ 0.8, at most 32K);
 * - long prompts: prompts 12,000 (σ 0.5, at most 120K), outputs 400 (σ 1.0).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

interface Mix {
  readonly inputMean: number;
  readonly inputSigma: number;
  readonly inputMax: number;
  readonly outputMean: number;
  readonly outputSigma: number;
  readonly outputMax: number;
}

const MIXES = {
  chat: {
    inputMean: 1500,
    inputSigma: 0.9,
    inputMax: 32000,
    outputMean: 300,
    outputSigma: 1.0,
    outputMax: 8000,
  },
  reasoning: {
    inputMean: 1200,
    inputSigma: 0.9,
    inputMax: 32000,
    outputMean: 3500,
    outputSigma: 0.8,
    outputMax: 32000,
  },
  long: {
    inputMean: 12000,
    inputSigma: 0.5,
    inputMax: 120000,
    outputMean: 400,
    outputSigma: 1.0,
    outputMax: 8000,
  },
} as const satisfies Record<string, Mix>;

interface Shape {
  readonly name: string;
  readonly mix: Mix;
  readonly spanSeconds: number;
  /** Requests per second at time t (before the wander). */
  readonly rate: (t: number) => number;
}

const HOUR = 3600;
const daily = (mean: number, peakOverMean: number, peakAtSeconds: number) => (t: number) =>
  mean * (1 + (peakOverMean - 1) * Math.cos((2 * Math.PI * (t - peakAtSeconds)) / (24 * HOUR)));

const SHAPES: readonly Shape[] = [
  // One hour at a flat rate of 12K-token prompts.
  { name: 'long-flat-1h', mix: MIXES.long, spanSeconds: HOUR, rate: () => 70 },
  // Two hours of reasoning traffic, doubling at minute 60.
  {
    name: 'reasoning-step2-2h',
    mix: MIXES.reasoning,
    spanSeconds: 2 * HOUR,
    rate: (t) => (t < HOUR ? 35 : 70),
  },
  // Eight hours of reasoning traffic around a daily peak (peak/mean 2 over the day, the peak at hour 5).
  { name: 'reasoning-daily-8h', mix: MIXES.reasoning, spanSeconds: 8 * HOUR, rate: daily(30, 2, 5 * HOUR) },
  // Six hours of chat rising 2.5x through its peak and falling back.
  { name: 'chat-daily-6h', mix: MIXES.chat, spanSeconds: 6 * HOUR, rate: daily(45, 2.5, 3.5 * HOUR) },
  // Reasoning with 4-minute bursts at 3x every 15 minutes.
  {
    name: 'reasoning-bursts-2h',
    mix: MIXES.reasoning,
    spanSeconds: 2 * HOUR,
    rate: (t) => (t % 900 >= 420 && t % 900 < 660 ? 75 : 25),
  },
  // Chat ramping 1x to 3x over 90 minutes, then flat for 30.
  {
    name: 'chat-ramp3-2h',
    mix: MIXES.chat,
    spanSeconds: 2 * HOUR,
    rate: (t) => 60 * (1 + 2 * Math.min(1, t / 5400)),
  },
  // Long prompts stepping down to 40 % at minute 50: the scale-down side.
  { name: 'long-stepdown-2h', mix: MIXES.long, spanSeconds: 2 * HOUR, rate: (t) => (t < 3000 ? 60 : 24) },
];

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function write(shape: Shape, dir: string, seed: number): number {
  const random = prng(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  /** Log-normal with the given mean: mu = ln(mean) − σ²/2. */
  const length = (mean: number, sigma: number, max: number) =>
    Math.min(max, Math.max(1, Math.round(Math.exp(Math.log(mean) - (sigma * sigma) / 2 + sigma * normal()))));
  const wanderEverySeconds = 120;
  const wander = Array.from({ length: Math.ceil(shape.spanSeconds / wanderEverySeconds) + 1 }, () =>
    Math.exp(0.08 * normal()),
  );
  let maxRate = 0;
  for (let t = 0; t < shape.spanSeconds; t += 10) maxRate = Math.max(maxRate, shape.rate(t));
  maxRate *= 1.5;
  const lines = ['t_ms,input_tokens,output_tokens'];
  for (let t = 0; ; ) {
    t += -Math.log(1 - random()) / maxRate;
    if (t >= shape.spanSeconds) break;
    const rate = shape.rate(t) * (wander[Math.floor(t / wanderEverySeconds)] ?? 1);
    if (random() * maxRate >= rate) continue;
    const m = shape.mix;
    lines.push(
      `${Math.floor(t * 1000)},${length(m.inputMean, m.inputSigma, m.inputMax)},${length(m.outputMean, m.outputSigma, m.outputMax)}`,
    );
  }
  writeFileSync(join(dir, `${shape.name}.csv`), `${lines.join('\n')}\n`);
  return lines.length - 1;
}

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const dir = flag('--out') ?? 'out/holdout';
const seed = Number(flag('--seed') ?? 7);
if (!Number.isInteger(seed)) throw new Error('--seed: an integer, e.g. --seed 7');
mkdirSync(dir, { recursive: true });
for (const [i, shape] of SHAPES.entries()) {
  const rows = write(shape, dir, seed * 1000 + i);
  process.stdout.write(
    `${join(dir, `${shape.name}.csv`)}: ${rows} requests over ${shape.spanSeconds / HOUR} h\n`,
  );
}
