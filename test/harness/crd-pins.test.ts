// scripts/fetch-crds.tsv as committed: well-formed pins, and the three in-repo files match their sums.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readThirdPartyCrdPins, repoRoot } from './cluster.ts';

describe('third-party CRD pins (scripts/fetch-crds.tsv)', () => {
  const pins = readThirdPartyCrdPins();

  it('lists 17 CRDs, each from module@vX.Y.Z or from the repository, with a 64-hex SHA-256', () => {
    expect(pins).toHaveLength(17);
    for (const pin of pins) {
      expect(pin.source, pin.file).toMatch(/^(repo|[a-z0-9./-]+@v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?)$/);
      expect(pin.sha256, pin.file).toMatch(/^[0-9a-f]{64}$/);
      expect(pin.file, pin.file).toMatch(/^[a-z]+\/[a-z0-9._-]+\.yaml$/);
    }
    expect(new Set(pins.map((p) => p.file)).size).toBe(17);
  });

  it('the 3 files kept in scripts/crds have the committed SHA-256', () => {
    const copies = pins.filter((p) => p.source === 'repo');
    expect(copies.map((p) => p.file).sort()).toEqual([
      'dynamo/nvidia.com_dynamographdeployments.yaml',
      'dynamo/nvidia.com_dynamographdeploymentscalingadapters.yaml',
      'lws/disaggregatedset.x-k8s.io_disaggregatedsetrolescalers.yaml',
    ]);
    for (const pin of copies) {
      const sha256 = createHash('sha256')
        .update(readFileSync(path.join(repoRoot, pin.path)))
        .digest('hex');
      expect(sha256, pin.path).toBe(pin.sha256);
    }
  });

  it('scale paths parse: 8 CRDs have .spec.replicas / .status.replicas / a selector, 9 have none', () => {
    const scaled = pins.filter((p) => p.scale !== undefined);
    expect(scaled).toHaveLength(8);
    for (const pin of scaled) {
      expect(pin.scale?.specReplicasPath).toBe('.spec.replicas');
      expect(pin.scale?.statusReplicasPath).toBe('.status.replicas');
      expect(pin.scale?.labelSelectorPath).toMatch(/^\.status\.[A-Za-z]+$/);
    }
  });
});
