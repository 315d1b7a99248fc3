/**
 * The simulated prefill/decode fleet: a discrete-event simulation in virtual seconds.
 *
 * **Request path.** An arrival goes to the ready prefill group with the least outstanding prompt tokens (or
 * waits at the gateway while no prefill group is ready). A prefill group runs one batch at a time: when idle
 * it takes its queue FIFO up to `maxBatchTokensPerGpu × GPUs` tokens (a longer prompt runs alone, like chunked
 * prefill), and the batch takes `forwardOverhead + Σ L·lengthFactor(L) / computeRate`. When the batch ends each
 * prompt's KV moves to the decode group with the least assigned tokens, taking `transferSeconds(L)`. A decode
 * group runs continuous batching in steps: at each step boundary it finishes sequences, takes arrived
 * transfers into its waiting queue, preempts the newest sequences if the next step's tokens would not fit in
 * KV (vLLM's recompute preemption; they go back to the front of the waiting queue keeping their progress),
 * admits waiting sequences while KV and the sequence cap allow, and starts the next step, which lasts
 * `t0 + (a·b + c·K) / ranks` (b sequences and K context tokens spread evenly over the ranks).
 *
 * **Time-to-first-token** is the moment the decode group admits the request: the arrival of its KV if the
 * group had room at the first step boundary after it, otherwise the boundary that admitted it. **TPOT** is
 * `(finish − firstToken) / (outputTokens − 1)`.
 *
 * **Exactness without per-token events.** A decode group keeps `A = Σ (ctx₀ − s₀)` over running sequences
 * (context at admission minus the step index at admission), so the resident context at step s is exactly
 * `A + b·s`; finishes sit in a per-group heap keyed by the step at which they end. Work per request is a few
 * heap operations; work per step is O(1) plus the requests it touches.
 *
 * **Lifecycle.** The policy's desired count is applied at whole seconds. A new group is held (and charged)
 * from the request and serves after `startupSeconds`. Scale-down removes groups at once, as deleting the
 * group's pods does (no drain: the workload controllers below delete, they do not drain), and every request
 * queued or running on a removed group is aborted: counted in `dropped` and in `abortedByScaleDown`, and so
 * an SLO miss. Which groups go is the target kind's rule (`VictimRule`):
 * - `highest-index` (LeaderWorkerSet, Grove PodCliqueScalingGroup, Dynamo, whose multinode workers are one of
 *   the two): the groups with the highest indices, whatever their load. LWS renders its groups as the
 *   ordinals of a leader StatefulSet (kubernetes-sigs/lws `pkg/controllers/leaderworkerset_controller.go`,
 *   `WithReplicas(*lws.Spec.Replicas)`), and a StatefulSet removes ordinals in reverse order, N−1 first
 *   (kubernetes.io/docs/concepts/workloads/controllers/statefulset, "Deployment and Scaling Guarantees"); Grove deletes the PCSG replica indices
 *   [replicas, existing) (ai-dynamo/grove `operator/internal/controller/podcliquescalinggroup/components/
 *   podclique/sync.go`, `computePCSGReplicasToDelete`); Dynamo runs multinode workers on Grove or LWS
 *   (docs.nvidia.com/dynamo, "Multinode Orchestration"). Indices are handed out in creation order and lower
 *   ones are never removed first, so the highest index is the newest group: a starting group goes before a
 *   ready one because it is newer.
 * - `arbitrary` (a KubeRay worker group scaled without `workersToDelete`): KubeRay deletes the first excess
 *   pods of its list, ready or not (ray-project/kuberay `ray-operator/controllers/ray/raycluster_controller.go`,
 *   "randomly deleting Pods" when in-tree autoscaling is off). Modelled as a seeded uniform pick among the
 *   pool's groups, starting or ready.
 * - `chosen`: the policy names the victims (`setDesired(pool, n, victimIds)`); without names, starting groups
 *   go first (newest first), then the ready groups with the least assigned work, which is what a controller
 *   that names victims would pick. GPU-hours run from request to release.
 *
 * **Externally owned groups.** In the live stack a group exists when a real leader pod is Ready, not after the
 * fleet's own startup delay: `addReadyGroup(pool, id)` adds capacity at once and `removeGroup(pool, id)` drains
 * it as a scale-down would. A pool should be driven either by `setDesired` or by these calls, not both.
 *
 * **Metrics.** Every second the fleet samples each ready group's head: `kvCacheUsagePerc` (decode: resident
 * context over KV capacity; prefill: the current batch's tokens over the group's KV capacity, which is why
 * KV-driven policies are pointed at queue length for prefill), `numRequestsWaiting` (queued + in transfer)
 * and `numRequestsRunning`. Policies see the latest sample (`direct`) or the sample of the last scrape
 * (`scrape`, every `intervalSeconds`). Each group also counts vLLM's token counters and TTFT/ITL histograms
 * (src/sim/engine-series.ts), delivered the same way.
 *
 * **Drops.** A request still waiting for a prefill batch `requestTimeoutSeconds` after it arrived is dropped
 * (a client timeout); so are requests aborted by a scale-down, sequences left on an externally removed decode
 * group at its drain cap, and requests still in flight when the run ends. `arrived = completed + dropped`
 * always; `abortedByScaleDown` is the part of `dropped` that scale-down aborted.
 */
import {
  type Calibration,
  decodeStepSeconds,
  prefillComputeTokensPerSecond,
  prefillLengthFactor,
  transferSeconds,
} from './calibration.ts';
import { type EngineSeries, type FrontendSeries, LiveEngineSeries } from './engine-series.ts';
import { LatencyHistogram, type ScaleEvent } from './kpi.ts';
import type { GroupMetrics, Pool, PoolRouting } from './policies/types.ts';
import { Random } from './random.ts';
import { IntDeque, MinHeap } from './structures.ts';

export type MetricsDelivery =
  | { readonly kind: 'direct' }
  | { readonly kind: 'scrape'; readonly intervalSeconds: number };

/** Which groups a scale-down removes: the target kind's rule (see the header). */
export type VictimRule = 'highest-index' | 'arbitrary' | 'chosen';

export const VICTIM_RULES: readonly VictimRule[] = ['highest-index', 'arbitrary', 'chosen'];

export interface FleetOptions {
  readonly calibration: Calibration;
  readonly startupSeconds: number;
  /** Which groups scale-down removes (default `highest-index`, LeaderWorkerSet's rule). */
  readonly victimRule?: VictimRule;
  /** Seed of the `arbitrary` victim pick. */
  readonly victimSeed?: number;
  readonly metricsDelivery: MetricsDelivery;
  readonly requestTimeoutSeconds: number;
  readonly initialGroups: Readonly<Record<Pool, number>>;
  readonly maxGroups: Readonly<Record<Pool, number>>;
  /** SLO thresholds for attainment (defaults from the calibration). */
  readonly ttftSloSeconds: number;
  readonly tpotSloSeconds: number;
  /** Called for every completed request (tests and per-request exports); leave unset on long runs. */
  readonly onComplete?: (request: CompletedRequest) => void;
}

export interface CompletedRequest {
  readonly arrivalSeconds: number;
  readonly firstTokenSeconds: number;
  readonly finishSeconds: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
}

type GroupState = 'starting' | 'ready' | 'draining' | 'released';

interface GroupBase {
  readonly id: number;
  readonly pool: Pool;
  readonly requestedAt: number;
  readonly readyAt: number;
  state: GroupState;
  releasedAt: number;
  drainStartedAt: number;
  /** Σ (input + output) of requests assigned and not finished: the router's load measure. */
  assignedTokens: number;
  /** Time of the one live event of this group in the event heap; NaN when none. */
  scheduledAt: number;
  /** The caller's name for an externally owned group (e.g. `namespace/pod`); undefined for the fleet's own. */
  externalId: string | undefined;
  /** False while a drain holds the group out of routing: it serves what it has and is sent nothing new. */
  routable: boolean;
  /** The engine's vLLM counters and histograms. */
  readonly engine: LiveEngineSeries;
}

interface PrefillGroup extends GroupBase {
  readonly pool: 'prefill';
  readonly queue: IntDeque;
  queuedTokens: number;
  batch: number[];
  batchTokens: number;
}

interface DecodeGroup extends GroupBase {
  readonly pool: 'decode';
  readonly waiting: IntDeque;
  /** Requests whose KV is on the wire, in dispatch order. */
  transfers: number[];
  readonly finishes: MinHeap;
  step: number;
  running: number;
  /** Σ (ctx₀ − s₀) over running sequences; resident context = contextBase + running·step. */
  contextBase: number;
  /** Newest-admitted end of the running list (for LIFO preemption), and the oldest end. */
  newest: number;
  previousBoundaryAt: number;
}

type Group = PrefillGroup | DecodeGroup;

const NONE = -1;
const EVENT_PREFILL = 0;
const EVENT_DECODE = 1;

/** Per-pool record of the run for KPIs. */
export interface PoolRecord {
  readonly scaleEvents: ScaleEvent[];
  gpuHours: number;
  /** Σ over whole seconds of GPUs held: the time-integral check of gpuHours. */
  gpuSecondsSampled: number;
  /** Σ over whole seconds of GPUs held by groups out of routing (the cost of draining). */
  drainGpuSeconds: number;
  peakGroups: number;
}

/** A one-minute row of the timeline (for the SVG and for reading a run). */
export interface TimelineRow {
  readonly minute: number;
  arrivals: number;
  completions: number;
  sloViolations: number;
  prefillRequested: number;
  prefillReady: number;
  decodeRequested: number;
  decodeReady: number;
  decodeKvUsageMean: number;
  prefillWaiting: number;
  decodeWaiting: number;
}

export class Fleet {
  readonly calibration: Calibration;
  private readonly options: FleetOptions;
  private now = 0;
  private nextTickAt = 0;
  private readonly events = new MinHeap(256);
  readonly groups: Group[] = [];
  /** Groups not yet released, and the ready (serving, not draining) groups of each pool. */
  private live: Group[] = [];
  private readonly readyPrefill: PrefillGroup[] = [];
  private readonly readyDecode: DecodeGroup[] = [];
  private readonly prefillRate: number;
  private readonly prefillBatchTokens: number;
  private readonly decodeKvTokens: number;
  private readonly decodeMaxSequences: number;
  private readonly gateway = new IntDeque(); // waiting for any ready prefill group
  private readonly decodeGateway = new IntDeque(); // prefilled, waiting for any ready decode group
  private desired: Record<Pool, number> = { prefill: 0, decode: 0 };
  /** Externally owned groups not yet removed, by the caller's id. */
  private readonly external: Record<Pool, Map<string, Group>> = { prefill: new Map(), decode: new Map() };

  // Request slots, struct-of-arrays.
  private capacity = 0;
  private arrivalAt = new Float64Array(0);
  private inputTokens = new Int32Array(0);
  private outputTokens = new Int32Array(0);
  private readyAt = new Float64Array(0);
  private firstTokenAt = new Float64Array(0);
  private remainingSteps = new Int32Array(0);
  private admittedStep = new Float64Array(0);
  private generation = new Int32Array(0);
  private older = new Int32Array(0);
  private newer = new Int32Array(0);
  private freeSlots = new IntDeque();
  private inFlight = 0;

  // KPIs.
  arrived = 0;
  completed = 0;
  dropped = 0;
  /** Requests aborted because their group was removed by a scale-down (part of `dropped`). */
  abortedByScaleDown = 0;
  preemptions = 0;
  sloMet = 0;
  outputTokensCompleted = 0;
  inputTokensCompleted = 0;
  /** Σ prompt tokens of arrivals: the frontend's input-sequence counter. */
  inputTokensArrived = 0;
  readonly ttft = new LatencyHistogram();
  readonly tpot = new LatencyHistogram();
  /** The prefill pool's share of TTFT: arrival to KV landed at decode (queue, batch, transfer). */
  readonly prefillLatency = new LatencyHistogram();
  /** The decode pool's share of TTFT: KV landed to admission (waiting for KV room or a sequence slot). */
  readonly decodeAdmissionWait = new LatencyHistogram();
  readonly pools: Record<Pool, PoolRecord> = {
    prefill: { scaleEvents: [], gpuHours: 0, gpuSecondsSampled: 0, drainGpuSeconds: 0, peakGroups: 0 },
    decode: { scaleEvents: [], gpuHours: 0, gpuSecondsSampled: 0, drainGpuSeconds: 0, peakGroups: 0 },
  };
  readonly timeline: TimelineRow[] = [];
  private delivered: Record<Pool, GroupMetrics[]> = { prefill: [], decode: [] };
  /** Engine series of the last scrape (scrape delivery only; direct delivery snapshots when asked). */
  private deliveredSeries: Record<Pool, EngineSeries[]> = { prefill: [], decode: [] };
  private accountingEndsAt = Number.POSITIVE_INFINITY;
  private readonly victimRule: VictimRule;
  private readonly victimRandom: Random;

  constructor(options: FleetOptions) {
    this.options = options;
    this.calibration = options.calibration;
    const c = options.calibration;
    this.prefillRate = prefillComputeTokensPerSecond(c);
    this.prefillBatchTokens = c.prefill.maxBatchTokensPerGpu * c.prefill.gpusPerGroup;
    this.decodeKvTokens = c.decode.kvCapacityTokensPerGpu * c.decode.gpusPerGroup;
    this.decodeMaxSequences = c.decode.maxSequencesPerGpu * c.decode.gpusPerGroup;
    this.victimRule = options.victimRule ?? 'highest-index';
    this.victimRandom = new Random(options.victimSeed ?? 1);
    this.growSlots(1024);
    for (const pool of ['prefill', 'decode'] as const) {
      for (let i = 0; i < options.initialGroups[pool]; i++) this.addGroup(pool, 0, 0);
      this.desired[pool] = options.initialGroups[pool];
    }
  }

  get nowSeconds(): number {
    return this.now;
  }

  /** Requests arrived and neither completed nor dropped. */
  get requestsInFlight(): number {
    return this.inFlight;
  }

  // ---------------------------------------------------------------- time

  /**
   * Advances to `t`, processing every event and whole-second tick at or before it. `onTick(second)` runs at each
   * whole second after the fleet has sampled its metrics and before the next events.
   */
  advanceTo(t: number, onTick: (second: number) => void): void {
    const events = this.events;
    for (;;) {
      const eventAt = events.peekKey();
      const tickAt = this.nextTickAt;
      if (tickAt <= eventAt) {
        if (tickAt > t) break;
        this.now = tickAt;
        this.nextTickAt = tickAt + 1;
        this.tick(tickAt);
        onTick(tickAt);
        continue;
      }
      if (eventAt > t) break;
      const code = events.peekA();
      events.pop();
      const group = this.groups[code >> 1];
      if (group === undefined || group.scheduledAt !== eventAt) continue; // superseded
      this.now = eventAt;
      group.scheduledAt = Number.NaN;
      if ((code & 1) === EVENT_PREFILL) this.prefillBatchDone(group as PrefillGroup);
      else this.decodeBoundary(group as DecodeGroup);
    }
    this.now = Math.max(this.now, t);
  }

  /** Stops charging GPU-hours at `t` (the end of the trace): later holding is not billed to the policy. */
  stopAccountingAt(t: number): void {
    this.accountingEndsAt = t;
  }

  /** Ends the run: drops whatever is still in flight and closes the GPU-hour books. */
  finish(): void {
    for (const group of [...this.live]) this.release(group, this.now);
    this.dropped += this.inFlight;
    this.inFlight = 0;
  }

  // ---------------------------------------------------------------- arrivals and prefill

  arrive(t: number, inputTokens: number, outputTokens: number): void {
    const slot = this.allocSlot();
    this.arrivalAt[slot] = t;
    this.inputTokens[slot] = inputTokens;
    this.outputTokens[slot] = Math.max(1, outputTokens);
    this.firstTokenAt[slot] = Number.NaN;
    this.remainingSteps[slot] = Math.max(1, outputTokens) - 1;
    this.arrived++;
    this.inputTokensArrived += inputTokens;
    this.inFlight++;
    this.currentRow(t).arrivals++;
    const group = this.pickPrefill();
    if (group === undefined) this.gateway.pushBack(slot);
    else this.enqueuePrefill(group, slot);
  }

  private pickPrefill(): PrefillGroup | undefined {
    const ready = this.readyPrefill;
    let best = ready[0];
    for (let i = 1; i < ready.length; i++) {
      const g = ready[i] as PrefillGroup;
      if (g.assignedTokens < (best as PrefillGroup).assignedTokens) best = g;
    }
    return best;
  }

  private enqueuePrefill(group: PrefillGroup, slot: number): void {
    const tokens = this.inputTokens[slot] as number;
    group.queue.pushBack(slot);
    group.queuedTokens += tokens;
    group.assignedTokens += tokens;
    if (group.batch.length === 0 && Number.isNaN(group.scheduledAt)) this.startBatch(group);
  }

  private startBatch(group: PrefillGroup): void {
    const now = this.now;
    const timeout = this.options.requestTimeoutSeconds;
    let work = 0;
    let tokens = 0;
    const batch = group.batch;
    while (group.queue.length > 0) {
      const slot = group.queue.peekFront();
      const input = this.inputTokens[slot] as number;
      if (now - (this.arrivalAt[slot] as number) > timeout) {
        group.queue.popFront();
        group.queuedTokens -= input;
        group.assignedTokens -= input;
        this.drop(slot);
        continue;
      }
      if (batch.length > 0 && tokens + input > this.prefillBatchTokens) break;
      group.queue.popFront();
      group.queuedTokens -= input;
      batch.push(slot);
      tokens += input;
      work += input * prefillLengthFactor(this.calibration, input);
    }
    group.batchTokens = tokens;
    if (batch.length === 0) {
      if (group.state === 'draining') this.release(group, now);
      return;
    }
    this.schedule(group, now + this.calibration.prefill.forwardOverheadSeconds + work / this.prefillRate);
  }

  private prefillBatchDone(group: PrefillGroup): void {
    const now = this.now;
    const engine = group.engine;
    for (const slot of group.batch) {
      group.assignedTokens -= this.inputTokens[slot] as number;
      engine.promptTokensTotal += this.inputTokens[slot] as number;
      engine.generationTokensTotal += 1; // the prefill engine's one output token
      engine.requestSuccessTotal += 1;
      engine.ttft.observe(now - (this.arrivalAt[slot] as number));
      this.readyAt[slot] = now + transferSeconds(this.calibration, this.inputTokens[slot] as number);
      const decode = this.pickDecode();
      if (decode === undefined) this.decodeGateway.pushBack(slot);
      else this.dispatchDecode(decode, slot);
    }
    group.batch.length = 0;
    group.batchTokens = 0;
    if (group.queue.length > 0) this.startBatch(group);
    else if (group.state === 'draining') this.release(group, now);
  }

  // ---------------------------------------------------------------- decode

  private pickDecode(): DecodeGroup | undefined {
    const ready = this.readyDecode;
    let best = ready[0];
    for (let i = 1; i < ready.length; i++) {
      const g = ready[i] as DecodeGroup;
      if (g.assignedTokens < (best as DecodeGroup).assignedTokens) best = g;
    }
    return best;
  }

  private dispatchDecode(group: DecodeGroup, slot: number): void {
    group.assignedTokens += (this.inputTokens[slot] as number) + (this.outputTokens[slot] as number);
    group.transfers.push(slot);
    const readyAt = Math.max(this.readyAt[slot] as number, this.now);
    this.readyAt[slot] = readyAt;
    // A stepping group picks the transfer up at its next boundary; an idle one wakes when the KV lands.
    if (group.running === 0 && !(group.scheduledAt <= readyAt)) this.schedule(group, readyAt);
  }

  private decodeBoundary(group: DecodeGroup): void {
    const now = this.now;
    if (group.running > 0) {
      // The step that just ended gave one token to each running sequence, `now − step start` apart.
      group.step++;
      group.engine.generationTokensTotal += group.running;
      group.engine.itl.observe(now - group.previousBoundaryAt, group.running);
    }
    const step = group.step;
    // 1. Finish sequences whose last token came out of the step that just ended.
    const finishes = group.finishes;
    while (finishes.size > 0 && finishes.peekKey() <= step) {
      const slot = finishes.peekA();
      const generation = finishes.peekB();
      finishes.pop();
      if (this.generation[slot] !== generation) continue; // preempted since
      this.unlinkRunning(group, slot);
      this.complete(group, slot, now);
    }
    // 2. Transfers that have landed join the waiting queue, in dispatch order.
    const transfers = group.transfers;
    if (transfers.length > 0) {
      let kept = 0;
      for (let i = 0; i < transfers.length; i++) {
        const slot = transfers[i] as number;
        if ((this.readyAt[slot] as number) <= now) group.waiting.pushBack(slot);
        else transfers[kept++] = slot;
      }
      transfers.length = kept;
    }
    // 3. Preempt the newest sequences while the next step's tokens would not fit.
    const capacity = this.decodeKvTokens;
    while (group.running > 0 && group.contextBase + group.running * (step + 1) > capacity) {
      const victim = group.newest;
      this.unlinkRunning(group, victim);
      this.remainingSteps[victim] = Math.max(
        0,
        (this.admittedStep[victim] as number) + (this.remainingSteps[victim] as number) - step,
      );
      this.generation[victim] = ((this.generation[victim] as number) + 1) | 0;
      group.waiting.pushFront(victim);
      this.preemptions++;
      group.engine.preemptionsTotal++;
    }
    // 4. Admit waiting sequences while KV (including the next step's tokens) and the sequence cap allow.
    const waiting = group.waiting;
    while (waiting.length > 0 && group.running < this.decodeMaxSequences) {
      const slot = waiting.peekFront();
      const remaining = this.remainingSteps[slot] as number;
      const context = (this.inputTokens[slot] as number) + (this.outputTokens[slot] as number) - remaining;
      const residentAfter = group.contextBase + group.running * step + context + group.running + 1;
      if (residentAfter > capacity) break;
      waiting.popFront();
      if (Number.isNaN(this.firstTokenAt[slot] as number)) {
        // Admitted at the first boundary after its KV landed: the first token is on time; otherwise it waited.
        const landed = this.readyAt[slot] as number;
        this.firstTokenAt[slot] = landed > group.previousBoundaryAt ? landed : now;
        const input = this.inputTokens[slot] as number;
        group.engine.promptTokensTotal += input;
        group.engine.generationTokensTotal += 1;
        const prefilledAt = landed - transferSeconds(this.calibration, input);
        group.engine.ttft.observe((this.firstTokenAt[slot] as number) - prefilledAt);
      }
      if (remaining === 0) {
        this.complete(group, slot, now);
        continue;
      }
      this.admittedStep[slot] = step;
      group.contextBase += context - step;
      group.running++;
      this.linkNewest(group, slot);
      finishes.push(step + remaining, slot, this.generation[slot] as number);
    }
    group.previousBoundaryAt = now;
    // 5. Next step, or sleep until the next transfer lands, or release a drained group.
    if (group.running > 0) {
      const resident = group.contextBase + group.running * step;
      this.schedule(group, now + decodeStepSeconds(this.calibration, group.running, resident));
      return;
    }
    if (transfers.length > 0) {
      let earliest = Number.POSITIVE_INFINITY;
      for (const slot of transfers) earliest = Math.min(earliest, this.readyAt[slot] as number);
      this.schedule(group, earliest);
      return;
    }
    if (group.state === 'draining' && waiting.length === 0) this.release(group, now);
  }

  private linkNewest(group: DecodeGroup, slot: number): void {
    this.newer[slot] = NONE;
    this.older[slot] = group.newest;
    if (group.newest !== NONE) this.newer[group.newest] = slot;
    group.newest = slot;
  }

  private unlinkRunning(group: DecodeGroup, slot: number): void {
    const older = this.older[slot] as number;
    const newer = this.newer[slot] as number;
    if (older !== NONE) this.newer[older] = newer;
    if (newer !== NONE) this.older[newer] = older;
    else group.newest = older;
    const admittedContext =
      (this.inputTokens[slot] as number) +
      (this.outputTokens[slot] as number) -
      (this.remainingSteps[slot] as number);
    group.contextBase -= admittedContext - (this.admittedStep[slot] as number);
    group.running--;
  }

  private complete(group: DecodeGroup, slot: number, now: number): void {
    group.engine.requestSuccessTotal++;
    group.assignedTokens -= (this.inputTokens[slot] as number) + (this.outputTokens[slot] as number);
    const output = this.outputTokens[slot] as number;
    const first = this.firstTokenAt[slot] as number;
    const ttft = first - (this.arrivalAt[slot] as number);
    const tpot = output > 1 ? (now - first) / (output - 1) : 0;
    this.ttft.record(ttft);
    const landed = this.readyAt[slot] as number;
    this.prefillLatency.record(landed - (this.arrivalAt[slot] as number));
    this.decodeAdmissionWait.record(Math.max(0, first - landed));
    if (output > 1) this.tpot.record(tpot);
    const met = ttft <= this.options.ttftSloSeconds && tpot <= this.options.tpotSloSeconds;
    if (met) this.sloMet++;
    else this.currentRow(now).sloViolations++;
    this.currentRow(now).completions++;
    this.completed++;
    this.outputTokensCompleted += output;
    this.inputTokensCompleted += this.inputTokens[slot] as number;
    this.inFlight--;
    this.options.onComplete?.({
      arrivalSeconds: this.arrivalAt[slot] as number,
      firstTokenSeconds: first,
      finishSeconds: now,
      inputTokens: this.inputTokens[slot] as number,
      outputTokens: output,
    });
    this.freeSlot(slot);
  }

  /** A request lost with its group to a scale-down. */
  private abort(slot: number): void {
    this.abortedByScaleDown++;
    this.drop(slot);
  }

  private drop(slot: number): void {
    this.dropped++;
    this.inFlight--;
    this.freeSlot(slot);
  }

  // ---------------------------------------------------------------- lifecycle

  private addGroup(pool: Pool, requestedAt: number, startupSeconds: number): Group {
    const base = {
      id: this.groups.length,
      requestedAt,
      readyAt: requestedAt + startupSeconds,
      state: (startupSeconds > 0 ? 'starting' : 'ready') as GroupState,
      releasedAt: Number.NaN,
      drainStartedAt: Number.NaN,
      assignedTokens: 0,
      scheduledAt: Number.NaN,
      externalId: undefined as string | undefined,
      routable: true,
      engine: new LiveEngineSeries(this.groups.length),
    };
    let group: Group;
    if (pool === 'prefill') {
      group = { ...base, pool, queue: new IntDeque(), queuedTokens: 0, batch: [], batchTokens: 0 };
    } else {
      group = {
        ...base,
        pool,
        waiting: new IntDeque(),
        transfers: [],
        finishes: new MinHeap(256),
        step: 0,
        running: 0,
        contextBase: 0,
        newest: NONE,
        previousBoundaryAt: Number.NEGATIVE_INFINITY,
      };
    }
    this.groups.push(group);
    this.live.push(group);
    if (group.state === 'ready') this.markReady(group);
    return group;
  }

  private markReady(group: Group): void {
    group.state = 'ready';
    if (!group.routable) return;
    if (group.pool === 'prefill') this.readyPrefill.push(group);
    else this.readyDecode.push(group);
  }

  private unmarkReady(group: Group): void {
    const list: Group[] = group.pool === 'prefill' ? this.readyPrefill : this.readyDecode;
    const i = list.indexOf(group);
    if (i >= 0) list.splice(i, 1);
  }

  private release(group: Group, t: number): void {
    if (group.state === 'released') return;
    if (group.state === 'ready') this.unmarkReady(group);
    group.state = 'released';
    this.live = this.live.filter((g) => g !== group);
    group.releasedAt = t;
    group.scheduledAt = Number.NaN;
    const end = Math.min(t, this.accountingEndsAt);
    const gpus =
      group.pool === 'prefill' ? this.calibration.prefill.gpusPerGroup : this.calibration.decode.gpusPerGroup;
    this.pools[group.pool].gpuHours += (Math.max(0, end - group.requestedAt) * gpus) / 3600;
  }

  /**
   * Applies a policy's desired group count for a pool at a whole second. On scale-down the victims follow the
   * fleet's `VictimRule`; `victimIds` (group ids) are used under `chosen`.
   */
  setDesired(pool: Pool, desiredGroups: number, victimIds: readonly number[] = []): void {
    const target = Math.max(0, Math.min(this.options.maxGroups[pool], Math.round(desiredGroups)));
    const current = this.desired[pool];
    if (target === current) return;
    const now = this.now;
    this.pools[pool].scaleEvents.push({ tSeconds: now, fromGroups: current, toGroups: target });
    this.desired[pool] = target;
    if (target > current) {
      for (let i = current; i < target; i++) this.addGroup(pool, now, this.options.startupSeconds);
      this.pools[pool].peakGroups = Math.max(this.pools[pool].peakGroups, this.heldGroups(pool));
      return;
    }
    for (const victim of this.victims(pool, current - target, victimIds)) this.removeNow(victim);
  }

  /** The `count` groups a scale-down removes under the fleet's rule (see the header). */
  private victims(pool: Pool, count: number, victimIds: readonly number[]): Group[] {
    // Candidates in index (creation) order; externally owned and draining groups are not the policy's.
    const candidates = this.live.filter(
      (g) => g.pool === pool && g.externalId === undefined && (g.state === 'starting' || g.state === 'ready'),
    );
    const n = Math.min(count, candidates.length);
    switch (this.victimRule) {
      case 'highest-index':
        return candidates.slice(candidates.length - n).reverse();
      case 'arbitrary': {
        const out: Group[] = [];
        for (let i = 0; i < n; i++) {
          const j = this.victimRandom.nextUint32() % candidates.length;
          out.push(...candidates.splice(j, 1));
        }
        return out;
      }
      case 'chosen': {
        const named = victimIds
          .map((id) => candidates.find((g) => g.id === id))
          .filter((g): g is Group => g !== undefined);
        const rest = candidates
          .filter((g) => !named.includes(g))
          .sort((a, b) =>
            a.routable !== b.routable
              ? a.routable
                ? 1
                : -1
              : a.state !== b.state
                ? a.state === 'starting'
                  ? -1
                  : 1
                : a.state === 'starting'
                  ? b.id - a.id
                  : a.assignedTokens - b.assignedTokens,
          );
        return [...named, ...rest].slice(0, n);
      }
    }
  }

  /**
   * Takes one of the pool's own groups out of routing (a drain's readiness gate set False) or back in. Out of
   * routing it is sent nothing new and serves what it holds; it stays held (and charged) until removed.
   */
  setRouting(pool: Pool, id: number, routable: boolean): void {
    const group = this.groups[id];
    if (group === undefined || group.pool !== pool || group.state === 'released') return;
    if (group.routable === routable) return;
    group.routable = routable;
    if (group.state !== 'ready') return;
    if (routable) {
      this.markReady(group);
      this.drainGateway(pool);
    } else {
      this.unmarkReady(group);
    }
  }

  /**
   * The pool's own groups in the order a scale-down removes them under the fleet's rule, with what each holds
   * now; null under `arbitrary`, whose victims cannot be known in advance.
   */
  removalOrder(pool: Pool): { id: number; serving: boolean; inFlight: number }[] | null {
    if (this.victimRule === 'arbitrary') return null;
    const count = this.live.filter((g) => g.pool === pool && g.externalId === undefined).length;
    return this.victims(pool, count, []).map((g) => ({
      id: g.id,
      serving: g.state === 'ready',
      inFlight: this.inFlightOn(g),
    }));
  }

  /** Requests queued, running or in transfer on a group. */
  private inFlightOn(g: Group): number {
    if (g.pool === 'prefill') return g.queue.length + g.batch.length;
    return g.running + g.waiting.length + g.transfers.length;
  }

  /** Removes a group at once: whatever is queued or running on it is aborted (an SLO miss). */
  private removeNow(group: Group): void {
    if (group.state === 'starting') {
      this.release(group, this.now);
      return;
    }
    this.unmarkReady(group);
    if (group.pool === 'prefill') {
      while (group.queue.length > 0) this.abort(group.queue.popFront());
      for (const slot of group.batch) this.abort(slot);
      group.batch.length = 0;
      group.batchTokens = 0;
      group.queuedTokens = 0;
      group.assignedTokens = 0;
      this.release(group, this.now);
      return;
    }
    this.abandonDecode(group, true);
  }

  /** Requests waiting at a pool's gateway go to its ready groups (after a group became ready). */
  private drainGateway(pool: Pool): void {
    if (pool === 'prefill') {
      while (this.gateway.length > 0) {
        const target = this.pickPrefill();
        if (target === undefined) break;
        this.enqueuePrefill(target, this.gateway.popFront());
      }
    } else {
      while (this.decodeGateway.length > 0) {
        const target = this.pickDecode();
        if (target === undefined) break;
        this.dispatchDecode(target, this.decodeGateway.popFront());
      }
    }
  }

  /**
   * Adds an externally owned group that serves at once (its leader pod runs); `routable: false` adds it out
   * of routing (a readiness gate not yet True). Returns false, changing nothing, when the pool already has a
   * group with this id or is at its `maxGroups`.
   */
  addReadyGroup(pool: Pool, id: string, options: { readonly routable?: boolean } = {}): boolean {
    const owned = this.external[pool];
    if (owned.has(id) || this.heldGroups(pool) >= this.options.maxGroups[pool]) return false;
    const now = this.now;
    const group = this.addGroup(pool, now, 0);
    group.externalId = id;
    owned.set(id, group);
    if (options.routable === false) this.setRouting(pool, group.id, false);
    this.recordExternalChange(pool, this.desired[pool] + 1);
    this.pools[pool].peakGroups = Math.max(this.pools[pool].peakGroups, this.heldGroups(pool));
    this.drainGateway(pool);
    return true;
  }

  /** Takes an externally owned group out of routing or back in (its pods' readiness gate); false if unknown. */
  setExternalRouting(pool: Pool, id: string, routable: boolean): boolean {
    const group = this.external[pool].get(id);
    if (group === undefined) return false;
    this.setRouting(pool, group.id, routable);
    return true;
  }

  /**
   * Removes an externally owned group. `drain` (the default) as a scale-down that lets it finish: a prefill
   * group hands its queue back and finishes its batch, a decode group serves what it has (up to the drain
   * cap). `abort` as a deleted multi-node group: its engine dies, and whatever it holds is aborted and counted
   * in `abortedByScaleDown`. Returns false for an unknown id.
   */
  removeGroup(pool: Pool, id: string, how: 'drain' | 'abort' = 'drain'): boolean {
    const owned = this.external[pool];
    const group = owned.get(id);
    if (group === undefined) return false;
    owned.delete(id);
    this.recordExternalChange(pool, this.desired[pool] - 1);
    if (how === 'abort') this.removeNow(group);
    else if (group.state === 'ready') this.startDrain(group);
    else if (group.state === 'starting') this.release(group, this.now);
    return true;
  }

  /** Ids of the pool's externally owned groups that still serve (added and not removed). */
  externalGroupIds(pool: Pool): string[] {
    return [...this.external[pool].keys()];
  }

  /** The head metrics of one externally owned group now; undefined when the id is unknown or removed. */
  groupMetrics(pool: Pool, id: string): GroupMetrics | undefined {
    const group = this.external[pool].get(id);
    return group === undefined || group.state !== 'ready' ? undefined : this.metricsOf(group);
  }

  private recordExternalChange(pool: Pool, toGroups: number): void {
    this.pools[pool].scaleEvents.push({ tSeconds: this.now, fromGroups: this.desired[pool], toGroups });
    this.desired[pool] = toGroups;
  }

  private startDrain(group: Group): void {
    this.unmarkReady(group);
    group.state = 'draining';
    group.drainStartedAt = this.now;
    if (group.pool === 'prefill') {
      // Hand the queue back to the router; finish the running batch.
      const queue = group.queue;
      while (queue.length > 0) {
        const slot = queue.popFront();
        const input = this.inputTokens[slot] as number;
        group.queuedTokens -= input;
        group.assignedTokens -= input;
        const other = this.pickPrefill();
        if (other === undefined) this.gateway.pushBack(slot);
        else this.enqueuePrefill(other, slot);
      }
      if (group.batch.length === 0) this.release(group, this.now);
      return;
    }
    if (group.running === 0 && group.waiting.length === 0 && group.transfers.length === 0) {
      this.release(group, this.now);
    }
  }

  private heldGroups(pool: Pool): number {
    let n = 0;
    for (const g of this.live) if (g.pool === pool) n++;
    return n;
  }

  private schedule(group: Group, t: number): void {
    group.scheduledAt = t;
    this.events.push(t, (group.id << 1) | (group.pool === 'prefill' ? EVENT_PREFILL : EVENT_DECODE));
  }

  // ---------------------------------------------------------------- the one-second tick

  private tick(second: number): void {
    const c = this.calibration;
    // Starting groups become capacity; gateways drain into them.
    for (const g of this.live) {
      if (g.state === 'starting' && g.readyAt <= second) {
        this.markReady(g);
        this.drainGateway(g.pool);
      }
    }
    // Client timeouts at the gateway (FIFO, so expired requests are at the front).
    while (
      this.gateway.length > 0 &&
      second - (this.arrivalAt[this.gateway.peekFront()] as number) > this.options.requestTimeoutSeconds
    ) {
      this.drop(this.gateway.popFront());
    }
    // Decode drain cap.
    for (const g of [...this.live]) {
      if (
        g.pool === 'decode' &&
        g.state === 'draining' &&
        second - g.drainStartedAt >= c.lifecycle.decodeDrainCapSeconds
      ) {
        this.abandonDecode(g);
      }
    }
    // GPU-seconds held (the time-integral check of gpuHours) and the timeline.
    const row = this.currentRow(second);
    if (second < this.accountingEndsAt) {
      for (const g of this.live) {
        const gpus = g.pool === 'prefill' ? c.prefill.gpusPerGroup : c.decode.gpusPerGroup;
        this.pools[g.pool].gpuSecondsSampled += gpus;
        if (!g.routable) this.pools[g.pool].drainGpuSeconds += gpus;
      }
    }
    // Metrics of ready group heads, delivered directly or at scrapes.
    const delivery = this.options.metricsDelivery;
    const scrape = delivery.kind === 'direct' || second % delivery.intervalSeconds === 0;
    if (scrape) {
      this.delivered = { prefill: this.sampleMetrics('prefill'), decode: this.sampleMetrics('decode') };
      if (delivery.kind === 'scrape') {
        this.deliveredSeries = { prefill: this.sampleSeries('prefill'), decode: this.sampleSeries('decode') };
      }
    }
    if (second % 60 === 0) {
      row.prefillRequested = this.desired.prefill;
      row.decodeRequested = this.desired.decode;
      row.prefillReady = this.countState('prefill', 'ready');
      row.decodeReady = this.countState('decode', 'ready');
      const sample = this.sampleMetrics('decode');
      row.decodeKvUsageMean =
        sample.length > 0 ? sample.reduce((s, m) => s + m.kvCacheUsagePerc, 0) / sample.length : 0;
      row.decodeWaiting = sample.reduce((s, m) => s + m.numRequestsWaiting, 0);
      row.prefillWaiting =
        this.sampleMetrics('prefill').reduce((s, m) => s + m.numRequestsWaiting, 0) + this.gateway.length;
    }
  }

  /** Drops everything on a decode group and releases it; `aborted` counts the drops as scale-down aborts. */
  private abandonDecode(group: DecodeGroup, aborted = false): void {
    const lose = (slot: number) => (aborted ? this.abort(slot) : this.drop(slot));
    const finishes = group.finishes;
    while (finishes.size > 0) {
      const slot = finishes.peekA();
      const generation = finishes.peekB();
      finishes.pop();
      if (this.generation[slot] !== generation) continue;
      this.unlinkRunning(group, slot);
      lose(slot);
    }
    while (group.waiting.length > 0) lose(group.waiting.popFront());
    for (const slot of group.transfers) lose(slot);
    group.transfers.length = 0;
    group.assignedTokens = 0;
    this.release(group, this.now);
  }

  /** Groups in `state`; a ready group held out of routing by a drain is not counted as ready (its pods are not). */
  private countState(pool: Pool, state: GroupState): number {
    let n = 0;
    for (const g of this.live)
      if (g.pool === pool && g.state === state && (state !== 'ready' || g.routable)) n++;
    return n;
  }

  /** Samples the heads of the pool's ready groups now. */
  sampleMetrics(pool: Pool): GroupMetrics[] {
    const out: GroupMetrics[] = [];
    for (const g of pool === 'prefill' ? this.readyPrefill : this.readyDecode) out.push(this.metricsOf(g));
    return out;
  }

  /** Snapshots the engine series of the pool's ready groups now (same order as `sampleMetrics`). */
  sampleSeries(pool: Pool): EngineSeries[] {
    const out: EngineSeries[] = [];
    for (const g of pool === 'prefill' ? this.readyPrefill : this.readyDecode) out.push(g.engine.snapshot());
    return out;
  }

  private metricsOf(g: Group): GroupMetrics {
    if (g.pool === 'prefill') {
      return {
        kvCacheUsagePerc:
          g.batchTokens /
          (this.calibration.decode.kvCapacityTokensPerGpu * this.calibration.prefill.gpusPerGroup),
        numRequestsWaiting: g.queue.length,
        numRequestsRunning: g.batch.length,
      };
    }
    return {
      kvCacheUsagePerc: (g.contextBase + g.running * g.step) / this.decodeKvTokens,
      numRequestsWaiting: g.waiting.length + g.transfers.length,
      numRequestsRunning: g.running,
    };
  }

  /** What a controller of the pool sees now. */
  observe(pool: Pool): {
    requestedGroups: number;
    readyGroups: number;
    metrics: readonly GroupMetrics[];
    engineSeries: () => readonly EngineSeries[];
    frontend: () => FrontendSeries;
    routing: PoolRouting;
  } {
    // Series are snapshotted only when a policy asks (direct) or at scrapes: most seconds nobody reads them.
    const engineSeries =
      this.options.metricsDelivery.kind === 'direct'
        ? () => this.sampleSeries(pool)
        : () => this.deliveredSeries[pool];
    return {
      requestedGroups: this.desired[pool],
      readyGroups: this.countState(pool, 'ready'),
      metrics: this.delivered[pool],
      engineSeries,
      frontend: () => this.frontendSeries(),
      routing: {
        removalOrder: () => this.removalOrder(pool),
        setRouting: (id, routable) => this.setRouting(pool, id, routable),
      },
    };
  }

  /** The request frontend's counters now (requests and tokens in, requests and tokens out). */
  frontendSeries(): FrontendSeries {
    return {
      requestsTotal: this.arrived,
      inputTokensTotal: this.inputTokensArrived,
      completedTotal: this.completed,
      outputTokensTotal: this.outputTokensCompleted,
    };
  }

  /** The engine series of one externally owned group now; undefined when the id is unknown or removed. */
  groupSeries(pool: Pool, id: string): EngineSeries | undefined {
    const group = this.external[pool].get(id);
    return group === undefined || group.state !== 'ready' ? undefined : group.engine.snapshot();
  }

  private currentRow(t: number): TimelineRow {
    const minute = Math.floor(t / 60);
    let row = this.timeline[this.timeline.length - 1];
    // Virtual time only moves forward, so the current minute is the last row or a new one.
    if (row !== undefined && row.minute >= minute) return row;
    row = {
      minute,
      arrivals: 0,
      completions: 0,
      sloViolations: 0,
      prefillRequested: 0,
      prefillReady: 0,
      decodeRequested: 0,
      decodeReady: 0,
      decodeKvUsageMean: 0,
      prefillWaiting: 0,
      decodeWaiting: 0,
    };
    this.timeline.push(row);
    return row;
  }

  // ---------------------------------------------------------------- slots

  private allocSlot(): number {
    if (this.freeSlots.length === 0) this.growSlots(this.capacity * 2);
    const slot = this.freeSlots.popFront();
    return slot;
  }

  private freeSlot(slot: number): void {
    this.generation[slot] = ((this.generation[slot] as number) + 1) | 0;
    this.freeSlots.pushBack(slot);
  }

  private growSlots(capacity: number): void {
    const old = this.capacity;
    const f64 = (a: Float64Array) => {
      const b = new Float64Array(capacity);
      b.set(a);
      return b;
    };
    const i32 = (a: Int32Array) => {
      const b = new Int32Array(capacity);
      b.set(a);
      return b;
    };
    this.arrivalAt = f64(this.arrivalAt);
    this.readyAt = f64(this.readyAt);
    this.firstTokenAt = f64(this.firstTokenAt);
    this.admittedStep = f64(this.admittedStep);
    this.inputTokens = i32(this.inputTokens);
    this.outputTokens = i32(this.outputTokens);
    this.remainingSteps = i32(this.remainingSteps);
    this.generation = i32(this.generation);
    this.older = i32(this.older);
    this.newer = i32(this.newer);
    for (let s = old; s < capacity; s++) this.freeSlots.pushBack(s);
    this.capacity = capacity;
  }
}
